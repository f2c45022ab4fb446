import { assert, assertEquals } from "../support/assert.ts";
import { AppError } from "../../supabase/functions/_shared/core/errors.ts";
import { buildErrorResponse } from "../../supabase/functions/_shared/contract/errorCodes.ts";
import {
  encodeEvent,
  errorEvent,
  ServerSentEventStream,
  streamSse,
} from "../../supabase/functions/_shared/http/sse.ts";
import { captureLogs } from "../support/runtime.ts";

async function encode(...events: object[]): Promise<string> {
  const stream = ReadableStream.from(events).pipeThrough(new ServerSentEventStream());
  return await new Response(stream).text();
}

Deno.test("ServerSentEventStream writes JSON data lines and comments", async () => {
  assertEquals(
    await encode({ data: { type: "delta", content: "a\nb" } }),
    'data: {"type":"delta","content":"a\\nb"}\n\n',
  );
  assertEquals(await encode({ comment: "ping" }), ": ping\n\n");
  assertEquals(await encode({ event: "x", id: "1", data: 1 }), "event: x\nid: 1\ndata: 1\n\n");
});

Deno.test("ServerSentEventStream refuses event and id values containing newlines", async () => {
  for (const bad of [{ event: "a\nb", data: 1 }, { id: "1\r2", data: 1 }]) {
    let failed = false;
    try {
      await encode(bad);
    } catch (error) {
      failed = error instanceof SyntaxError;
    }
    assert(failed, `accepted ${JSON.stringify(bad)}`);
  }
});

Deno.test("streamSse turns a failure mid-stream into the error envelope and closes", async () => {
  const response = streamSse(async (writer) => {
    writer.send({ type: "delta", content: "x" });
    await Promise.resolve();
    throw new AppError("OPENAI_RATE_LIMITED");
  }, { heartbeatMs: 10_000, context: "test" });
  assertEquals(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
  assertEquals(response.headers.get("cache-control"), "no-cache");
  const text = await response.text();
  const events = text.trim().split("\n\n").map((block) => JSON.parse(block.slice("data: ".length)));
  assertEquals(events[1], {
    type: "error",
    error: {
      code: "OPENAI_RATE_LIMITED",
      message: "OpenAI rate limit reached for your key. Try again shortly.",
      recoverable: true,
    },
  });
});

Deno.test("streamSse hides an unexpected error behind INTERNAL_ERROR without a stack", async () => {
  const { result } = await captureLogs(() =>
    streamSse(() => Promise.reject(new Error("secret internals at line 42")), {
      heartbeatMs: 10_000,
      context: "test",
    })
      .text()
  );
  assert(result.includes('"code":"INTERNAL_ERROR"'));
  assert(!result.includes("internals"));
});

Deno.test("streamSse cancel aborts the producer's signal", async () => {
  let seen: AbortSignal | null = null;
  const producerDone = Promise.withResolvers<void>();
  const response = streamSse(async (writer) => {
    seen = writer.signal;
    writer.send({ type: "run.started" });
    await new Promise((resolve) =>
      writer.signal.addEventListener("abort", resolve, { once: true })
    );
    producerDone.resolve();
  }, { heartbeatMs: 10_000, context: "test" });
  const reader = response.body!.getReader();
  await reader.read();
  await reader.cancel();
  await producerDone.promise;
  assert(seen !== null && (seen as AbortSignal).aborted);
});

Deno.test("streamSse sends comment heartbeats at the configured interval", async () => {
  const response = streamSse(() => new Promise((resolve) => setTimeout(resolve, 130)), {
    heartbeatMs: 40,
    context: "test",
  });
  const text = await response.text();
  assert((text.match(/^: ping$/gm) ?? []).length >= 2, text);
});

Deno.test("errorEvent does write each wire's error event", () => {
  // The envelope as the table writes it, without its braces.
  const envelope = JSON.stringify(buildErrorResponse("STREAM_TIME_LIMIT")).slice(1, -1);
  const message = JSON.parse(`{${envelope}}`).error.message;
  assertEquals(
    encodeEvent(errorEvent({ code: "STREAM_TIME_LIMIT" })),
    `data: {"type":"error",${envelope}}\n\n`,
  );
  assertEquals(
    encodeEvent(errorEvent({ code: "STREAM_TIME_LIMIT" }, "anthropic")),
    `event: error\ndata: {"type":"error",${envelope}}\n\n`,
  );
  assertEquals(
    encodeEvent(errorEvent({ code: "STREAM_TIME_LIMIT" }, "responses", 7)),
    `event: error\ndata: {"type":"error","sequence_number":7,"code":"STREAM_TIME_LIMIT","message":${
      JSON.stringify(message)
    },"param":null,${envelope}}\n\n`,
  );
});
