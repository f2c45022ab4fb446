import { assert, assertEquals } from "../support/assert.ts";
import {
  chunkReader,
  concatChunks,
  readWhole,
} from "../../supabase/functions/_shared/core/chunkReader.ts";

const encoder = new TextEncoder();

/** A real HTTP body (a byte stream) of `events` small SSE events, each flushed on its own. */
async function withEventServer(
  events: string[],
  use: (body: ReadableStream<Uint8Array>) => Promise<void>,
): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    let index = 0;
    return new Response(
      new ReadableStream({
        async pull(controller) {
          if (index === events.length) return controller.close();
          await new Promise((resolve) => setTimeout(resolve, 1));
          controller.enqueue(encoder.encode(events[index++]));
        },
      }),
      { headers: { "content-type": "text/event-stream" } },
    );
  });
  try {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/`);
    await use(response.body!);
  } finally {
    await server.shutdown();
  }
}

Deno.test("chunkReader does hand on exact-size copies of a network body, in order", async () => {
  const events = Array.from({ length: 40 }, (_, i) => `data: {"n":${i}}\n\n`);
  await withEventServer(events, async (body) => {
    const reader = chunkReader(body);
    const chunks: Uint8Array[] = [];
    for (let chunk = await reader.read(); chunk !== null; chunk = await reader.read()) {
      chunks.push(chunk);
    }
    // Every chunk is still intact after later reads reused the buffer it was read into.
    assertEquals(new TextDecoder().decode(concatChunks(chunks)), events.join(""));
    for (const chunk of chunks) {
      assertEquals(chunk.buffer.byteLength, chunk.byteLength, "a chunk keeps no spare buffer");
    }
  });
});

Deno.test("chunkReader does read a body built in JS, which is not a byte stream", async () => {
  const body = new Response(ReadableStream.from([encoder.encode("ab"), encoder.encode("c")])).body!;
  const reader = chunkReader(body);
  assertEquals(new TextDecoder().decode((await reader.read())!), "ab");
  assertEquals(new TextDecoder().decode((await reader.read())!), "c");
  assertEquals(await reader.read(), null);
});

Deno.test("chunkReader does cancel the body it reads", async () => {
  let cancelled: unknown = null;
  const body = new ReadableStream<Uint8Array>({
    type: "bytes",
    pull: (controller) => controller.enqueue(encoder.encode("x")),
    cancel: (reason) => void (cancelled = reason),
  });
  const reader = chunkReader(body);
  assert((await reader.read())!.byteLength === 1);
  await reader.cancel("client gone");
  assertEquals(cancelled, "client gone");
});

/**
 * A body that sends `parts`, then stalls; `cancelled` records why it was cancelled. A byte stream
 * (as a network body is) unless `kind` is "js".
 */
function stallingBody(parts: string[], kind: "bytes" | "js" = "js") {
  const record: { cancelled: unknown } = { cancelled: null };
  const body = new ReadableStream<Uint8Array>({
    ...(kind === "bytes" ? { type: "bytes" as const } : {}),
    start(controller) {
      for (const part of parts) controller.enqueue(encoder.encode(part));
    },
    cancel(reason) {
      record.cancelled = reason ?? "cancelled";
    },
  });
  return { body, record };
}

const limit = {
  maxBytes: 1_000,
  overflow: () => new RangeError("too large"),
  ms: 1_000,
  timeout: () => new DOMException("stalled", "TimeoutError"),
};

Deno.test("readWhole does read a whole body into one array", async () => {
  const body = ReadableStream.from(["ab", "cd"].map((part) => encoder.encode(part)));
  assertEquals(new TextDecoder().decode(await readWhole(body, limit)), "abcd");
});

Deno.test("readWhole does read a network body of declared length into one array", async () => {
  const text = "x".repeat(70_000);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    return new Response(text);
  });
  try {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/`);
    const declaredBytes = Number(response.headers.get("content-length"));
    const bytes = await readWhole(response.body!, { ...limit, maxBytes: 100_000, declaredBytes });
    assertEquals(new TextDecoder().decode(bytes), text);
  } finally {
    await server.shutdown();
  }
});

Deno.test("readWhole does read a byte stream past its declared or first buffer's size", async () => {
  for (const declaredBytes of [2, undefined]) {
    const parts = ["ab", "cd", "x".repeat(20_000), "ef"];
    const body = ReadableStream.from(parts.map((part) => encoder.encode(part)));
    const bytes = await readWhole(byteStream(body), { ...limit, maxBytes: 30_000, declaredBytes });
    assertEquals(new TextDecoder().decode(bytes), parts.join(""), `declared ${declaredBytes}`);
  }
});

/** `body` as a byte stream, as a network body is. */
function byteStream(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream({
    type: "bytes",
    async pull(controller) {
      const { done, value } = await reader.read();
      if (!done) return controller.enqueue(value);
      controller.close();
      controller.byobRequest?.respond(0); // a pending read of a byte stream ends only so
    },
  });
}

for (const kind of ["bytes", "js"] as const) {
  Deno.test(`readWhole does cancel a stalled body at its deadline (${kind})`, async () => {
    const { body, record } = stallingBody(['{"id":'], kind);
    let failure: unknown = null;
    await readWhole(body, { ...limit, ms: 50, declaredBytes: 20 }).catch((error) =>
      failure = error
    );
    assertEquals((failure as Error)?.name, "TimeoutError");
    assert(record.cancelled !== null, "the stalled body was not cancelled");
  });

  Deno.test(`readWhole does cancel a body past its byte cap (${kind})`, async () => {
    const { body, record } = stallingBody(["x".repeat(600), "x".repeat(600)], kind);
    let failure: unknown = null;
    await readWhole(body, { ...limit, declaredBytes: 600 }).catch((error) => failure = error);
    assert(failure instanceof RangeError, String(failure));
    assert(record.cancelled !== null, "the oversized body was not cancelled");
  });

  Deno.test(`readWhole does cancel the body when its signal aborts (${kind})`, async () => {
    const { body, record } = stallingBody([], kind);
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error("client gone")), 20);
    let failure: unknown = null;
    await readWhole(body, { ...limit, signal: abort.signal }).catch((error) => failure = error);
    assertEquals((failure as Error)?.message, "client gone");
    assert(record.cancelled !== null, "the body was not cancelled");
  });
}
