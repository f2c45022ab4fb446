/**
 * The bench's own servers, each run as a child process on the port it is given (so its CPU time
 * and RSS can be read, and it shares no event loop with the load generator):
 *   upstream <port>             a fast fake that answers like OpenAI
 *   bare <port> <upstream url>  a bare Deno fetch pass-through: the floor for this runtime
 * It imports nothing, so a bare process's start is Deno's own.
 */
const encoder = new TextEncoder();
/**
 * A non-streamed answer shaped like OpenAI's: its fields, and the request-id, version and
 * rate-limit headers it sends, which the proxy passes on. Each server then does the work real
 * traffic asks of it, not that of a 238-byte toy answer with one header.
 */
const COMPLETION = JSON.stringify({
  id: "chatcmpl-BenchBenchBenchBenchBenchBench",
  object: "chat.completion",
  created: 1_763_856_000,
  model: "gpt-4.1-2025-04-14",
  choices: [{
    index: 0,
    message: {
      role: "assistant",
      content: "Hello! How can I assist you today?",
      refusal: null,
      annotations: [],
    },
    logprobs: null,
    finish_reason: "stop",
  }],
  usage: {
    prompt_tokens: 19,
    completion_tokens: 10,
    total_tokens: 29,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  },
  service_tier: "default",
  system_fingerprint: "fp_bench000000",
});
const COMPLETION_HEADERS = {
  "content-type": "application/json",
  "x-request-id": "req_bench0000000000000000000000000",
  "openai-processing-ms": "310",
  "openai-version": "2020-10-01",
  "x-ratelimit-limit-requests": "10000",
  "x-ratelimit-limit-tokens": "30000000",
  "x-ratelimit-remaining-requests": "9999",
  "x-ratelimit-remaining-tokens": "29999980",
  "x-ratelimit-reset-requests": "6ms",
  "x-ratelimit-reset-tokens": "0s",
};
const BULK_CHUNK = encoder.encode(
  `data: ${JSON.stringify({ pad: "x".repeat(64 * 1024 - 20) })}\n\n`,
);

/** `bytes` of SSE events of 64 KiB each, made as fast as the reader takes them. */
function bulkStream(bytes: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= bytes) {
        controller.enqueue(encoder.encode("data: [DONE]\n\n"));
        controller.close();
        return;
      }
      controller.enqueue(BULK_CHUNK);
      sent += BULK_CHUNK.byteLength;
    },
  }, { highWaterMark: 0 });
}

/** The completion, or with `stream: true` and `bench_bytes: n`, n bytes of events. */
function serveUpstream(port: number): void {
  Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (request) => {
    const body = request.method === "POST" ? await request.json() : {};
    if (!body.stream) return new Response(COMPLETION, { headers: COMPLETION_HEADERS });
    return new Response(bulkStream(Number(body.bench_bytes ?? 0)), {
      headers: { "content-type": "text/event-stream" },
    });
  });
}

/** The same request to the upstream, as plainly as Deno's fetch allows. */
function serveBare(port: number, upstream: string): void {
  Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (request) => {
    const response = await fetch(upstream + new URL(request.url).pathname.replace(/^\/v1/, ""), {
      method: request.method,
      headers: {
        "content-type": request.headers.get("content-type") ?? "application/json",
        authorization: request.headers.get("authorization") ?? "",
      },
      body: await request.arrayBuffer(),
      signal: request.signal,
    });
    return new Response(response.body, {
      status: response.status,
      headers: { "content-type": response.headers.get("content-type") ?? "application/json" },
    });
  });
}

if (import.meta.main) {
  const [mode, port, upstream] = Deno.args;
  if (mode === "upstream") serveUpstream(Number(port));
  else if (mode === "bare") serveBare(Number(port), upstream);
  else throw new Error(`unknown mode ${mode}`);
}
