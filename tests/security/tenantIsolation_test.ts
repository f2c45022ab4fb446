/**
 * Tenant isolation under load: many users with distinct keys call openai-proxy, conversation-run
 * and (on another user's shared flow) execute, all at once. Every request names its tenant in
 * its message; the fake upstream records the key each one carried. A request paid with anyone
 * else's key than its own user's (or, for execute, the flow owner's) is a mix-up.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND } from "../support/database.ts";
import { integrationSuite } from "../support/suite.ts";
import { recordCases, recordMixUps } from "./figures.ts";
import {
  FULL,
  jsonHeaders,
  type SecurityStack,
  type SecurityUser,
  startSecurityStack,
} from "./securityStack.ts";

const USERS = FULL ? 100 : 20;
const CONCURRENCY = 16;
let suite: SecurityStack;
const steps = integrationSuite("tenantIsolation", {
  // The stack captures console output for the leak scanner, and its last case closes it before
  // scanning; the closer here makes sure it is closed when a case fails first.
  async setup(onTeardown) {
    suite = await startSecurityStack();
    onTeardown(() => suite.close());
  },
});

/** Runs `jobs` with at most `limit` in flight. */
async function pool<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < jobs.length) {
      const index = next++;
      results[index] = await jobs[index]();
    }
  }));
  return results;
}

steps.test(
  `${USERS} tenants calling at once never get another tenant's key (${DATABASE_KIND})`,
  async () => {
    const users: SecurityUser[] = [];
    for (let i = 0; i < USERS; i++) users.push(await suite.newUser({ providerKey: true }));
    const keyOf = new Map(users.map((u) => [u.id, u.providerKey!]));

    // Each user owns a published flow that spends the owner's keys.
    const shares = new Map<string, string>();
    let flowsAvailable = true;
    for (const owner of users) {
      const created = await fetch(`${suite.stack.url}/functions/v1/flows`, {
        method: "POST",
        headers: jsonHeaders(owner.authorization),
        body: JSON.stringify({ action: "create", name: "isolation", use_owner_keys: true }),
      }).then((r) => r.json()).catch(() => null);
      if (!created?.flow?.id) {
        flowsAvailable = false;
        break;
      }
      const published = await fetch(`${suite.stack.url}/functions/v1/flows`, {
        method: "POST",
        headers: jsonHeaders(owner.authorization),
        body: JSON.stringify({ action: "publish", flow_id: created.flow.id }),
      }).then((r) => r.json());
      suite.scanner.addSecret(
        `share token of ${owner.id.slice(0, 8)}`,
        published.share_token,
        "shr_",
      );
      shares.set(owner.id, published.share_token);
    }

    const chat = (marker: string) => ({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: marker }],
    });
    const calls: { fn: string; run: () => Promise<number> }[] = [];
    users.forEach((user, i) => {
      const send = (fn: string, body: unknown) => async () =>
        (await suite.send(`/functions/v1/${fn}`, {
          method: "POST",
          headers: jsonHeaders(user.authorization),
          body: JSON.stringify(body),
        })).status;
      calls.push({
        fn: "openai-proxy",
        run: send("openai-proxy/v1/chat/completions", chat(`tenant:${user.id}`)),
      });
      calls.push({
        fn: "conversation-run",
        run: send("conversation-run", chat(`tenant:${user.id}`)),
      });
      if (flowsAvailable) {
        const owner = users[(i + 1) % users.length];
        calls.push({
          fn: "execute",
          run: send("execute", {
            shareToken: shares.get(owner.id),
            runId: crypto.randomUUID(),
            provider: "openai",
            request: chat(`tenant:${owner.id}`),
          }),
        });
      }
    });
    // Shuffle so users and functions interleave.
    calls.sort(() => Math.random() - 0.5);
    const before = suite.fake.requests.length;
    const statuses = await pool(calls.map((c) => c.run), CONCURRENCY);

    for (const fn of new Set(calls.map((c) => c.fn))) {
      const mine = statuses.filter((_, i) => calls[i].fn === fn);
      recordCases(fn, mine.length, mine.filter((s) => s >= 500).length);
    }
    const failed = statuses.map((s, i) => [calls[i].fn, s]).filter(([, s]) => s !== 200);
    assertEquals(failed, []);

    let checked = 0;
    let wrong = 0;
    for (const request of suite.fake.requests.slice(before)) {
      const tenant = request.body.match(/tenant:([0-9a-f-]{36})/)?.[1];
      if (!tenant) continue;
      checked++;
      if (suite.fake.keyOf(request) !== keyOf.get(tenant)) wrong++;
    }
    recordMixUps(checked, wrong);
    assertEquals(checked, calls.length);
    assertEquals(wrong, 0);
    assert(flowsAvailable || !FULL, "execute was not exercised: flows is not available");
  },
);

steps.test("tenant isolation leaks no key, token or share token", async () => {
  await suite.close();
  suite.scanner.record();
  assertEquals(suite.scanner.leaks(), []);
});
