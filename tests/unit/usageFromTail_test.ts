import fc from "fast-check";
import { assertEquals } from "../support/assert.ts";
import {
  usageFromEnds,
  usageFromTail,
} from "../../supabase/functions/_shared/upstream/proxyStream.ts";
import { geminiNativeBase } from "../../supabase/functions/_shared/upstream/providerCalls.ts";

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

Deno.test("usageFromTail does read Gemini's last usageMetadata, thoughts counted as output", () => {
  const stream = [
    'data: {"candidates":[],"usageMetadata":{"promptTokenCount":4}}',
    'data: {"candidates":[],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":6,"thoughtsTokenCount":2,"totalTokenCount":12}}',
  ].join("\r\n\r\n");
  assertEquals(usageFromTail(bytes(stream)), {
    promptTokens: 4,
    completionTokens: 8,
    totalTokens: 12,
  });
});

Deno.test("usageFromEnds takes Anthropic's input tokens from message_start, output from message_delta", () => {
  const start =
    'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}\n\n';
  const end =
    'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":15}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n';
  const expected = { promptTokens: 25, completionTokens: 15, totalTokens: 40 };
  // A long stream: head and tail apart. A short one: the head holds the whole body.
  assertEquals(usageFromEnds(bytes(start), bytes(end)), expected);
  assertEquals(usageFromEnds(bytes(start + end), bytes(start + end)), expected);
  // OpenAI streams carry everything in their last usage; the head adds nothing.
  const openai = 'data: {"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n';
  assertEquals(usageFromEnds(bytes('data: {"choices":[]}\n\n'), bytes(openai)), {
    promptTokens: 3,
    completionTokens: 2,
    totalTokens: 5,
  });
});

Deno.test("geminiNativeBase moves Gemini's native root with GEMINI_BASE_URL", () => {
  assertEquals(
    geminiNativeBase("https://generativelanguage.googleapis.com/v1beta/openai", "v1beta"),
    "https://generativelanguage.googleapis.com/v1beta",
  );
  assertEquals(
    geminiNativeBase("http://127.0.0.1:9/gw/gemini/v1beta/openai", "v1"),
    "http://127.0.0.1:9/gw/gemini/v1",
  );
  assertEquals(
    geminiNativeBase("https://gw.example/google", "v1alpha"),
    "https://gw.example/google/v1alpha",
  );
});
