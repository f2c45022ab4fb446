/**
 * The usage recorder's background writes against a real database: one refused row never holds
 * up the others, an unavailable database keeps rows for later, and on Supabase the isolate is
 * kept alive until a flush is done.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { createUser, DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { captureLogs } from "../support/runtime.ts";
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
