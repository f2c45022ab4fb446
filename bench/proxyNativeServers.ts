/**
 * The servers of the native-routes benchmark (bench/proxyNative.ts), each its own process:
 *   upstream         a fast fake streaming an OpenAI chat completion (`/v1/chat/completions`),
 *                    an Anthropic message (`/anthropic/v1/messages`, its named events) and a
 *                    Gemini generation (`/gemini/v1beta/models/m:streamGenerateContent?alt=sse`)
 *   bare <upstream>  a bare Deno fetch pass-through of any path (the floor for this runtime)
 *   ours <upstream> [db url]  llm-proxy served as deployed, with real JWT verification and key
 *                    lookups for the user's OpenAI, Anthropic and Gemini keys
 * Each prints one JSON line `{url, token?}` on stdout once it listens.
 */
import { startLocalStack } from "../local/stack.ts";
import { createHandler } from "../supabase/functions/llm-proxy/handler.ts";

const encoder = new TextEncoder();
const named = (event: string, data: unknown) =>
  `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
const TOKENS = ["Hello", "!", " How", " can", " I", " help", "?"];

const OPENAI_EVENTS = [
  ...TOKENS.map((content) =>
    `data: ${
      JSON.stringify({
        id: "chatcmpl-bench",
        object: "chat.completion.chunk",
        created: 1,
        model: "gpt-bench",
        choices: [{ index: 0, delta: { content }, finish_reason: null }],
      })
    }\n\n`
  ),
  `data: ${
    JSON.stringify({
      id: "chatcmpl-bench",
      object: "chat.completion.chunk",
      choices: [],
      usage: { prompt_tokens: 19, completion_tokens: 7, total_tokens: 26 },
    })
  }\n\n`,
  "data: [DONE]\n\n",
].map((event) => encoder.encode(event));

const ANTHROPIC_EVENTS = [
  named("message_start", {
    type: "message_start",
    message: {
      id: "msg_bench",
      type: "message",
      role: "assistant",
      model: "claude-bench",
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 19, output_tokens: 1 },
    },
  }),
  named("content_block_start", {
    type: "content_block_start",
    index: 0,
    content_block: { type: "text", text: "" },
  }),
  ...TOKENS.map((text) =>
    named("content_block_delta", {
      type: "content_block_delta",
      index: 0,
      delta: { type: "text_delta", text },
    })
  ),
  named("content_block_stop", { type: "content_block_stop", index: 0 }),
  named("message_delta", {
    type: "message_delta",
    delta: { stop_reason: "end_turn", stop_sequence: null },
    usage: { output_tokens: 7 },
  }),
  named("message_stop", { type: "message_stop" }),
].map((event) => encoder.encode(event));

const GEMINI_EVENTS = TOKENS.map((text, i) =>
  encoder.encode(
    `data: ${
      JSON.stringify({
        candidates: [{
          content: { parts: [{ text }], role: "model" },
          ...(i === TOKENS.length - 1 ? { finishReason: "STOP" } : {}),
          index: 0,
        }],
        usageMetadata: {
          promptTokenCount: 19,
          candidatesTokenCount: i + 1,
          totalTokenCount: 20 + i,
        },
        modelVersion: "gemini-bench",
      })
    }\r\n\r\n`,
  )
);

function serveUpstream(): string {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      await request.arrayBuffer();
      const path = new URL(request.url).pathname;
      const events = path.startsWith("/anthropic/")
        ? ANTHROPIC_EVENTS
        : path.startsWith("/gemini/")
        ? GEMINI_EVENTS
        : OPENAI_EVENTS;
      return new Response(ReadableStream.from(events), {
        headers: { "content-type": "text/event-stream" },
      });
    },
  );
  return `http://127.0.0.1:${server.addr.port}`;
}

const PASSED_HEADERS = [
  "content-type",
  "authorization",
  "x-api-key",
  "x-goog-api-key",
  "anthropic-version",
];

function serveBare(upstream: string): string {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const url = new URL(request.url);
      const headers: Record<string, string> = {};
      for (const name of PASSED_HEADERS) {
        const value = request.headers.get(name);
        if (value !== null) headers[name] = value;
      }
      const response = await fetch(upstream + url.pathname + url.search, {
        method: request.method,
        headers,
        body: await request.arrayBuffer(),
        signal: request.signal,
      });
      return new Response(response.body, {
        status: response.status,
        headers: { "content-type": response.headers.get("content-type") ?? "text/event-stream" },
      });
    },
  );
  return `http://127.0.0.1:${server.addr.port}`;
}

async function serveOurs(upstream: string, dbUrl: string): Promise<{ url: string; token: string }> {
  const stack = await startLocalStack({
    dataDir: await Deno.makeTempDir({ prefix: "byok-native-bench-" }),
    port: 0,
    dbUrl: dbUrl || null,
    env: {
      OPENAI_BASE_URL: `${upstream}/v1`,
      ANTHROPIC_BASE_URL: `${upstream}/anthropic/v1`,
      GEMINI_BASE_URL: `${upstream}/gemini/v1beta/openai`,
    },
  });
  const signIn = await fetch(`${stack.url}/auth/v1/dev/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "bench-native@proxy.local" }),
  });
  const token = (await signIn.json()).access_token as string;
  const keys = { openai: "sk-bench-0000", anthropic: "sk-ant-bench-0000", gemini: "AIzaBench0000" };
  for (const [service, value] of Object.entries(keys)) {
    const stored = await fetch(`${stack.functionsUrl}/credentials-manager`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ action: "set", service, value }),
    });
    if (!stored.ok) throw new Error(`storing the ${service} bench key failed: ${stored.status}`);
  }
  // As deployed, `Deno.serve(handler)`, without the local stack's gateway in front.
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createHandler(stack.runtime),
  );
  return { url: `http://127.0.0.1:${server.addr.port}/llm-proxy`, token };
}

if (import.meta.main) {
  const [mode, upstream] = Deno.args;
  const ready = mode === "upstream"
    ? { url: serveUpstream() }
    : mode === "bare"
    ? { url: serveBare(upstream) }
    : mode === "ours"
    ? await serveOurs(upstream, Deno.args[2] ?? "")
    : null;
  if (!ready) throw new Error(`unknown mode ${mode}`);
  console.log(JSON.stringify(ready));
}
