/**
 * Owner-funded shared flows: publishing them and admitting runs, decided and counted in Postgres.
 */
import { createHandler } from "../../supabase/functions/flows/handler.ts";
import { checkAndLogRun } from "../../supabase/functions/_shared/sharing/flowRuns.ts";
import { AppError } from "../../supabase/functions/_shared/core/errors.ts";
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { integrationSuite } from "../support/suite.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import type { Runtime } from "../../supabase/functions/_shared/core/runtime.ts";
import {
  captureLogs,
  jsonRequest,
  newUser,
  testRuntime,
  type TestUser,
} from "../support/runtime.ts";

let db: Database;
let rt: Runtime;
let handler: ReturnType<typeof createHandler>;
const suite = integrationSuite("flows", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
    rt = testRuntime(db);
    handler = createHandler(rt);
  },
});

async function call(body: unknown, user?: TestUser) {
  const response = await handler(jsonRequest("http://local/flows", body, user?.authorization));
  const text = await response.text();
  return { status: response.status, text, json: JSON.parse(text) };
}

async function publishedFlow(owner: TestUser, settings: Record<string, unknown> = {}) {
  const created = await call({ action: "create", name: "Research flow", ...settings }, owner);
  const published = await call({ action: "publish", flow_id: created.json.flow.id }, owner);
  return {
    flowId: created.json.flow.id as string,
    liveId: published.json.live_id as string,
    token: published.json.share_token as string,
  };
}

const codeOf = (work: Promise<unknown>) =>
  work.then(() => "ok", (error) => (error as AppError).code);

suite.test(
  `flows publish reveals the share token once and stores only its hash (${DATABASE_KIND})`,
  async () => {
    const alice = await newUser(db);
    const { flowId, liveId, token } = await publishedFlow(alice, { use_owner_keys: true });
    assertMatch(token, /^shr_[A-Za-z0-9_-]{43}$/);
    const list = await call({ action: "list" }, alice);
    assertEquals(list.json.flows[0].id, flowId);
    assertEquals(list.json.flows[0].live_id, liveId);
    assert(!list.text.includes(token), "list must not show the token");
    const [row] = await db.query<{ hash: string }>(
      "select encode(share_token_hash, 'hex') as hash from public.flows where id = $1::uuid",
      [flowId],
    );
    assertEquals(row.hash.length, 64);
    assert(!row.hash.includes(token));
  },
);

suite.test(
  "flows load_live returns the flow with use_owner_keys to anyone holding live id and token",
  async () => {
    const alice = await newUser(db);
    const { liveId, token } = await publishedFlow(alice, {
      use_owner_keys: true,
      definition: { nodes: [1, 2] },
    });
    const loaded = await call({ action: "load_live", live_id: liveId, share_token: token });
    assertEquals(loaded.status, 200);
    assertEquals(loaded.json.flow.use_owner_keys, true);
    assertEquals(loaded.json.flow.definition, { nodes: [1, 2] });
    const wrong = await call({
      action: "load_live",
      live_id: liveId,
      share_token: `shr_${"A".repeat(43)}`,
    });
    assertEquals(wrong.status, 403);
    assertEquals(wrong.json.error.code, "SHARE_TOKEN_INVALID");
  },
);

suite.test("flows rotate and revoke end the old token's access", async () => {
  const alice = await newUser(db);
  const { flowId, liveId, token } = await publishedFlow(alice);
  const rotated = await call({ action: "rotate_token", flow_id: flowId }, alice);
  assert(rotated.json.share_token !== token);
  assertEquals(rotated.json.live_id, liveId);
  assertEquals(
    (await call({ action: "load_live", live_id: liveId, share_token: token })).status,
    403,
  );
  assertEquals(
    (await call({ action: "load_live", live_id: liveId, share_token: rotated.json.share_token }))
      .status,
    200,
  );
  const revoked = await call({ action: "revoke_token", flow_id: flowId }, alice);
  assertEquals(revoked.json.flow.published, false);
  assertEquals(revoked.json.flow.published_at, null);
  assertEquals(revoked.json.flow.live_id, liveId);
  assertEquals(
    (await call({ action: "list" }, alice)).json.flows[0].published,
    false,
    "a revoked flow is listed as not published",
  );
  assertEquals(
    (await call({ action: "load_live", live_id: liveId, share_token: rotated.json.share_token }))
      .status,
    403,
  );
});

suite.test("flows keep Bob away from Alice's flows", async () => {
  const alice = await newUser(db);
  const bob = await newUser(db);
  const { flowId } = await publishedFlow(alice);
  for (
    const action of ["update", "publish", "rotate_token", "revoke_token", "unpublish", "delete"]
  ) {
    const result = await call({
      action,
      flow_id: flowId,
      ...(action === "update" ? { use_owner_keys: true } : {}),
    }, bob);
    assertEquals(result.status, 404, action);
  }
  assertEquals((await call({ action: "list" }, bob)).json.flows, []);
  assertEquals((await call({ action: "list" }, alice)).json.flows[0].use_owner_keys, false);
});

suite.test("flows refuse unauthenticated owner actions and malformed bodies", async () => {
  assertEquals((await call({ action: "list" })).status, 401);
  const alice = await newUser(db);
  for (
    const body of [{ action: "create" }, { action: "create", name: "x", per_minute_limit: 0 }, {
      action: "publish",
      flow_id: "nope",
    }]
  ) {
    const result = await call(body, alice);
    assertEquals(result.status, 400);
    assertEquals(result.json.error.code, "INVALID_REQUEST");
  }
});

// The owner-funded flows' manual test cases 3 to 6 at the RPC level; 1 and 2 run through `execute`.
suite.test(
  "check_and_log_run refuses a collaborator when use_owner_keys is false (flow case 3)",
  async () => {
    const alice = await newUser(db);
    const bob = await newUser(db);
    const { token } = await publishedFlow(alice, { use_owner_keys: false });
    assertEquals(
      await codeOf(checkAndLogRun(rt, token, crypto.randomUUID(), bob.id)),
      "OWNER_KEYS_NOT_ENABLED",
    );
    const [log] = await db.query<{ n: number }>(
      "select count(*)::integer as n from public.flow_execution_log l join public.flows f on f.id = l.flow_id where f.owner_id = $1::uuid",
      [alice.id],
    );
    assertEquals(log.n, 0, "a refused run is not counted");
  },
);

suite.test("check_and_log_run counts parallel nodes of one run once (flow case 4)", async () => {
  const alice = await newUser(db);
  const bob = await newUser(db);
  const { flowId, token } = await publishedFlow(alice, {
    use_owner_keys: true,
    per_minute_limit: 3,
  });
  const runId = crypto.randomUUID();
  const outcomes = await Promise.all(
    Array.from({ length: 50 }, () => codeOf(checkAndLogRun(rt, token, runId, bob.id))),
  );
  assertEquals(outcomes.filter((o) => o === "ok").length, 50);
  const [flow] = await db.query<{ daily_execution_count: number }>(
    "select daily_execution_count from public.flows where id = $1::uuid",
    [flowId],
  );
  assertEquals(flow.daily_execution_count, 1);
});

suite.test(
  "check_and_log_run admits exactly per_minute_limit of 50 parallel distinct runs (flow case 5)",
  async () => {
    const alice = await newUser(db);
    const bob = await newUser(db);
    const { token } = await publishedFlow(alice, { use_owner_keys: true, per_minute_limit: 7 });
    const results = await Promise.all(
      Array.from(
        { length: 50 },
        () =>
          checkAndLogRun(rt, token, crypto.randomUUID(), bob.id).then(
            () => "ok",
            (e: AppError) => e,
          ),
      ),
    );
    assertEquals(results.filter((r) => r === "ok").length, 7);
    const refused = results.filter((r) => r !== "ok") as AppError[];
    assert(refused.every((e) => e.code === "RATE_LIMITED" && e.status === 429));
    assert(Number(refused[0].headers["retry-after"]) >= 1);
  },
);

suite.test(
  "check_and_log_run keeps the daily limit exact under concurrency (flow case 6)",
  async () => {
    const alice = await newUser(db);
    const bob = await newUser(db);
    const { token } = await publishedFlow(alice, {
      use_owner_keys: true,
      per_minute_limit: 1000,
      daily_limit: 12,
    });
    const outcomes = await Promise.all(
      Array.from(
        { length: 40 },
        () => codeOf(checkAndLogRun(rt, token, crypto.randomUUID(), bob.id)),
      ),
    );
    assertEquals(
      outcomes.filter((o) => o === "ok").length,
      12,
    );
    assertEquals(outcomes.filter((o) => o === "DAILY_QUOTA_EXCEEDED").length, 28);
  },
);

suite.test(
  "check_and_log_run enforces the default 10 per minute and 100 per day on a controlled clock",
  async () => {
    const alice = await newUser(db);
    const bob = await newUser(db);
    const { token } = await publishedFlow(alice, { use_owner_keys: true });
    const start = new Date("2030-01-01T00:00:00Z");
    const at = (seconds: number) => new Date(start.getTime() + seconds * 1000);
    const run = (seconds: number) =>
      codeOf(checkAndLogRun(rt, token, crypto.randomUUID(), bob.id, at(seconds)));

    for (let i = 0; i < 10; i++) assertEquals(await run(i), "ok");
    assertEquals(await run(30), "RATE_LIMITED", "11th run in the same minute");
    let admitted = 10;
    let second = 61;
    while (admitted < 100) {
      for (let i = 0; i < 10 && admitted < 100; i++, admitted++) {
        assertEquals(
          await run(second + i),
          "ok",
        );
      }
      second += 61;
    }
    assertEquals(await run(second + 1), "DAILY_QUOTA_EXCEEDED", "101st run in the same day");
    assertEquals(await run(24 * 3600 + 5), "ok", "the next UTC day starts again");
  },
);

suite.test(
  "check_and_log_run refuses an unknown token and the audit trail records uses and refusals",
  async () => {
    const alice = await newUser(db);
    const bob = await newUser(db);
    assertEquals(
      await codeOf(checkAndLogRun(rt, `shr_${"B".repeat(43)}`, crypto.randomUUID(), bob.id)),
      "SHARE_TOKEN_INVALID",
    );
    const { flowId, token } = await publishedFlow(alice, { use_owner_keys: true });
    await checkAndLogRun(rt, token, crypto.randomUUID(), bob.id);
    await call({ action: "update", flow_id: flowId, use_owner_keys: false }, alice);
    await codeOf(checkAndLogRun(rt, token, crypto.randomUUID(), bob.id));
    const events = await db.query<{ event: string; actor_id: string }>(
      "select event, actor_id from public.credential_events where owner_id = $1::uuid order by id",
      [alice.id],
    );
    assertEquals(events.map((e) => e.event), ["use_share", "denied"]);
    assert(events.every((e) => e.actor_id === bob.id));
  },
);

suite.test("flows never log a share token", async () => {
  const alice = await newUser(db);
  const { result, lines } = await captureLogs(async () => {
    const { token } = await publishedFlow(alice, { use_owner_keys: true });
    await codeOf(checkAndLogRun(rt, token, "not-a-uuid", alice.id));
    return token;
  });
  assert(lines.every((line) => !line.includes(result)));
});
