/**
 * A real HTTP fake of Anthropic's and Gemini's own APIs on 127.0.0.1:0, speaking each wire
 * format (Anthropic's named SSE events, Gemini's `alt=sse` chunks and JSON shapes) and recording
 * every request. Anthropic lives under `/anthropic/v1`, Gemini under `/gemini/v1beta` (and
 * `/gemini/v1beta/openai` for its OpenAI-compatible paths), as gateways would put them.
 */
import type { RecordedRequest } from "./fakeUpstream.ts";

export interface FakeNativeProviders {
  url: string;
  /** `ANTHROPIC_BASE_URL` for this fake. */
  anthropicBaseUrl: string;
  /** `GEMINI_BASE_URL` for this fake (the OpenAI-compatible base; native paths derive from it). */
  geminiBaseUrl: string;
  requests: RecordedRequest[];
  /** Keys the fake accepts; others get each provider's own invalid-key answer. */
  validKeys: Set<string>;
  close(): Promise<void>;
}

export const ANTHROPIC_USAGE = { input_tokens: 25, output_tokens: 15 };
export const GEMINI_USAGE = { promptTokenCount: 4, candidatesTokenCount: 6, totalTokenCount: 10 };
export const EMBEDDING = [0.25, -0.5, 0.75];

const encoder = new TextEncoder();

/** An SSE body sent one event per chunk, as the providers do. */
function sse(events: string[], headers: Record<string, string>): Response {
  let index = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (index === events.length) {
        controller.close();
        return;
      }
      controller.enqueue(encoder.encode(events[index++]));
    },
  }, { highWaterMark: 0 });
  return new Response(body, { headers: { "content-type": "text/event-stream", ...headers } });
}

const named = (event: string, data: unknown) =>
  `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/** The reply text: which key answered, so a test sees the key that paid. */
const replyFor = (key: string) => ["Hello", " from ", `key …${key.slice(-6)}`];

function anthropic(recorded: RecordedRequest, path: string, key: string): Response {
  const headers = {
    "request-id": "req_fake_anthropic",
    "anthropic-ratelimit-requests-remaining": "49",
  };
  const body = recorded.body ? JSON.parse(recorded.body) : {};
  if (path === "/v1/messages/count_tokens") {
    return Response.json({ input_tokens: 14 }, { headers });
  }
  if (path !== "/v1/messages") return new Response("not found", { status: 404 });
  const parts = replyFor(key);
  const message = {
    id: "msg_fake",
    type: "message",
    role: "assistant",
    model: body.model,
    content: [] as unknown[],
    stop_reason: null as string | null,
    stop_sequence: null,
    usage: { input_tokens: ANTHROPIC_USAGE.input_tokens, output_tokens: 1 },
  };
  if (!body.stream) {
    return Response.json({
      ...message,
      content: [{ type: "text", text: parts.join("") }],
      stop_reason: "end_turn",
      usage: ANTHROPIC_USAGE,
    }, { headers });
  }
  return sse([
    named("message_start", { type: "message_start", message }),
    named("content_block_start", {
      type: "content_block_start",
      index: 0,
      content_block: { type: "text", text: "" },
    }),
    named("ping", { type: "ping" }),
    ...parts.map((text) =>
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
      usage: { output_tokens: ANTHROPIC_USAGE.output_tokens },
    }),
    named("message_stop", { type: "message_stop" }),
  ], headers);
}

const geminiModel = (name: string) => ({
  name: `models/${name}`,
  version: "001",
  displayName: `Fake ${name}`,
  inputTokenLimit: 1000,
  outputTokenLimit: 100,
  supportedGenerationMethods: ["generateContent", "countTokens", "embedContent"],
});

function geminiChunk(text: string, last: boolean) {
  return {
    candidates: [{
      content: { parts: [{ text }], role: "model" },
      ...(last ? { finishReason: "STOP" } : {}),
      index: 0,
    }],
    usageMetadata: last ? GEMINI_USAGE : { promptTokenCount: GEMINI_USAGE.promptTokenCount },
    modelVersion: "gemini-fake",
    responseId: "resp_fake",
  };
}

function gemini(recorded: RecordedRequest, path: string, key: string): Response {
  const body = recorded.body ? JSON.parse(recorded.body) : {};
  // Both API versions answer alike here; `version` is only recorded.
  path = path.replace(/^\/v1(?:beta)?\//, "/v1beta/");
  if (recorded.method === "GET" && path === "/v1beta/models") {
    return Response.json({ models: [geminiModel("gemini-fake"), geminiModel("embedding-fake")] });
  }
  const get = path.match(/^\/v1beta\/models\/([\w.-]+)$/);
  if (recorded.method === "GET" && get) return Response.json(geminiModel(get[1]));
  const action = path.match(/^\/v1beta\/models\/([\w.-]+):(\w+)$/);
  if (!action) return new Response("not found", { status: 404 });
  const parts = replyFor(key);
  switch (action[2]) {
    case "generateContent":
      return Response.json(geminiChunk(parts.join(""), true));
    case "streamGenerateContent": {
      if (!recorded.search.includes("alt=sse")) return new Response("want sse", { status: 400 });
      return sse(
        parts.map((text, i) =>
          `data: ${JSON.stringify(geminiChunk(text, i === parts.length - 1))}\r\n\r\n`
        ),
        {},
      );
    }
    case "countTokens":
      return Response.json({ totalTokens: 4 });
    case "embedContent":
      return Response.json({ embedding: { values: EMBEDDING } });
    case "batchEmbedContents":
      return Response.json({
        embeddings: (body.requests ?? []).map(() => ({ values: EMBEDDING })),
      });
  }
  return new Response("not found", { status: 404 });
}

/** The OpenAI-compatible chat both providers also serve, answering with the key's tail. */
function openAIChat(key: string): Response {
  return Response.json({
    id: "chatcmpl-native-fake",
    object: "chat.completion",
    created: 1,
    model: "m",
    choices: [{
      index: 0,
      message: { role: "assistant", content: replyFor(key).join("") },
      finish_reason: "stop",
    }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });
}

export function startFakeNativeProviders(): FakeNativeProviders {
  const requests: RecordedRequest[] = [];
  const validKeys = new Set<string>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const url = new URL(request.url);
      const recorded: RecordedRequest = {
        method: request.method,
        path: url.pathname,
        search: url.search,
        headers: Object.fromEntries(request.headers),
        body: request.body ? await request.text() : "",
        receivedAt: performance.now(),
      };
      requests.push(recorded);
      if (url.pathname.startsWith("/anthropic/")) {
        const key = recorded.headers["x-api-key"] ?? "";
        if (!validKeys.has(key)) {
          return Response.json({
            type: "error",
            error: { type: "authentication_error", message: "invalid x-api-key" },
          }, { status: 401 });
        }
        if (url.pathname.endsWith("/chat/completions")) return openAIChat(key);
        return anthropic(recorded, url.pathname.slice("/anthropic".length), key);
      }
      if (url.pathname.startsWith("/gemini/v1beta/openai/")) {
        const key = recorded.headers["authorization"]?.replace(/^Bearer /, "") ?? "";
        if (!validKeys.has(key)) return Response.json([{ error: { code: 400 } }], { status: 400 });
        return openAIChat(key);
      }
      if (url.pathname.startsWith("/gemini/")) {
        const key = recorded.headers["x-goog-api-key"] ?? "";
        if (!validKeys.has(key)) {
          return Response.json({
            error: {
              code: 400,
              message: "API key not valid. Please pass a valid API key.",
              status: "INVALID_ARGUMENT",
              details: [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                reason: "API_KEY_INVALID",
              }],
            },
          }, { status: 400 });
        }
        return gemini(recorded, url.pathname.slice("/gemini".length), key);
      }
      return new Response("not found", { status: 404 });
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  return {
    url,
    anthropicBaseUrl: `${url}/anthropic/v1`,
    geminiBaseUrl: `${url}/gemini/v1beta/openai`,
    requests,
    validKeys,
    close: () => server.shutdown(),
  };
}
