import { assertEquals } from "../support/assert.ts";
import {
  mapWithConcurrency,
  planChunks,
} from "../../supabase/functions/_shared/upstream/embeddingsBatch.ts";

Deno.test("planChunks caps inputs per chunk", () => {
  assertEquals(planChunks(["a", "b", "c", "d", "e"], { maxInputs: 2, maxCharacters: 100 }), [
    [0, 1],
    [2, 3],
    [4],
  ]);
});

Deno.test("planChunks caps characters per chunk and sends an oversized input alone", () => {
  const inputs = ["aaaa", "bbbb", "cccccccccccc", "dd", "ee"];
  assertEquals(planChunks(inputs, { maxInputs: 10, maxCharacters: 8 }), [[0, 1], [2], [3, 4]]);
});

Deno.test("planChunks keeps every index exactly once, in order", () => {
  const inputs = Array.from({ length: 5000 }, (_, i) => "x".repeat(i % 50 + 1));
  const chunks = planChunks(inputs, { maxInputs: 2048, maxCharacters: 20_000 });
  assertEquals(chunks.flat(), inputs.map((_, i) => i));
  for (const chunk of chunks) {
    assertEquals(chunk.length <= 2048, true);
    assertEquals(chunk.reduce((sum, i) => sum + inputs[i].length, 0) <= 20_000, true);
  }
});

Deno.test("mapWithConcurrency never runs more than the limit at once", async () => {
  let inFlight = 0;
  let most = 0;
  await mapWithConcurrency(Array.from({ length: 12 }, (_, i) => i), 4, async () => {
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 5));
    inFlight--;
  });
  assertEquals(most, 4);
});
