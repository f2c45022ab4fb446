/**
 * Per-user daily usage, recorded off the request path. The proxy calls `record` (synchronous,
 * in memory); increments for the same user, day, service and key source are summed and written
 * in one round trip by a timer or an explicit `flush()`. A failed flush keeps its increments for
 * the next one.
 */
import type { Database } from "./db.ts";
import type { KeySource } from "./keyResolution.ts";
import { describeError, log } from "./log.ts";
import type { Service } from "./providers.ts";
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
const DAY_MS = 86_400_000;

export function createUsageRecorder(
  db: Database,
  options: UsageRecorderOptions = {},
): UsageRecorder {
  const interval = options.flushIntervalMs ?? 2_000;
  const now = options.now ?? Date.now;
  let pending = new Map<string, Totals>();
  let timer: ReturnType<typeof setTimeout> | undefined;
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
    existing.requests += row.requests;
    existing.prompt_tokens += row.prompt_tokens;
    existing.completion_tokens += row.completion_tokens;
    existing.total_tokens += row.total_tokens;
  }

  function schedule(): void {
    if (timer !== undefined) return;
    const handle = setTimeout(() => {
      timer = undefined;
      void recorder.flush();
    }, interval);
    timer = handle;
    // A pending flush must not keep a process (or a test) alive.
    Deno.unrefTimer(handle);
  }

  async function write(batch: Map<string, Totals>): Promise<void> {
    if (batch.size === 0) return;
    try {
      // Sent as text: a driver may JSON-encode a string bound to a jsonb parameter a second time.
      await db.query("select private.record_usage($1::text::jsonb)", [
        JSON.stringify([...batch.values()]),
      ]);
    } catch (error) {
      log.warn("usage flush failed; keeping the batch", {
        rows: batch.size,
        error: describeError(error),
      });
      for (const row of batch.values()) add(pending, row);
      schedule();
    }
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
      // Flushes run one after another, so a batch is never written twice.
      flushing = flushing.then(() => {
        const batch = pending;
        pending = new Map();
        return write(batch);
      });
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
    recorder = createUsageRecorder(db);
    recorders.set(db, recorder);
  }
  return recorder;
}
