/**
 * The providers' own client libraries against llm-proxy's native routes: `@anthropic-ai/sdk`,
 * `@ai-sdk/anthropic`, `@google/genai` and `@ai-sdk/google`, each with the user's Supabase access
 * token as its API key, against a fake that speaks Anthropic's and Gemini's wire formats. Each
 * checks the answer arrived intact and the fake saw only the user's own key, in the provider's
 * own header. (The AI SDK packages and @google/genai want Node 22; they run here under Deno.)
 */
import Anthropic from "@anthropic-ai/sdk";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createGoogleGenerativeAI } from "@ai-sdk/google";
import { GoogleGenAI } from "@google/genai";
import { embed, generateText, streamText } from "ai";
import { usageRecorderFor } from "../../supabase/functions/_shared/upstream/usageRecorder.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import {
  ANTHROPIC_USAGE,
  EMBEDDING,
  type FakeNativeProviders,
  GEMINI_USAGE,
  startFakeNativeProviders,
} from "../support/fakeNativeProviders.ts";
import type { RecordedRequest } from "../support/fakeUpstream.ts";
import { signInDevUser } from "../support/devAuth.ts";
import { integrationSuite } from "../support/suite.ts";
import { openLocalStack } from "../support/localStack.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import type { LocalStack } from "../../local/stack.ts";

let db: Database;
let fake: FakeNativeProviders;
let stack: LocalStack;
let proxy: string;
const suite = integrationSuite("nativeSdks", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
    fake = startFakeNativeProviders();
    onTeardown(() => fake.close());
    stack = await openLocalStack(onTeardown, {
      db,
      env: {
        ANTHROPIC_BASE_URL: fake.anthropicBaseUrl,
        GEMINI_BASE_URL: fake.geminiBaseUrl,
        ANTHROPIC_API_KEY: "sk-ant-global-must-never-be-used",
        GEMINI_API_KEY: "AIza-global-must-never-be-used",
      },
    });
    proxy = `${stack.functionsUrl}/llm-proxy`;
  },
});

interface NativeUser {
  id: string;
  token: string;
  key: string;
}

async function userWithKey(service: "anthropic" | "gemini"): Promise<NativeUser> {
  const { id, token } = await signInDevUser(stack.url);
  const key = `${service === "anthropic" ? "sk-ant-" : "AIza"}${crypto.randomUUID()}`;
  const response = await fetch(`${stack.functionsUrl}/credentials-manager`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ action: "set", service, value: key }),
  });
  assertEquals(response.status, 200, await response.text());
  fake.validKeys.add(key);
  return { id, token, key };
}

const reply = (user: NativeUser) => `Hello from key …${user.key.slice(-6)}`;

/** What the fake received since `from`: each request carried the user's key, and only there. */
function assertOnlyOwnKey(
  user: NativeUser,
  from: number,
  header: "x-api-key" | "x-goog-api-key",
): RecordedRequest[] {
  const seen = fake.requests.slice(from);
  assert(seen.length > 0, "nothing reached the fake");
  for (const request of seen) {
    assertEquals(request.headers[header], user.key, `${request.method} ${request.path}`);
    assertEquals(request.headers["authorization"], undefined, "an Authorization header went up");
    const everything = JSON.stringify(request);
    assert(!everything.includes(user.token), "the user's access token went upstream");
    assert(!everything.includes("global-must-never"), "a global key went upstream");
    assert(!/[?&]key=/.test(request.search), "a key query parameter went upstream");
  }
  return seen;
}

async function usageRows(userId: string) {
  await usageRecorderFor(db).flush();
  return [
    ...(await db.query<Record<string, unknown>>(
      `select service, key_source, request_count::int, prompt_tokens::int,
              completion_tokens::int, total_tokens::int
         from public.usage_daily where user_id = $1`,
      [userId],
    )),
  ];
}

suite.test(
  `@anthropic-ai/sdk creates and streams messages through llm-proxy/anthropic (${DATABASE_KIND})`,
  async () => {
    const user = await userWithKey("anthropic");
    const from = fake.requests.length;
    const client = new Anthropic({
      apiKey: user.token,
      baseURL: `${proxy}/anthropic`,
      maxRetries: 0,
    });
    const params = {
      model: "claude-fake",
      max_tokens: 64,
      messages: [{ role: "user" as const, content: "hi" }],
    };
    const { data: message, response } = await client.messages.create(params).withResponse();
    assertEquals(message.content, [{ type: "text", text: reply(user) }]);
    assertEquals(message.usage.input_tokens, ANTHROPIC_USAGE.input_tokens);
    assertEquals(response.headers.get("x-key-source"), "user");
    assertEquals(response.headers.get("request-id"), "req_fake_anthropic");

    const events: string[] = [];
    const stream = client.messages.stream(params);
    stream.on("streamEvent", (event) => events.push(event.type));
    const final = await stream.finalMessage();
    assertEquals(final.content, [{ type: "text", text: reply(user) }]);
    assertEquals(final.usage.output_tokens, ANTHROPIC_USAGE.output_tokens);
    assertEquals(events[0], "message_start");
    assertEquals(events.at(-1), "message_stop");
    assert(events.includes("message_delta"));

    const counted = await client.messages.countTokens(params);
    assertEquals(counted.input_tokens, 14);

    // The access token as a bearer token (the SDK's authToken) works the same.
    const bearer = new Anthropic({
      authToken: user.token,
      apiKey: null,
      baseURL: `${proxy}/anthropic`,
      maxRetries: 0,
    });
    const again = await bearer.messages.create(params);
    assertEquals(again.content, [{ type: "text", text: reply(user) }]);

    const seen = assertOnlyOwnKey(user, from, "x-api-key");
    assertEquals(seen.map((r) => r.path), [
      "/anthropic/v1/messages",
      "/anthropic/v1/messages",
      "/anthropic/v1/messages/count_tokens",
      "/anthropic/v1/messages",
    ]);
    assertEquals(JSON.parse(seen[1].body).stream, true);

    assertEquals(await usageRows(user.id), [{
      service: "anthropic",
      key_source: "user",
      request_count: 4,
      // The streamed message's input tokens come from message_start, its output from message_delta.
      prompt_tokens: 2 * ANTHROPIC_USAGE.input_tokens + ANTHROPIC_USAGE.input_tokens + 0,
      completion_tokens: 3 * ANTHROPIC_USAGE.output_tokens,
      total_tokens: 3 * (ANTHROPIC_USAGE.input_tokens + ANTHROPIC_USAGE.output_tokens),
    }]);
  },
);

suite.test("llm-proxy/anthropic passes the client's anthropic-version and anthropic-beta", async () => {
  const user = await userWithKey("anthropic");
  const from = fake.requests.length;
  const client = new Anthropic({
    apiKey: user.token,
    baseURL: `${proxy}/anthropic`,
    maxRetries: 0,
    defaultHeaders: { "anthropic-version": "2099-01-01" },
  });
  await client.messages.create({
    model: "claude-fake",
    max_tokens: 8,
    messages: [{ role: "user", content: "hi" }],
  }, { headers: { "anthropic-beta": "fake-beta-2025-01-01" } });
  const [seen] = assertOnlyOwnKey(user, from, "x-api-key");
  assertEquals(seen.headers["anthropic-version"], "2099-01-01");
  assertEquals(seen.headers["anthropic-beta"], "fake-beta-2025-01-01");

  // A client that names no version gets the default.
  const raw = await fetch(`${proxy}/anthropic/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": user.token },
    body: JSON.stringify({ model: "m", max_tokens: 8, messages: [{ role: "user", content: "x" }] }),
  });
  assertEquals(raw.status, 200, await raw.text());
  assertEquals(fake.requests.at(-1)!.headers["anthropic-version"], "2023-06-01");
});

suite.test("@ai-sdk/anthropic generates and streams text through llm-proxy/anthropic", async () => {
  const user = await userWithKey("anthropic");
  const from = fake.requests.length;
  for (
    const provider of [
      createAnthropic({ apiKey: user.token, baseURL: `${proxy}/anthropic/v1` }),
      createAnthropic({ authToken: user.token, baseURL: `${proxy}/anthropic/v1` }),
    ]
  ) {
    const model = provider("claude-fake");
    const generated = await generateText({ model, prompt: "hi", maxRetries: 0 });
    assertEquals(generated.text, reply(user));
    assertEquals(generated.usage.inputTokens, ANTHROPIC_USAGE.input_tokens);
    const streamed = streamText({ model, prompt: "hi", maxRetries: 0 });
    let text = "";
    for await (const delta of streamed.textStream) text += delta;
    assertEquals(text, reply(user));
    assertEquals((await streamed.usage).outputTokens, ANTHROPIC_USAGE.output_tokens);
  }
  assertEquals(assertOnlyOwnKey(user, from, "x-api-key").length, 4);
});

for (const apiVersion of ["v1", "v1beta"]) {
  suite.test(
    `@google/genai (${apiVersion}) generates, streams, counts, embeds and lists models through llm-proxy/gemini`,
    async () => {
      const user = await userWithKey("gemini");
      const from = fake.requests.length;
      const ai = new GoogleGenAI({
        apiKey: user.token,
        apiVersion,
        httpOptions: { baseUrl: `${proxy}/gemini` },
      });
      const generated = await ai.models.generateContent({ model: "gemini-fake", contents: "hi" });
      assertEquals(generated.text, reply(user));
      assertEquals(generated.usageMetadata?.totalTokenCount, GEMINI_USAGE.totalTokenCount);

      let streamed = "";
      const stream = await ai.models.generateContentStream({
        model: "gemini-fake",
        contents: "hi",
      });
      for await (const chunk of stream) streamed += chunk.text ?? "";
      assertEquals(streamed, reply(user));

      const counted = await ai.models.countTokens({ model: "gemini-fake", contents: "hi" });
      assertEquals(counted.totalTokens, 4);
      const embedded = await ai.models.embedContent({ model: "embedding-fake", contents: "hi" });
      assertEquals(embedded.embeddings?.[0].values, EMBEDDING);
      const batch = await ai.models.embedContent({ model: "embedding-fake", contents: ["a", "b"] });
      assertEquals(batch.embeddings?.map((e) => e.values), [EMBEDDING, EMBEDDING]);

      const names: string[] = [];
      for await (const model of await ai.models.list()) names.push(model.name ?? "");
      assertEquals(names, ["models/gemini-fake", "models/embedding-fake"]);
      const one = await ai.models.get({ model: "gemini-fake" });
      assertEquals(one.displayName, "Fake gemini-fake");

      const seen = assertOnlyOwnKey(user, from, "x-goog-api-key");
      const base = `/gemini/${apiVersion}/models`;
      assertEquals(
        seen.map((r) => `${r.method} ${r.path}${r.search.replace(/\?.*pageSize.*/, "")}`),
        [
          `POST ${base}/gemini-fake:generateContent`,
          `POST ${base}/gemini-fake:streamGenerateContent?alt=sse`,
          `POST ${base}/gemini-fake:countTokens`,
          `POST ${base}/embedding-fake:batchEmbedContents`,
          `POST ${base}/embedding-fake:batchEmbedContents`,
          `GET ${base}`,
          `GET ${base}/gemini-fake`,
        ],
      );

      const [row] = await usageRows(user.id);
      assertEquals(row.request_count, seen.length);
      // Two generations, each metered from its (last) usageMetadata.
      assertEquals(row.total_tokens, 2 * GEMINI_USAGE.totalTokenCount);
      assertEquals(row.prompt_tokens, 2 * GEMINI_USAGE.promptTokenCount);
    },
  );
}

suite.test("@ai-sdk/google generates, streams and embeds through llm-proxy/gemini", async () => {
  const user = await userWithKey("gemini");
  const from = fake.requests.length;
  const google = createGoogleGenerativeAI({
    apiKey: user.token,
    baseURL: `${proxy}/gemini/v1beta`,
  });
  const generated = await generateText({
    model: google("gemini-fake"),
    prompt: "hi",
    maxRetries: 0,
  });
  assertEquals(generated.text, reply(user));
  assertEquals(generated.usage.inputTokens, GEMINI_USAGE.promptTokenCount);
  const streamed = streamText({ model: google("gemini-fake"), prompt: "hi", maxRetries: 0 });
  let text = "";
  for await (const delta of streamed.textStream) text += delta;
  assertEquals(text, reply(user));
  const embedded = await embed({
    model: google.textEmbeddingModel("embedding-fake"),
    value: "hi",
    maxRetries: 0,
  });
  assertEquals(embedded.embedding, EMBEDDING);
  assertOnlyOwnKey(user, from, "x-goog-api-key");
});

suite.test(
  "llm-proxy/gemini takes the access token from the key parameter and never forwards it",
  async () => {
    const user = await userWithKey("gemini");
    const from = fake.requests.length;
    const response = await fetch(
      `${proxy}/gemini/v1beta/models/gemini-fake:streamGenerateContent?alt=sse&key=${user.token}`,
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ contents: [{ parts: [{ text: "hi" }] }] }),
      },
    );
    assertEquals(response.status, 200);
    assertEquals(response.headers.get("content-type"), "text/event-stream");
    const text = await response.text();
    assert(text.includes(`key …${user.key.slice(-6)}`), text);
    const [seen] = assertOnlyOwnKey(user, from, "x-goog-api-key");
    assertEquals(seen.search, "?alt=sse");
  },
);

suite.test(
  "llm-proxy/gemini maps a bad stored key to GEMINI_INVALID_KEY on the native API",
  async () => {
    const user = await userWithKey("gemini");
    fake.validKeys.delete(user.key);
    const ai = new GoogleGenAI({ apiKey: user.token, httpOptions: { baseUrl: `${proxy}/gemini` } });
    const error = await ai.models.generateContent({ model: "gemini-fake", contents: "hi" }).then(
      () => null,
      (e: unknown) => e as { status?: number; message?: string },
    );
    assert(error, "the call should fail");
    assertEquals(error.status, 401);
    assert(error.message?.includes("GEMINI_INVALID_KEY"), error.message);
  },
);

suite.test(
  "native routes use a chosen team shared key with the same x-key-source and limits",
  async () => {
    const owner = await signInDevUser(stack.url);
    const member = await signInDevUser(stack.url);
    const call = async (token: string, path: string, body: unknown) => {
      const response = await fetch(`${stack.functionsUrl}/${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      return { status: response.status, text: await response.text() };
    };
    const accountName = `team-${crypto.randomUUID().slice(0, 8)}`;
    const sharedKey = `sk-ant-shared-${crypto.randomUUID()}`;
    fake.validKeys.add(sharedKey);
    const created = await call(owner.token, "llm-config/shared-keys", {
      account_name: accountName,
      display_name: "Team Claude",
      provider: "anthropic",
      model: "claude-fake",
      api_key: sharedKey,
      is_public: true,
      per_user_daily_limit: 2,
    });
    assertEquals(created.status, 201, created.text);
    const saved = await call(member.token, "llm-config/save", {
      use_shared_key: true,
      shared_key_account_name: accountName,
    });
    assertEquals(saved.status, 200, saved.text);

    const client = new Anthropic({
      apiKey: member.token,
      baseURL: `${proxy}/anthropic`,
      maxRetries: 0,
    });
    const params = {
      model: "claude-fake",
      max_tokens: 8,
      messages: [{ role: "user" as const, content: "hi" }],
    };
    const from = fake.requests.length;
    for (let i = 0; i < 2; i++) {
      const { data, response } = await client.messages.create(params).withResponse();
      assertEquals(response.headers.get("x-key-source"), "shared");
      assertEquals(data.content, [{
        type: "text",
        text: `Hello from key …${sharedKey.slice(-6)}`,
      }]);
    }
    const over = await client.messages.create(params).then(() => null, (e) => e);
    assertEquals([over?.status, over?.error?.error?.code], [429, "SHARED_KEY_LIMIT_EXCEEDED"]);
    const seen = fake.requests.slice(from);
    assertEquals(seen.map((r) => r.headers["x-api-key"]), [sharedKey, sharedKey]);
    assert(!JSON.stringify(seen).includes(member.token));
  },
);
