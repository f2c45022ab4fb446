import fc from "fast-check";
import { assert, assertEquals } from "../support/assert.ts";
import { createDeadlines, type Deadlines } from "../../supabase/functions/_shared/deadlines.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("a deadline fires once, not before its duration; a cleared one never fires", async () => {
  const deadlines = createDeadlines();
  const start = performance.now();
  const fired: { name: string; at: number }[] = [];
  deadlines.after(30, () => fired.push({ name: "kept", at: performance.now() }));
  const cleared = deadlines.after(30, () => fired.push({ name: "cleared", at: performance.now() }));
  cleared.clear();
  await sleep(100);
  assertEquals(fired.map((f) => f.name), ["kept"]);
  // Deno's timers may round down by under a millisecond.
  assert(fired[0].at - start >= 29, `fired after ${fired[0].at - start} ms`);
  assertEquals(deadlines.pending(), 0);
});

Deno.test("deadlines fire in the order they fall due, across durations and after rearming", async () => {
  const deadlines = createDeadlines();
  const order: string[] = [];
  deadlines.after(60, () => order.push("60 ms"));
  deadlines.after(10, () => order.push("10 ms"));
  await sleep(5);
  deadlines.after(10, () => order.push("10 ms, set 5 ms later"));
  deadlines.after(35, () => order.push("35 ms"));
  await sleep(120);
  assertEquals(order, ["10 ms", "10 ms, set 5 ms later", "35 ms", "60 ms"]);
  // A deadline set after its queue went quiet arms a timer again.
  deadlines.after(10, () => order.push("later"));
  await sleep(50);
  assertEquals(order.at(-1), "later");
});

Deno.test("a deadline set from inside a firing callback fires too", async () => {
  const deadlines = createDeadlines();
  const order: string[] = [];
  deadlines.after(10, () => {
    order.push("first");
    deadlines.after(10, () => order.push("second"));
  });
  await sleep(80);
  assertEquals(order, ["first", "second"]);
});

Deno.test("a callback that throws is reported and the others still fire", async () => {
  const deadlines = createDeadlines();
  const reported: unknown[] = [];
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    reported.push(event.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    const fired: string[] = [];
    deadlines.after(10, () => fired.push("before"));
    deadlines.after(10, () => {
      throw new Error("callback failed");
    });
    deadlines.after(10, () => fired.push("after"));
    await sleep(80);
    assertEquals(fired, ["before", "after"]);
    assertEquals((reported[0] as Error).message, "callback failed");
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});

// The tests below leave a 60 s timer armed (unref'd, it fires into an empty queue), which the
// op sanitizer would report.
const longDeadlines = { sanitizeOps: false };

Deno.test("cleared deadlines are dropped as soon as none older is live", longDeadlines, () => {
  // Requests overlap and finish in any order. The model: the queue keeps every entry from the
  // oldest live one on, and nothing once all are cleared.
  fc.assert(
    fc.property(fc.array(fc.nat({ max: 9 }), { minLength: 1, maxLength: 300 }), (picks) => {
      const deadlines = createDeadlines();
      const live: boolean[] = [];
      const handles: { index: number; clear(): void }[] = [];
      for (const pick of picks) {
        handles.push({ index: live.length, ...deadlines.after(60_000, () => {}) });
        live.push(true);
        if (handles.length > 10) {
          const [done] = handles.splice(pick % handles.length, 1);
          done.clear();
          live[done.index] = false;
        }
        const oldestLive = live.indexOf(true);
        assertEquals(deadlines.pending(), oldestLive < 0 ? 0 : live.length - oldestLive);
      }
      for (const handle of handles) handle.clear();
      assertEquals(deadlines.pending(), 0);
    }),
  );
});

/**
 * 100,000 requests, 10 in flight, each finishing in the order it started; then the last 10 end.
 * Returns the most entries the queues held along the way.
 */
function fifoTraffic(deadlines: Deadlines): number {
  const inFlight: { clear(): void }[] = [];
  let largest = 0;
  for (let i = 0; i < 100_000; i++) {
    inFlight.push(deadlines.after(60_000, () => {}));
    if (inFlight.length > 10) inFlight.shift()!.clear();
    largest = Math.max(largest, deadlines.pending());
  }
  for (const deadline of inFlight) deadline.clear();
  return largest;
}

Deno.test(
  "first-in, first-out traffic keeps the queue at its in-flight size",
  longDeadlines,
  () => {
    const deadlines = createDeadlines();
    assertEquals(fifoTraffic(deadlines), 10);
    assertEquals(deadlines.pending(), 0);
  },
);

Deno.test("one slow deadline does not pin every later one in memory", longDeadlines, () => {
  // A slow upstream's deadline stays live while fast requests come and go behind it: their
  // cleared entries are swept out instead of piling up for the slow one's whole duration.
  const deadlines = createDeadlines();
  const slow = deadlines.after(60_000, () => {});
  const largest = fifoTraffic(deadlines);
  // Bounded by the sweep threshold (1,024 cleared entries), not by the 100,000 set.
  assert(largest <= 1_024 + 12, `the queue held ${largest} entries`);
  // Up to that many cleared entries may wait behind the slow one until it ends.
  assert(deadlines.pending() <= 1_024 + 1);
  slow.clear();
  assertEquals(deadlines.pending(), 0);
});
