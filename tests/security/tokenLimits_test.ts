/**
 * Shared-key token limits, on every path that can spend a shared key: the OpenAI-compatible
 * proxy (streamed: tokens from the final usage chunk), llm-proxy's native Anthropic and Gemini
 * routes, generate-embedding, batch-embeddings and conversation-run. Each grantee's first call is
 * served and its provider-reported tokens reach the per-user limit; the next call is refused
 * (`SHARED_KEY_LIMIT_EXCEEDED`) before anything goes upstream: the fakes count the requests.
 */
import { createHandler as createBatch } from "../../supabase/functions/batch-embeddings/handler.ts";
import { createHandler as createRun } from "../../supabase/functions/conversation-run/handler.ts";
import { createHandler as createEmbedding } from "../../supabase/functions/generate-embedding/handler.ts";
import { createHandler as createLlmProxy } from "../../supabase/functions/llm-proxy/handler.ts";
import { createHandler as createProxy } from "../../supabase/functions/openai-proxy/handler.ts";
import {
  createSharedKey,
  saveConfig,
} from "../../supabase/functions/_shared/sharing/llmConfigStore.ts";
import { usageRecorderFor } from "../../supabase/functions/_shared/upstream/usageRecorder.ts";
import type { Service } from "../../supabase/functions/_shared/contract/providers.ts";
import { assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { startFakeChatUpstream } from "../support/fakeChatUpstream.ts";
import {
  ANTHROPIC_USAGE,
  GEMINI_USAGE,
  startFakeNativeProviders,
} from "../support/fakeNativeProviders.ts";
import { sseClient } from "../support/sseClient.ts";
import { jsonRequest, newUser, testRuntime, type TestUser } from "../support/runtime.ts";
import { recordAttacks } from "./figures.ts";

const db = await openTestDatabase();
const chat = startFakeChatUpstream();
const native = startFakeNativeProviders();
const rt = testRuntime(db, {
  env: {
    OPENAI_BASE_URL: chat.baseUrl,
    ANTHROPIC_BASE_URL: native.anthropicBaseUrl,
    GEMINI_BASE_URL: native.geminiBaseUrl,
  },
});
const asDb = (user: TestUser) => ({ id: user.id, claims: { sub: user.id, role: "authenticated" } });
const upstreamRequests = () => chat.requests.length + native.requests.length;

/** A grantee of a new shared key on `provider` limited to `tokens` a day per user. */
async function granteeOf(provider: Service, tokens: number): Promise<TestUser> {
  const owner = await newUser(db);
  const member = await newUser(db);
  const account = `tok-${crypto.randomUUID().slice(0, 8)}`;
  const apiKey = `sk-tokens-${crypto.randomUUID()}`;
  native.validKeys.add(apiKey);
  await createSharedKey(db, asDb(owner), rt.config, {
    account_name: account,
    display_name: "Token-limited",
    provider,
    model: null,
    api_key: apiKey,
    is_public: false,
    allowed_user_ids: [member.id],
    daily_limit: null,
    per_user_daily_limit: null,
    daily_token_limit: null,
    per_user_daily_token_limit: tokens,
  });
  await saveConfig(db, asDb(member), {
    use_shared_key: true,
    shared_key_account_name: account,
    use_owner_name: false,
    key_owner_name: null,
    provider,
    model: null,
    base_url: null,
    region: null,
    deployment: null,
    extra_headers: null,
    response_format: "auto",
    daily_limit: null,
  });
  return member;
}

/** One call on a path; resolves with its status and error code once its body was read. */
type PathCall = (member: TestUser) => Promise<{ status: number; code: string | null }>;

async function answered(response: Response): Promise<{ status: number; code: string | null }> {
  const text = await response.text();
  let code: string | null = null;
  try {
    code = JSON.parse(text).error?.code ?? null;
  } catch {
    // A stream: served.
  }
  return { status: response.status, code };
}

const messages = [{ role: "user", content: "hi" }];
const PATHS: { name: string; provider: Service; tokens: number; call: PathCall }[] = [
  {
    name: "openai-proxy, streamed",
    provider: "openai",
    tokens: 10, // fakeChatUpstream's final usage chunk
    call: async (member) =>
      await answered(
        await createProxy(rt)(
          jsonRequest("http://local/openai-proxy/v1/chat/completions", {
            model: "gpt-test",
            messages,
            stream: true,
            stream_options: { include_usage: true },
          }, member.authorization),
        ),
      ),
  },
  {
    name: "llm-proxy anthropic messages",
    provider: "anthropic",
    tokens: ANTHROPIC_USAGE.input_tokens + ANTHROPIC_USAGE.output_tokens,
    call: async (member) =>
      await answered(
        await createLlmProxy(rt)(
          jsonRequest("http://local/llm-proxy/anthropic/v1/messages", {
            model: "claude-test",
            max_tokens: 10,
            messages,
          }, member.authorization),
        ),
      ),
  },
  {
    name: "llm-proxy anthropic messages, streamed",
    provider: "anthropic",
    tokens: ANTHROPIC_USAGE.input_tokens + ANTHROPIC_USAGE.output_tokens,
    call: async (member) =>
      await answered(
        await createLlmProxy(rt)(
          jsonRequest("http://local/llm-proxy/anthropic/v1/messages", {
            model: "claude-test",
            max_tokens: 10,
            messages,
            stream: true,
          }, member.authorization),
        ),
      ),
  },
  {
    name: "llm-proxy gemini generateContent",
    provider: "gemini",
    tokens: GEMINI_USAGE.totalTokenCount,
    call: async (member) =>
      await answered(
        await createLlmProxy(rt)(
          jsonRequest(
            "http://local/llm-proxy/gemini/v1beta/models/gemini-fake:generateContent",
            { contents: [{ role: "user", parts: [{ text: "hi" }] }] },
            member.authorization,
          ),
        ),
      ),
  },
  {
    name: "generate-embedding",
    provider: "openai",
    tokens: 1, // one input, one token at the fake
    call: async (member) =>
      await answered(
        await createEmbedding(rt)(
          jsonRequest("http://local/generate-embedding", { input: "x" }, member.authorization),
        ),
      ),
  },
  {
    name: "batch-embeddings",
    provider: "openai",
    tokens: 3, // three chunks of one input, one token each
    call: async (member) =>
      await answered(
        await createBatch(rt)(
          jsonRequest("http://local/batch-embeddings", {
            inputs: ["a", "b", "c"],
            chunk_size: 1,
          }, member.authorization),
        ),
      ),
  },
  {
    name: "conversation-run",
    provider: "openai",
    tokens: 10,
    call: async (member) => {
      const response = await createRun(rt)(
        jsonRequest(
          "http://local/conversation-run",
          { model: "gpt-test", messages },
          member.authorization,
        ),
      );
      const events = await sseClient(response).rest();
      const error = events.find((event) => event.type === "error");
      return { status: error ? 429 : response.status, code: error?.error?.code ?? null };
    },
  },
];

Deno.test(`shared-key token limits hold on every path (${DATABASE_KIND})`, async (t) => {
  try {
    for (const path of PATHS) {
      await t.step(`${path.name}: served up to the limit, then refused upstream-free`, async () => {
        const member = await granteeOf(path.provider, path.tokens);
        const first = await path.call(member);
        assertEquals(first, { status: 200, code: null });
        await usageRecorderFor(db).flush();
        const [row] = await db.query<{ tokens: number }>(
          "select sum(tokens)::float8 as tokens from public.shared_key_usage where user_id = $1",
          [member.id],
        );
        assertEquals(row.tokens, path.tokens);

        const before = upstreamRequests();
        const second = await path.call(member);
        const through = upstreamRequests() - before;
        recordAttacks("amplification", 1, through);
        assertEquals(second, { status: 429, code: "SHARED_KEY_LIMIT_EXCEEDED" });
        assertEquals(through, 0);
      });
    }
  } finally {
    await chat.close();
    await native.close();
    await db.close();
  }
});
