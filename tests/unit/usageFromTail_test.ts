import fc from "fast-check";
import { assertEquals } from "../support/assert.ts";
import { usageFromTail } from "../../supabase/functions/_shared/proxyStream.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("usageFromTail does read OpenAI-style usage from a complete answer", () => {
  const body = JSON.stringify({
    id: "chatcmpl-1",
    choices: [{ message: { content: "the word usage appears in text" } }],
    usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 },
  });
  assertEquals(usageFromTail(bytes(body)), {
    promptTokens: 12,
    completionTokens: 5,
    totalTokens: 17,
  });
});

Deno.test("usageFromTail does read the last usage of a stream and Responses-style names", () => {
  const stream = [
    'data: {"type":"response.created","usage":{"input_tokens":1,"output_tokens":1}}',
    'data: {"type":"response.completed","usage":{"input_tokens":40,"output_tokens":9}}',
    "data: [DONE]",
  ].join("\n\n");
  assertEquals(usageFromTail(bytes(stream)), {
    promptTokens: 40,
    completionTokens: 9,
    totalTokens: 49,
  });
});

Deno.test("usageFromTail does answer null without a usage key or with zero counts", () => {
  assertEquals(usageFromTail(bytes('{"choices":[]}')), null);
  assertEquals(usageFromTail(bytes('"usag')), null);
  assertEquals(usageFromTail(new Uint8Array()), null);
  assertEquals(usageFromTail(bytes('{"usage":null}')), null);
});

Deno.test("usageFromTail does find the last usage key wherever the noise around it puts it", () => {
  // Noise drawn from the key's own characters, so near-misses of `"usage"` are common.
  const noise = fc.string({ unit: fc.constantFrom('"', "u", "s", "a", "g", "e", ":", "{", " ") })
    .filter((text) => !text.includes('"usage"'));
  fc.assert(
    fc.property(noise, noise, fc.nat(100_000), fc.nat(100_000), (before, after, p, c) => {
      const text = `${before}"usage":{"prompt_tokens":${p},"completion_tokens":${c}}${after}`;
      const expected = p + c === 0
        ? null
        : { promptTokens: p, completionTokens: c, totalTokens: p + c };
      assertEquals(usageFromTail(bytes(text)), expected);
    }),
    { numRuns: 500 },
  );
});
