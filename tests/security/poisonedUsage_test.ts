/**
 * Poisoned usage from a provider: token counts of 99999999999999999999, "abc" or -5. They are
 * clamped or dropped where they are parsed, so the run ends (never stays `running`) and the
 * usage ledger keeps recording for everyone. The provider is a real HTTP fake.
 */
import { createHandler as createRun } from "../../supabase/functions/conversation-run/handler.ts";
import { createHandler as createProxy } from "../../supabase/functions/openai-proxy/handler.ts";
import { createHandler as createEmbedding } from "../../supabase/functions/generate-embedding/handler.ts";
import { storeCredential } from "../../supabase/functions/_shared/vault/keyWriter.ts";
import { usageRecorderFor } from "../../supabase/functions/_shared/upstream/usageRecorder.ts";
import { MAX_TOKENS_PER_CALL } from "../../supabase/functions/_shared/upstream/tokenUsage.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { jsonRequest, newUser, testRuntime, type TestUser } from "../support/runtime.ts";
import { recordAttacks } from "./figures.ts";

const POISON: unknown[] = [99999999999999999999, "abc", -5, 1.5e300, "12345678901234567890123"];
let poison: unknown = POISON[0];

const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
  const url = new URL(request.url);
  const body = await request.json();
  const usage = { prompt_tokens: poison, completion_tokens: poison, total_tokens: poison };
  if (url.pathname.endsWith("/embeddings")) {
    return Response.json({
      data: body.input.map((_: string, index: number) => ({ index, embedding: [1, 2] })),
      usage,
    });
  }
  if (body.stream) {
    const events = [
      { choices: [{ index: 0, delta: { content: "hello\u0000 world" } }] },
      { choices: [], usage },
    ].map((e) => `data: ${JSON.stringify(e)}\n\n`).join("") + "data: [DONE]\n\n";
    return new Response(events, { headers: { "content-type": "text/event-stream" } });
  }
  return Response.json({ id: "x", choices: [{ message: { content: "hi" } }], usage });
});

const db = await openTestDatabase();
const rt = testRuntime(db, {
  env: { OPENAI_BASE_URL: `http://127.0.0.1:${upstream.addr.port}/v1` },
});

async function userWithKey(): Promise<TestUser> {
  const user = await newUser(db);
  await storeCredential(
    db,
    { id: user.id, claims: { sub: user.id, role: "authenticated" } },
    rt.config,
    "openai",
    "api_key",
    `sk-poison-${crypto.randomUUID()}`,
  );
  return user;
}

async function readChunks(response: Response): Promise<string> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    text += decoder.decode(next.value, { stream: true });
  }
  return text + decoder.decode();
}

const validCount = (value: unknown) =>
  value === null ||
  (Number.isInteger(Number(value)) && Number(value) >= 0 && Number(value) <= MAX_TOKENS_PER_CALL);

Deno.test(`poisoned usage is clamped where it is parsed (${DATABASE_KIND})`, async (t) => {
  try {
    await t.step("a conversation run with poisoned usage ends and stores sane counts", async () => {
      let through = 0;
      for (const value of POISON) {
        poison = value;
        const user = await userWithKey();
        const response = await createRun(rt)(jsonRequest("http://local/conversation-run", {
          model: "gpt-4o-mini",
          messages: [{ role: "user", content: "hi" }],
        }, user.authorization));
        const text = await readChunks(response);
        const [run] = await db.query<Record<string, unknown>>(
          `select status, prompt_tokens, completion_tokens, total_tokens from public.conversation_runs
            where user_id = $1::uuid`,
          [user.id],
        );
        const sane = run.status === "done" && text.includes('"type":"done"') &&
          [run.prompt_tokens, run.completion_tokens, run.total_tokens].every(validCount);
        if (!sane) {
          through++;
          console.error(`  ${String(value)}: ${JSON.stringify(run)}`);
        }
      }
      recordAttacks("poisoned usage", POISON.length, through);
      assertEquals(through, 0);
    });

    await t.step("the proxy and embeddings ledger keeps recording for everyone", async () => {
      const users: TestUser[] = [];
      for (const value of POISON) {
        poison = value;
        const user = await userWithKey();
        users.push(user);
        const proxied = await createProxy(rt)(
          jsonRequest("http://local/openai-proxy/v1/chat/completions", {
            model: "gpt-4o-mini",
            messages: [{ role: "user", content: "hi" }],
          }, user.authorization),
        );
        await readChunks(proxied);
        const embedded = await createEmbedding(rt)(
          jsonRequest("http://local/generate-embedding", { input: "x" }, user.authorization),
        );
        assertEquals(embedded.status, 200);
        await readChunks(embedded);
      }
      poison = 7;
      const clean = await userWithKey();
      users.push(clean);
      await readChunks(
        await createProxy(rt)(
          jsonRequest("http://local/openai-proxy/v1/chat/completions", {
            model: "gpt-4o-mini",
            messages: [{ role: "user", content: "hi" }],
          }, clean.authorization),
        ),
      );
      await usageRecorderFor(db).flush();
      const rows = await db.query<
        { user_id: string; request_count: string; prompt_tokens: string }
      >(
        `select user_id, sum(request_count)::text as request_count, sum(prompt_tokens)::text as prompt_tokens
           from public.usage_daily where user_id = any($1::text::uuid[]) group by user_id`,
        [`{${users.map((u) => u.id).join(",")}}`],
      );
      const byUser = new Map(rows.map((row) => [row.user_id, row]));
      let through = 0;
      for (const user of users) {
        const row = byUser.get(user.id);
        if (!row || Number(row.prompt_tokens) > 2 * MAX_TOKENS_PER_CALL) through++;
      }
      assertEquals(byUser.get(clean.id)?.prompt_tokens, "7");
      recordAttacks("poisoned usage", users.length * 2 - 1, through);
      assertEquals(through, 0);
      assert(rows.length === users.length);
    });
  } finally {
    await upstream.shutdown();
    await db.close();
  }
});
