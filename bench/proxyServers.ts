/**
 * The servers the proxy benchmark measures, each run as its own child process so its RSS can be
 * read and it does not share an event loop with the load generator:
 *   upstream         a minimal fast OpenAI-style fake
 *   bare <upstream>  a bare Deno fetch pass-through (the floor for this runtime)
 *   js-relay <upstream>  the same with a JS TransformStream in the middle: a relay that sees the
 *                    bytes (Deno no longer pipes them natively) and leaves each chunk's memory to
 *                    the garbage collector
 *   required <upstream>  bare plus only the runtime work every answer of ours needs, and none of
 *                    our code: the floor for any pass-through that meets the issue
 *   ours <upstream> [db url]  openai-proxy served as deployed (Deno.serve(handler)), with real
 *                    JWT verification and key lookup (Postgres at db url, else embedded PGlite)
 * Each prints one JSON line `{url, token?}` on stdout once it listens.
 */
import { startLocalStack } from "../local/stack.ts";
import { CORS_RESPONSE_HEADERS } from "../supabase/functions/_shared/http/pipeline.ts";
import { FORWARDED_RESPONSE_HEADERS } from "../supabase/functions/_shared/http/pipeline.ts";
import { createHandler } from "../supabase/functions/openai-proxy/handler.ts";

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
const SMALL_EVENTS = Array.from(
  { length: 5 },
  (_, i) =>
    encoder.encode(
      `data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"t${i}"}}]}\n\n`,
    ),
);
const BULK_CHUNK = encoder.encode(
  `data: ${JSON.stringify({ pad: "x".repeat(64 * 1024 - 20) })}\n\n`,
);

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

/** `count` small SSE events, each flushed on its own, as a model streams tokens. */
function tokenStream(count: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    async pull(controller) {
      if (sent === count) {
        controller.enqueue(encoder.encode("data: [DONE]\n\n"));
        controller.close();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 0));
      controller.enqueue(SMALL_EVENTS[sent++ % SMALL_EVENTS.length]);
    },
  }, { highWaterMark: 0 });
}

function serveUpstream(): string {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const body = request.method === "POST" ? await request.json() : {};
      if (!body.stream) {
        return new Response(COMPLETION, { headers: COMPLETION_HEADERS });
      }
      const stream = body.bench_bytes
        ? bulkStream(body.bench_bytes)
        : body.bench_events
        ? tokenStream(body.bench_events)
        : ReadableStream.from([
          ...SMALL_EVENTS,
          encoder.encode("data: [DONE]\n\n"),
        ]);
      return new Response(stream, { headers: { "content-type": "text/event-stream" } });
    },
  );
  return `http://127.0.0.1:${server.addr.port}/v1`;
}

/** The same request to the upstream, as plainly as Deno's fetch allows. */
async function forwardPlainly(
  upstream: string,
  request: Request,
  signal: AbortSignal,
): Promise<Response> {
  const path = new URL(request.url).pathname.replace(/^\/v1/, "");
  return await fetch(upstream + path, {
    method: request.method,
    headers: {
      "content-type": request.headers.get("content-type") ?? "application/json",
      authorization: request.headers.get("authorization") ?? "",
    },
    body: request.method === "GET" ? null : await request.arrayBuffer(),
    signal,
  });
}

function serveBare(upstream: string, relayInJs = false): string {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const response = await forwardPlainly(upstream, request, request.signal);
      const body = relayInJs ? response.body?.pipeThrough(new TransformStream()) : response.body;
      return new Response(body, {
        status: response.status,
        headers: { "content-type": response.headers.get("content-type") ?? "application/json" },
      });
    },
  );
  return `http://127.0.0.1:${server.addr.port}/v1`;
}

/**
 * The bare pass-through plus the runtime work the issue asks of every answer, with none of our
 * code (no JWT, no key lookup, no timeouts, no usage accounting):
 *   - an AbortController of its own, tied to the client's signal, so the upstream can be aborted
 *     for other reasons too (timeouts);
 *   - the body read whole when it is a JSON answer, since `usage` is in it, and relayed through
 *     JS when it is a stream, since the usage event is at its end;
 *   - the headers every answer carries: `x-key-source`, CORS, and the provider's own ones.
 * What separates "ours" from this row is our own code; what separates this row from "bare" is
 * what the runtime charges for the work itself.
 */
function serveRequired(upstream: string): string {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const abort = new AbortController();
      let settled = false;
      const onClientGone = () => {
        if (!settled) abort.abort(request.signal.reason);
      };
      request.signal.addEventListener("abort", onClientGone, { once: true });
      const response = await forwardPlainly(upstream, request, abort.signal);
      const headers: Record<string, string> = { ...CORS_RESPONSE_HEADERS, "x-key-source": "user" };
      response.headers.forEach((value, name) => {
        if (FORWARDED_RESPONSE_HEADERS.has(name)) headers[name] = value;
      });
      const stream = headers["content-type"]?.startsWith("text/event-stream");
      const body = stream
        ? response.body?.pipeThrough(new TransformStream())
        : await response.bytes();
      settled = true;
      request.signal.removeEventListener("abort", onClientGone);
      return new Response(body, { status: response.status, headers });
    },
  );
  return `http://127.0.0.1:${server.addr.port}/v1`;
}

async function serveOurs(upstream: string, dbUrl: string): Promise<{ url: string; token: string }> {
  // Postgres over the network when the bench found one, as deployed; else embedded PGlite.
  const stack = await startLocalStack({
    dataDir: await Deno.makeTempDir({ prefix: "byok-proxy-bench-" }),
    port: 0,
    dbUrl: dbUrl || null,
    env: { OPENAI_BASE_URL: upstream },
  });
  const signIn = await fetch(`${stack.url}/auth/v1/dev/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "bench@proxy.local" }),
  });
  const token = (await signIn.json()).access_token as string;
  const stored = await fetch(`${stack.functionsUrl}/credentials-manager`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ action: "set", service: "openai", value: "sk-bench-user-key-0000" }),
  });
  if (!stored.ok) throw new Error(`storing the bench key failed: ${stored.status}`);
  // Serve the function the way its index.ts is deployed, `Deno.serve(handler)`: the local stack's
  // gateway (a second JWT check for verify_jwt, a request copy) is dev tooling, not part of the path.
  const handler = createHandler(stack.runtime);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  return { url: `http://127.0.0.1:${server.addr.port}/openai-proxy/v1`, token };
}

if (import.meta.main) {
  const [mode, upstream] = Deno.args;
  const ready = mode === "upstream"
    ? { url: serveUpstream() }
    : mode === "bare"
    ? { url: serveBare(upstream) }
    : mode === "js-relay"
    ? { url: serveBare(upstream, true) }
    : mode === "required"
    ? { url: serveRequired(upstream) }
    : mode === "ours"
    ? await serveOurs(upstream, Deno.args[2] ?? "")
    : null;
  if (!ready) throw new Error(`unknown mode ${mode}`);
  console.log(JSON.stringify(ready));
}
