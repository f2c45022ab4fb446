/**
 * The usage recorder's background writes against a real database: one refused row never holds
 * up the others, an unavailable database keeps rows for later, and on Supabase the isolate is
 * kept alive until a flush is done.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { createUser, DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { captureLogs, testRuntime } from "../support/runtime.ts";
import { createSharedKey } from "../../supabase/functions/_shared/sharing/llmConfigStore.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import { AppError } from "../../supabase/functions/_shared/core/errors.ts";
import {
  createUsageRecorder,
  type UsageEvent,
} from "../../supabase/functions/_shared/upstream/usageRecorder.ts";
import { integrationSuite } from "../support/suite.ts";

let db: Database;
const suite = integrationSuite("usageRecorder", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
  },
});
/** Long enough that only an explicit flush() writes. */
const MANUAL = { flushIntervalMs: 3_600_000 };

const event = (userId: string, promptTokens = 1): UsageEvent => ({
  userId,
  service: "openai",
  source: "user",
  usage: { promptTokens, completionTokens: 1, totalTokens: promptTokens + 1 },
});

async function requestsOf(userId: string): Promise<number> {
  const [row] = await db.query<{ requests: number }>(
    "select coalesce(sum(request_count), 0)::int as requests from public.usage_daily where user_id = $1",
    [userId],
  );
  return row.requests;
}

/** The real database, except that the first `failures` statements fail as unavailable. */
function unavailableFor(failures: number): Database {
  let left = failures;
  return {
    ...db,
    query: (text, params) => {
      if (left-- > 0) return Promise.reject(new AppError("CREDENTIALS_UNAVAILABLE"));
      return db.query(text, params);
    },
  };
}

suite.test(
  `usage flush stores every other row when one row is refused, and drops that one (${DATABASE_KIND})`,
  async () => {
    const [alice, bob, mallory] = await Promise.all([
      createUser(db),
      createUser(db),
      createUser(db),
    ]);
    const recorder = createUsageRecorder(db, MANUAL);
    recorder.record(event(alice.id));
    // A key source the table's check refuses (check_violation). Token counts past bigint no
    // longer reach the database: they are clamped where usage is parsed.
    recorder.record({ ...event(mallory.id), source: "stolen" as UsageEvent["source"] });
    recorder.record(event(bob.id));
    const { lines } = await captureLogs(() => recorder.flush());
    assertEquals([await requestsOf(alice.id), await requestsOf(bob.id)], [1, 1]);
    assertEquals(await requestsOf(mallory.id), 0);
    const refused = lines.filter((line) => line.includes("usage row refused"));
    assertEquals(refused.length, 1, lines.join("\n"));
    assert(refused[0].includes(mallory.id));

    // The refused row is gone: the next flush writes only what came since, and logs nothing.
    recorder.record(event(alice.id));
    const next = await captureLogs(() => recorder.flush());
    assertEquals(await requestsOf(alice.id), 2);
    assertEquals(next.lines, []);
  },
);

suite.test(
  "usage flush keeps rows while the database is unavailable and stores them after",
  async () => {
    const alice = await createUser(db);
    const recorder = createUsageRecorder(unavailableFor(2), MANUAL);
    recorder.record(event(alice.id));
    const { lines } = await captureLogs(async () => {
      await recorder.flush();
      recorder.record(event(alice.id));
      await recorder.flush();
    });
    assertEquals(await requestsOf(alice.id), 0);
    assertEquals(lines.filter((l) => l.includes("the database is unavailable")).length, 2);
    await recorder.flush();
    assertEquals(await requestsOf(alice.id), 2);
  },
);

suite.test(
  "usage flush gives up on a row after ten flushes of outage, saying how many it dropped",
  async () => {
    const alice = await createUser(db);
    const recorder = createUsageRecorder(unavailableFor(100), MANUAL);
    recorder.record(event(alice.id));
    const { lines } = await captureLogs(async () => {
      for (let i = 0; i < 12; i++) await recorder.flush();
    });
    // Ten failed flushes, then nothing left to send.
    assertEquals(lines.length, 10, lines.join("\n"));
    assert(lines.at(-1)!.includes('"dropped":1'));
  },
);

suite.test(
  "usage flush keeps a Supabase isolate alive with EdgeRuntime.waitUntil until it is stored",
  async () => {
    const alice = await createUser(db);
    const waited: Promise<unknown>[] = [];
    const global = globalThis as { EdgeRuntime?: unknown };
    global.EdgeRuntime = { waitUntil: (work: Promise<unknown>) => void waited.push(work) };
    try {
      const recorder = createUsageRecorder(db, { flushIntervalMs: 50 });
      recorder.record(event(alice.id));
      recorder.record(event(alice.id));
      assertEquals(waited.length, 1, "one pending flush, one waitUntil");
      assertEquals(await requestsOf(alice.id), 0);
      await waited[0];
      assertEquals(await requestsOf(alice.id), 2);
    } finally {
      delete global.EdgeRuntime;
    }
  },
);

/** A shared key owned by a new user; its id. */
async function newSharedKey(): Promise<string> {
  const owner = await createUser(db);
  const account = `rec-${crypto.randomUUID().slice(0, 8)}`;
  await createSharedKey(
    db,
    { id: owner.id, claims: { sub: owner.id, role: "authenticated" } },
    testRuntime(db).config,
    {
      account_name: account,
      display_name: "Recorded",
      provider: "openai",
      model: null,
      api_key: `sk-recorded-${crypto.randomUUID()}`,
      is_public: true,
      allowed_user_ids: [],
      daily_limit: null,
      per_user_daily_limit: null,
    },
  );
  const [row] = await db.query<{ id: string }>(
    "select id from public.shared_keys where account_name = $1",
    [account],
  );
  return row.id;
}

async function sharedKeyTokensOf(sharedKeyId: string, userId: string): Promise<number> {
  const [row] = await db.query<{ tokens: number }>(
    `select coalesce(sum(tokens), 0)::float8 as tokens from public.shared_key_usage
      where shared_key_id = $1 and user_id = $2`,
    [sharedKeyId, userId],
  );
  return row.tokens;
}

suite.test(
  "a shared key's tokens are written at once, not on the timer: its next call is decided on them",
  async () => {
    const [keyId, alice] = [await newSharedKey(), await createUser(db)];
    const recorder = createUsageRecorder(db, MANUAL);
    recorder.recordSharedKeyTokens({
      sharedKeyId: keyId,
      userId: alice.id,
      usage: { promptTokens: 30, completionTokens: 12, totalTokens: 42 },
    });
    recorder.record(event(alice.id));
    // No flush() here: only the recorder's own prompt write can store the tokens.
    const deadline = performance.now() + 2_000;
    while (await sharedKeyTokensOf(keyId, alice.id) === 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assertEquals(await sharedKeyTokensOf(keyId, alice.id), 42);
    // Nothing reported, nothing charged.
    recorder.recordSharedKeyTokens({ sharedKeyId: keyId, userId: alice.id, usage: null });
    await recorder.flush();
    assertEquals(await sharedKeyTokensOf(keyId, alice.id), 42);
  },
);

suite.test(
  "a shared-key token row that is refused is dropped alone: other keys' rows and the daily ledger are stored",
  async () => {
    const [keyId, alice, bob] = [await newSharedKey(), await createUser(db), await createUser(db)];
    const recorder = createUsageRecorder(db, MANUAL);
    const usage = { promptTokens: 5, completionTokens: 5, totalTokens: 10 };
    recorder.recordSharedKeyTokens({ sharedKeyId: keyId, userId: alice.id, usage });
    recorder.recordSharedKeyTokens({ sharedKeyId: "not-a-uuid", userId: bob.id, usage });
    recorder.recordSharedKeyTokens({ sharedKeyId: keyId, userId: bob.id, usage });
    recorder.record(event(bob.id));
    const { lines } = await captureLogs(() => recorder.flush());
    assertEquals(
      [await sharedKeyTokensOf(keyId, alice.id), await sharedKeyTokensOf(keyId, bob.id)],
      [10, 10],
    );
    assertEquals(await requestsOf(bob.id), 1);
    const refused = lines.filter((line) => line.includes("usage row refused"));
    assertEquals(refused.length, 1, lines.join("\n"));
    assert(refused[0].includes("not-a-uuid"));
  },
);
