import { assertEquals } from "../support/assert.ts";
import { chunkReader } from "../../supabase/functions/_shared/core/chunkReader.ts";
import { relayBody, usageFromTail } from "../../supabase/functions/_shared/upstream/proxyStream.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function relayOf(chunks: Uint8Array[]) {
  const tails: Uint8Array[] = [];
  const body = relayBody({
    // A body built in JS: chunkReader hands on its chunks themselves, each with its own buffer.
    chunks: chunkReader(ReadableStream.from(chunks)),
    abort: new AbortController(),
    idleTimeoutMs: 1_000,
    timeLimitMs: 60_000,
    eventStream: true,
    codeForFailure: () => "OPENAI_API_ERROR",
    onEnd: (tail) => tails.push(tail.slice()),
  });
  return { reader: body.getReader(), tails };
}

Deno.test("relayBody does leave every chunk intact for a consumer that keeps them", async () => {
  const sent = ["data: one\n\n", "data: two\n\n", 'data: {"usage":{"total_tokens":3}}\n\n']
    .map((text) => encoder.encode(text));
  const { reader, tails } = relayOf(sent);
  const kept: Uint8Array[] = [];
  for (let part = await reader.read(); !part.done; part = await reader.read()) {
    kept.push(part.value);
  }
  assertEquals(
    kept.map((chunk) => decoder.decode(chunk)),
    sent.map((chunk) => decoder.decode(chunk)),
  );
  assertEquals(usageFromTail(tails[0])?.totalTokens, 3);
});

Deno.test("relayBody does leave alone a chunk that shares its buffer", async () => {
  const shared = encoder.encode("data: a\n\ndata: b\n\n");
  const { reader } = relayOf([shared.subarray(0, 9), shared.subarray(9)]);
  await reader.read();
  await reader.read();
  await reader.read();
  assertEquals(decoder.decode(shared), "data: a\n\ndata: b\n\n");
});

Deno.test("relayBody does end once and keep the chunk in hand when the client goes away", async () => {
  const chunk = encoder.encode("data: one\n\n");
  const { reader, tails } = relayOf([chunk, encoder.encode("data: two\n\n")]);
  await reader.read();
  await reader.cancel("client gone");
  assertEquals(decoder.decode(chunk), "data: one\n\n");
  assertEquals(tails.length, 1, "the body ended once");
});

Deno.test("relayBody does carry on when the consumer took a chunk's buffer itself", async () => {
  const { reader } = relayOf([encoder.encode("data: one\n\n"), encoder.encode("data: two\n\n")]);
  const first = await reader.read();
  const taken = (first.value!.buffer as ArrayBuffer).transfer();
  const second = await reader.read();
  assertEquals(decoder.decode(taken), "data: one\n\n");
  assertEquals(decoder.decode(second.value), "data: two\n\n");
});

Deno.test("relayBody does end an event stream past its time limit with STREAM_TIME_LIMIT", async () => {
  let cancelled: unknown = null;
  let sent = 0;
  const endless = new ReadableStream<Uint8Array>({
    async pull(controller) {
      await new Promise((resolve) => setTimeout(resolve, 40));
      controller.enqueue(encoder.encode(`data: {"n":${sent++}}\n\n`));
    },
    cancel(reason) {
      cancelled = reason;
    },
  });
  const abort = new AbortController();
  const started = performance.now();
  const body = relayBody({
    chunks: chunkReader(endless),
    abort,
    idleTimeoutMs: 10_000,
    timeLimitMs: 300,
    eventStream: true,
    codeForFailure: () => "OPENAI_API_ERROR",
    onEnd: () => {},
  });
  let text = "";
  for await (const chunk of body) text += decoder.decode(chunk, { stream: true });
  const elapsed = performance.now() - started;
  const events = text.split("\n\n").filter(Boolean);
  const last = JSON.parse(events.at(-1)!.slice("data: ".length));
  assertEquals(last.type, "error");
  assertEquals(last.error.code, "STREAM_TIME_LIMIT");
  assertEquals(last.error.recoverable, false);
  assertEquals(events.length - 1, sent, "every chunk read was relayed before the error event");
  if (elapsed < 300 || elapsed > 1_500) throw new Error(`ended after ${elapsed} ms`);
  if (cancelled === null) throw new Error("the upstream body was not cancelled");
  assertEquals(abort.signal.aborted, true);
});
