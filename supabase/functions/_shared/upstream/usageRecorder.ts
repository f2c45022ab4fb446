/**
 * Per-user daily usage, recorded off the request path. The proxy calls `record` (synchronous,
 * in memory); increments for the same user, day, service and key source are summed and written
 * in one round trip by a timer or an explicit `flush()`; on Supabase the isolate is kept alive
 * until that flush is done (`EdgeRuntime.waitUntil`) and flushes again before it shuts down.
 *
 * The tokens of answers paid by a team shared key also go to that key's usage row
 * (`recordSharedKeyTokens`): its token limits are checked against them before the next call, so
 * those rows are flushed at once rather than on the timer.
 *
 * One bad row never stops the others: when a batch fails for a reason other than the database
 * being unavailable, its rows are written one by one, and a row that fails on its own is logged
 * (redacted) and dropped. While the database is unavailable, rows are kept for the next flush,
 * each for at most `MAX_ATTEMPTS` flushes.
 */
import { keepAliveUntil, onShutdown } from "../core/background.ts";
import { type Database, isDatabaseUnavailable } from "../core/db.ts";
import { isAppError } from "../core/errors.ts";
import type { KeySource, ResolvedKey } from "../sharing/keyResolution.ts";
import { describeError, log } from "../core/log.ts";
import type { Service } from "../contract/providers.ts";
import { tokenCount, tokensPaidFor } from "./tokenUsage.ts";

/** Token counts from a provider's `usage` object; zero when it sent none. */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/** An OpenAI-style `usage` object (`prompt_tokens`, ...) as TokenUsage; a missing count is 0. */
export function tokenUsageOf(
  usage: {
    prompt_tokens?: number | null;
    completion_tokens?: number | null;
    total_tokens?: number | null;
  } | null,
): TokenUsage | null {
  return usage && {
    promptTokens: usage.prompt_tokens ?? 0,
    completionTokens: usage.completion_tokens ?? 0,
    totalTokens: usage.total_tokens ?? 0,
  };
}

export interface UsageEvent {
  userId: string;
  service: Service;
  source: KeySource;
  usage: TokenUsage | null;
}

/** The tokens of one answer paid by the team shared key `sharedKeyId`, used by `userId`. */
export interface SharedKeyTokens {
  sharedKeyId: string;
  userId: string;
  usage: TokenUsage | null;
}

export interface UsageRecorder {
  /** Adds one request (and its tokens) to the in-memory batch. Never throws, never waits. */
  record(event: UsageEvent): void;
  /**
   * Adds an answer's tokens to its shared key's usage row for today, written at once (off the
   * request path). Nothing when the provider reported no tokens. Never throws, never waits.
   */
  recordSharedKeyTokens(event: SharedKeyTokens): void;
  /** Writes the batch now; resolves when it is stored (or kept for the next flush on failure). */
  flush(): Promise<void>;
}

interface Totals {
  user_id: string;
  day: string;
  service: Service;
  key_source: KeySource;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

interface SharedKeyTotals {
  shared_key_id: string;
  user_id: string;
  day: string;
  tokens: number;
}

/** A batched row and the flushes it failed in while the database was unavailable (not sent). */
type Pending<Row> = { row: Row; attempts: number };

/** One kind of row the recorder batches: how rows are merged, stored and named in a log line. */
interface LedgerSpec<Row> {
  keyOf(row: Row): string;
  merge(into: Row, row: Row): void;
  store(rows: Row[]): Promise<unknown>;
  /** The fields a dropped row's log line names (ids and counts, never a secret). */
  describe(row: Row): Record<string, unknown>;
}

export interface UsageRecorderOptions {
  flushIntervalMs?: number;
  /** Clock in ms since the epoch. */
  now?: () => number;
}

const MAX_PENDING_ROWS = 50_000;
/** Flushes a row survives while the database is unavailable (2 s apart: about 20 s of outage). */
const MAX_ATTEMPTS = 10;
const DAY_MS = 86_400_000;

export function createUsageRecorder(
  db: Database,
  options: UsageRecorderOptions = {},
): UsageRecorder {
  const interval = options.flushIntervalMs ?? 2_000;
  const now = options.now ?? Date.now;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timerDue = Infinity;
  /** Ends the keep-alive taken for the scheduled flush. */
  let releaseIsolate: (() => void) | undefined;
  let flushing: Promise<void> = Promise.resolve();

  // The UTC day string, rebuilt only when the clock leaves the day it was built for.
  let day = "";
  let dayStart = 0;
  function today(): string {
    const time = now();
    if (time < dayStart || time >= dayStart + DAY_MS) {
      dayStart = time - (time % DAY_MS);
      day = new Date(dayStart).toISOString().slice(0, 10);
    }
    return day;
  }

  /** A flush within `delayMs`: an earlier one already due stays, a later one is brought forward. */
  function schedule(delayMs: number): void {
    const due = performance.now() + delayMs;
    if (timer !== undefined) {
      if (due >= timerDue) return;
      clearTimeout(timer);
    } else {
      keepAliveUntil(new Promise<void>((resolve) => (releaseIsolate = resolve)));
    }
    timerDue = due;
    const handle = setTimeout(() => void recorder.flush(), delayMs);
    timer = handle;
    // A pending flush must not keep a process (or a test) alive.
    Deno.unrefTimer(handle);
  }

  const unavailable = (error: unknown) =>
    isAppError(error, "CREDENTIALS_UNAVAILABLE") || isDatabaseUnavailable(error);

  /** The batch of one kind of row: pending rows, and a write that drops only the bad ones. */
  function ledger<Row>(spec: LedgerSpec<Row>) {
    let pending = new Map<string, Pending<Row>>();

    function add(into: Map<string, Pending<Row>>, row: Row, attempts = 0): void {
      const key = spec.keyOf(row);
      const existing = into.get(key);
      if (!existing) {
        if (into.size >= MAX_PENDING_ROWS) return;
        into.set(key, { row: { ...row }, attempts });
        return;
      }
      existing.attempts = Math.max(existing.attempts, attempts);
      spec.merge(existing.row, row);
    }

    /** Keeps rows for the next flush, unless they have waited too many already. */
    function keep(rows: Pending<Row>[], error: unknown): void {
      let dropped = 0;
      for (const { row, attempts } of rows) {
        if (attempts + 1 >= MAX_ATTEMPTS) dropped++;
        else add(pending, row, attempts + 1);
      }
      log.warn("usage flush failed: the database is unavailable", {
        kept: rows.length - dropped,
        dropped,
        error: describeError(error),
      });
      schedule(interval);
    }

    async function write(batch: Map<string, Pending<Row>>): Promise<void> {
      if (batch.size === 0) return;
      const rows = [...batch.values()];
      try {
        await spec.store(rows.map((pending) => pending.row));
        return;
      } catch (error) {
        if (unavailable(error)) return keep(rows, error);
      }
      // Something in the batch itself was refused: find it by writing each row on its own.
      const retry: Pending<Row>[] = [];
      let lastOutage: unknown = null;
      for (const one of rows) {
        try {
          await spec.store([one.row]);
        } catch (error) {
          if (unavailable(error)) {
            retry.push(one);
            lastOutage = error;
            continue;
          }
          log.error("usage row refused; dropped", {
            ...spec.describe(one.row),
            error: describeError(error),
          });
        }
      }
      if (retry.length > 0) keep(retry, lastOutage);
    }

    return {
      add: (row: Row) => add(pending, row),
      /** Writes what is pending now; rows recorded meanwhile wait for the next flush. */
      flush(): Promise<void> {
        const batch = pending;
        pending = new Map();
        return write(batch);
      },
    };
  }

  // Sent as text: a driver may JSON-encode a string bound to a jsonb parameter a second time.
  const daily = ledger<Totals>({
    keyOf: (row) => `${row.user_id}|${row.day}|${row.service}|${row.key_source}`,
    merge(into, row) {
      into.requests += row.requests;
      into.prompt_tokens += row.prompt_tokens;
      into.completion_tokens += row.completion_tokens;
      into.total_tokens += row.total_tokens;
    },
    store: (rows) =>
      db.query("select private.record_usage($1::text::jsonb)", [JSON.stringify(rows)]),
    describe: (row) => ({
      user_id: row.user_id,
      day: row.day,
      service: row.service,
      key_source: row.key_source,
      requests: row.requests,
    }),
  });

  const sharedKeys = ledger<SharedKeyTotals>({
    keyOf: (row) => `${row.shared_key_id}|${row.user_id}|${row.day}`,
    merge(into, row) {
      into.tokens += row.tokens;
    },
    store: (rows) =>
      db.query("select private.add_shared_key_tokens($1::text::jsonb)", [JSON.stringify(rows)]),
    describe: (row) => ({
      shared_key_id: row.shared_key_id,
      user_id: row.user_id,
      day: row.day,
      tokens: row.tokens,
    }),
  });

  const recorder: UsageRecorder = {
    record(event) {
      daily.add({
        user_id: event.userId,
        day: today(),
        service: event.service,
        key_source: event.source,
        requests: 1,
        prompt_tokens: tokenCount(event.usage?.promptTokens) ?? 0,
        completion_tokens: tokenCount(event.usage?.completionTokens) ?? 0,
        total_tokens: tokenCount(event.usage?.totalTokens) ?? 0,
      });
      schedule(interval);
    },
    recordSharedKeyTokens(event) {
      const tokens = tokensPaidFor(event.usage);
      if (tokens === 0) return;
      sharedKeys.add({
        shared_key_id: event.sharedKeyId,
        user_id: event.userId,
        day: today(),
        tokens,
      });
      // The key's next call is decided on these: write them now, not on the timer.
      schedule(0);
    },
    flush() {
      // This flush writes what the scheduled one would have, so it replaces it: no timer is
      // left behind (after a shutdown's flush, say), and the keep-alive ends when this is done.
      const done = releaseIsolate;
      clearTimeout(timer);
      timer = undefined;
      timerDue = Infinity;
      releaseIsolate = undefined;
      // Flushes run one after another, so a batch is never written twice.
      flushing = flushing.then(() => Promise.all([sharedKeys.flush(), daily.flush()])).then(
        () => {},
      );
      if (done) flushing.then(done, done);
      return flushing;
    },
  };
  return recorder;
}

const recorders = new WeakMap<Database, UsageRecorder>();

/** The isolate's recorder for `db`, created on first use. */
export function usageRecorderFor(db: Database): UsageRecorder {
  let recorder = recorders.get(db);
  if (!recorder) {
    const created = createUsageRecorder(db);
    recorder = created;
    recorders.set(db, created);
    onShutdown(() => created.flush());
  }
  return recorder;
}

/**
 * Adds an answer's tokens to the shared key that paid for it, when `key` is one (any other key:
 * nothing). `usage` is what the provider reported; null adds nothing.
 */
export function chargeSharedKey(
  db: Database,
  key: Pick<ResolvedKey, "sharedKeyId">,
  userId: string,
  usage: TokenUsage | null,
): void {
  if (!key.sharedKeyId) return;
  usageRecorderFor(db).recordSharedKeyTokens({ sharedKeyId: key.sharedKeyId, userId, usage });
}
