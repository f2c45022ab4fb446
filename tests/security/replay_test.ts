/**
 * Owner-funded runs against replay: a run id belongs to the collaborator who opened it, lives a
 * bounded time and carries a bounded number of upstream calls, and the owner's fixed provider,
 * model and max_tokens cap hold. Every call goes through the real execute handler to a real HTTP
 * fake of the provider, which counts what the owner would pay for.
 */
import { createHandler as createExecute } from "../../supabase/functions/execute/handler.ts";
import { createHandler as createFlows } from "../../supabase/functions/flows/handler.ts";
import { checkAndLogRun } from "../../supabase/functions/_shared/sharing/flowRuns.ts";
import { storeCredential } from "../../supabase/functions/_shared/vault/keyWriter.ts";
import type { AppError } from "../../supabase/functions/_shared/core/errors.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { startFakeChatUpstream } from "../support/fakeChatUpstream.ts";
import { jsonRequest, newUser, testRuntime, type TestUser } from "../support/runtime.ts";
import { recordAttacks } from "./figures.ts";

const db = await openTestDatabase();
const fake = startFakeChatUpstream();
fake.chat = { kind: "stream", chunks: ["ok"] };
const rt = testRuntime(db, { env: { OPENAI_BASE_URL: fake.baseUrl } });
const flows = createFlows(rt);
const execute = createExecute(rt);

async function flowCall(body: unknown, user: TestUser) {
  const response = await flows(jsonRequest("http://local/flows", body, user.authorization));
  return await response.json();
}

async function sharedFlow(owner: TestUser, settings: Record<string, unknown>) {
  const created = await flowCall(
    { action: "create", name: "Replay target", use_owner_keys: true, ...settings },
    owner,
  );
  const published = await flowCall({ action: "publish", flow_id: created.flow.id }, owner);
  return { flowId: created.flow.id as string, token: published.share_token as string };
}

async function run(
  user: TestUser,
  token: string,
  runId: string,
  request: Record<string, unknown> = {},
) {
  const response = await execute(jsonRequest("http://local/execute", {
    shareToken: token,
    runId,
    request: { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], ...request },
  }, user.authorization));
  const text = await readChunks(response);
  return { status: response.status, code: response.ok ? "ok" : JSON.parse(text).error.code };
}

/**
 * Reads a body chunk by chunk, done with each before asking for the next, as a network client
 * is: the proxy relay releases a chunk's memory when the next one is asked for, which
 * `Response.text()` in-process (it keeps every chunk until the end) does not survive.
 */
async function readChunks(response: Response): Promise<string> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    text += decoder.decode(next.value, { stream: true });
  }
  return text + decoder.decode();
}

const owner = await newUser(db);
await storeCredential(
  db,
  { id: owner.id, claims: { sub: owner.id, role: "authenticated" } },
  rt.config,
  "openai",
  "api_key",
  "sk-owner-replay-000001",
);

Deno.test(`owner-funded runs are bounded against replay (${DATABASE_KIND})`, async (t) => {
  try {
    await t.step(
      "100 replays from two collaborators spend at most the run's call cap",
      async () => {
        const alice = await newUser(db);
        const mallory = await newUser(db);
        const { flowId, token } = await sharedFlow(owner, {
          per_minute_limit: 2,
          daily_limit: 2,
          run_call_limit: 3,
        });
        const runs = [crypto.randomUUID(), crypto.randomUUID()];
        for (const runId of runs) assertEquals((await run(alice, token, runId)).code, "ok");
        const before = fake.requests.length;
        const outcomes: string[] = [];
        for (let i = 0; i < 100; i++) {
          const who = i % 2 === 0 ? alice : mallory;
          outcomes.push((await run(who, token, runs[i % 4 < 2 ? 0 : 1])).code);
        }
        const paid = fake.requests.length - before;
        // Alice's two runs had 1 call each and may make 2 more each: 4 upstream calls in all.
        assertEquals(paid, 4);
        assert(outcomes.filter((o) => o === "FORBIDDEN").length === 50, outcomes.join(","));
        assertEquals(outcomes.filter((o) => o === "RUN_LIMIT_EXCEEDED").length, 46);
        const [flow] = await db.query<{ daily_execution_count: number }>(
          "select daily_execution_count from public.flows where id = $1::uuid",
          [flowId],
        );
        assertEquals(flow.daily_execution_count, 2);
        recordAttacks("replay", 96, Math.max(0, paid - 4));
      },
    );

    await t.step("a run id older than the flow's run age is refused", async () => {
      const alice = await newUser(db);
      const { token } = await sharedFlow(owner, { run_max_age_seconds: 60 });
      const runId = crypto.randomUUID();
      const at = (seconds: number) => new Date(Date.now() + seconds * 1000);
      const code = (work: Promise<unknown>) =>
        work.then(() => "ok", (error) => (error as AppError).code);
      assertEquals(await code(checkAndLogRun(rt, token, runId, alice.id, at(0))), "ok");
      assertEquals(await code(checkAndLogRun(rt, token, runId, alice.id, at(30))), "ok");
      assertEquals(
        await code(checkAndLogRun(rt, token, runId, alice.id, at(61))),
        "RUN_LIMIT_EXCEEDED",
      );
      recordAttacks("replay", 1);
    });

    await t.step("the owner fixes provider, model and a max_tokens cap", async () => {
      const alice = await newUser(db);
      const { token } = await sharedFlow(owner, {
        allowed_provider: "openai",
        allowed_model: "gpt-4o-mini",
        max_tokens_limit: 64,
      });
      const before = fake.requests.length;
      const refusals = [
        await run(alice, token, crypto.randomUUID(), { model: "gpt-4o" }),
        await run(alice, token, crypto.randomUUID(), { max_tokens: 65 }),
        await run(alice, token, crypto.randomUUID(), { max_completion_tokens: 100_000 }),
      ];
      assertEquals(refusals.map((r) => [r.status, r.code]), [
        [400, "INVALID_REQUEST"],
        [400, "INVALID_REQUEST"],
        [400, "INVALID_REQUEST"],
      ]);
      assertEquals(fake.requests.length, before);
      // Within the caps it runs, and a request naming no limit gets the owner's cap.
      assertEquals((await run(alice, token, crypto.randomUUID())).code, "ok");
      assertEquals(JSON.parse(fake.requests.at(-1)!.body).max_tokens, 64);
      recordAttacks("replay", refusals.length);
    });
  } finally {
    await fake.close();
    await db.close();
  }
});
