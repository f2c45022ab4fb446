/**
 * Per-user daily usage, recorded off the request path. The proxy calls `record` (synchronous,
 * in memory); increments for the same user, day, service and key source are summed and written
 * in one round trip by a timer or an explicit `flush()`; on Supabase the isolate is kept alive
 * until that flush is done (`EdgeRuntime.waitUntil`) and flushes again before it shuts down.
 *
 * One bad row never stops the others: when a batch fails for a reason other than the database
 * being unavailable, its rows are written one by one, and a row that fails on its own is logged
 * (redacted) and dropped. While the database is unavailable, rows are kept for the next flush,
 * each for at most `MAX_ATTEMPTS` flushes.
 */
import { keepAliveUntil, onShutdown } from "../core/background.ts";
import { type Database, isDatabaseUnavailable } from "../core/db.ts";
import { isAppError } from "../core/errors.ts";
import type { KeySource } from "../sharing/keyResolution.ts";
import { describeError, log } from "../core/log.ts";
import type { Service } from "../contract/providers.ts";
import { tokenCount } from "./tokenUsage.ts";

/** Token counts from a provider's `usage` object; zero when it sent none. */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface UsageEvent {
  userId: string;
  service: Service;
  source: KeySource;
  usage: TokenUsage | null;
}

export interface UsageRecorder {
  /** Adds one request (and its tokens) to the in-memory batch. Never throws, never waits. */
  record(event: UsageEvent): void;
  /** Writes the batch now; resolves when it is stored (or kept for the next flush on failure). */
  flush(): Promise<void>;
}

interface Totals {
  /** Flushes this row failed in while the database was unavailable (not sent). */
  attempts?: number;
  user_id: string;
  day: string;
  service: Service;
  key_source: KeySource;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
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
  let pending = new Map<string, Totals>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Ends the keep-alive taken for the scheduled flush. */
  let scheduledDone: (() => void) | undefined;
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

  function add(into: Map<string, Totals>, row: Totals): void {
    const key = `${row.user_id}|${row.day}|${row.service}|${row.key_source}`;
    const existing = into.get(key);
    if (!existing) {
      if (into.size >= MAX_PENDING_ROWS) return;
      into.set(key, { ...row });
      return;
    }
    existing.attempts = Math.max(existing.attempts ?? 0, row.attempts ?? 0);
    existing.requests += row.requests;
    existing.prompt_tokens += row.prompt_tokens;
    existing.completion_tokens += row.completion_tokens;
    existing.total_tokens += row.total_tokens;
  }

  function schedule(): void {
    if (timer !== undefined) return;
    keepAliveUntil(new Promise<void>((resolve) => (scheduledDone = resolve)));
    const handle = setTimeout(() => void recorder.flush(), interval);
    timer = handle;
    // A pending flush must not keep a process (or a test) alive.
    Deno.unrefTimer(handle);
  }

  // Sent as text: a driver may JSON-encode a string bound to a jsonb parameter a second time.
  const store = (rows: Totals[]) =>
    db.query("select private.record_usage($1::text::jsonb)", [
      JSON.stringify(rows.map(({ attempts: _, ...row }) => row)),
    ]);

  const unavailable = (error: unknown) =>
    isAppError(error, "CREDENTIALS_UNAVAILABLE") || isDatabaseUnavailable(error);

  /** Keeps rows for the next flush, unless they have waited too many already. */
  function keep(rows: Totals[], error: unknown): void {
    let dropped = 0;
    for (const row of rows) {
      const attempts = (row.attempts ?? 0) + 1;
      if (attempts >= MAX_ATTEMPTS) dropped++;
      else add(pending, { ...row, attempts });
    }
    log.warn("usage flush failed: the database is unavailable", {
      kept: rows.length - dropped,
      dropped,
      error: describeError(error),
    });
    schedule();
  }

  async function write(batch: Map<string, Totals>): Promise<void> {
    if (batch.size === 0) return;
    const rows = [...batch.values()];
    try {
      await store(rows);
      return;
    } catch (error) {
      if (unavailable(error)) return keep(rows, error);
    }
    // Something in the batch itself was refused: find it by writing each row on its own.
    const retry: Totals[] = [];
    let lastOutage: unknown = null;
    for (const row of rows) {
      try {
        await store([row]);
      } catch (error) {
        if (unavailable(error)) {
          retry.push(row);
          lastOutage = error;
          continue;
        }
        log.error("usage row refused; dropped", {
          user_id: row.user_id,
          day: row.day,
          service: row.service,
          key_source: row.key_source,
          requests: row.requests,
          error: describeError(error),
        });
      }
    }
    if (retry.length > 0) keep(retry, lastOutage);
  }

  const recorder: UsageRecorder = {
    record(event) {
      add(pending, {
        user_id: event.userId,
        day: today(),
        service: event.service,
        key_source: event.source,
        requests: 1,
        prompt_tokens: tokenCount(event.usage?.promptTokens) ?? 0,
        completion_tokens: tokenCount(event.usage?.completionTokens) ?? 0,
        total_tokens: tokenCount(event.usage?.totalTokens) ?? 0,
      });
      schedule();
    },
    flush() {
      // This flush writes what the scheduled one would have, so it replaces it: no timer is
      // left behind (after a shutdown's flush, say), and the keep-alive ends when this is done.
      const done = scheduledDone;
      clearTimeout(timer);
      timer = undefined;
      scheduledDone = undefined;
      // Flushes run one after another, so a batch is never written twice.
      flushing = flushing.then(() => {
        const batch = pending;
        pending = new Map();
        return write(batch);
      });
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
