/**
 * A real HTTP fake of an upstream provider on 127.0.0.1. It records every request it receives
 * (method, path, headers, body) and answers like the OpenAI API for the keys it knows.
 * Routes can be overridden per test with `route`.
 */

export interface RecordedRequest {
  method: string;
  path: string;
  search: string;
  headers: Record<string, string>;
  body: string;
  receivedAt: number;
}

export type FakeRoute = (
  request: Request,
  recorded: RecordedRequest,
) => Response | Promise<Response>;

export interface FakeUpstream {
  url: string;
  /** Base URL to use as a provider base, e.g. `${url}/v1`. */
  baseUrl: string;
  requests: RecordedRequest[];
  /** Keys the fake accepts; any other key gets a 401 in the OpenAI error format. */
  validKeys: Set<string>;
  /** Override a "METHOD /path" route; return the fake to chain. */
  route(key: string, handler: FakeRoute): FakeUpstream;
  /** Drop an override, restoring the default answer. */
  unroute(key: string): void;
  /** The key a request carried, in whichever header style it used. */
  keyOf(request: RecordedRequest): string | null;
  close(): Promise<void>;
}

const openAIError = (status: number, message: string, type: string) =>
  Response.json({ error: { message, type, param: null, code: null } }, {
    status,
    headers: { "x-request-id": `req_fake_${status}` },
  });

function keyFrom(headers: Record<string, string>): string | null {
  const bearer = headers["authorization"]?.match(/^Bearer\s+(.+)$/i)?.[1];
  return bearer ?? headers["x-api-key"] ?? headers["api_key"] ?? null;
}

/** The error a fake breaks its stream with, to cut the connection mid-body. */
export class FakeReset extends Error {
  constructor() {
    super("fake reset");
    this.name = "FakeReset";
  }
}

/**
 * The fakes' `onError`: Deno.serve reports a body stream's error there, and a reset the test asked
 * for is no news. Anything else is printed, as Deno would.
 */
export function quietOnReset(error: unknown): Response {
  if (!(error instanceof FakeReset)) console.error(error);
  return new Response(null, { status: 500 });
}

export function startFakeUpstream(): FakeUpstream {
  const requests: RecordedRequest[] = [];
  const validKeys = new Set<string>();
  const routes = new Map<string, FakeRoute>();

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {}, onError: quietOnReset },
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
      const custom = routes.get(`${request.method} ${url.pathname}`);
      if (custom) return await custom(request, recorded);

      const key = keyFrom(recorded.headers);
      if (!key || !validKeys.has(key)) {
        return openAIError(401, "Incorrect API key provided.", "invalid_request_error");
      }
      if (request.method === "POST" && url.pathname.endsWith("/chat/completions")) {
        return chatCompletion(recorded);
      }
      if (
        url.pathname.endsWith("/models") || url.pathname.endsWith("/key") ||
        url.pathname.endsWith("/tasks")
      ) {
        return Response.json({
          object: "list",
          data: [{ id: "fake-model", object: "model", owned_by: "fake" }],
        });
      }
      return openAIError(
        404,
        `No route ${request.method} ${url.pathname}`,
        "invalid_request_error",
      );
    },
  );

  const url = `http://127.0.0.1:${server.addr.port}`;
  const fake: FakeUpstream = {
    url,
    baseUrl: `${url}/v1`,
    requests,
    validKeys,
    route(key, handler) {
      routes.set(key, handler);
      return fake;
    },
    unroute: (key) => void routes.delete(key),
    keyOf: (request) => keyFrom(request.headers),
    close: () => server.shutdown(),
  };
  return fake;
}

/** What the fake's default `POST .../chat/completions` answers: it echoes `user` and the key's tail. */
export const FAKE_USAGE = { prompt_tokens: 7, completion_tokens: 11, total_tokens: 18 };

function chatCompletion(recorded: RecordedRequest): Response {
  const body = JSON.parse(recorded.body || "{}");
  const content = `echo user=${body.user ?? ""} key=${keyFrom(recorded.headers)?.slice(-6) ?? ""}`;
  if (body.stream) {
    return sseChat({
      chunks: [content],
      usage: body.stream_options?.include_usage ? FAKE_USAGE : undefined,
    })(
      new Request("http://fake"),
      recorded,
    ) as Response;
  }
  return Response.json({
    id: "chatcmpl-fake",
    object: "chat.completion",
    created: 1,
    model: body.model ?? "fake-model",
    choices: [{
      index: 0,
      message: { role: "assistant", content },
      finish_reason: "stop",
      logprobs: null,
    }],
    usage: FAKE_USAGE,
  }, { headers: { "x-request-id": "req_fake_ok" } });
}

/** One streamed response as the fake saw it: when each chunk went out and when the connection closed. */
export interface StreamRecord {
  openedAt: number;
  sentAt: number[];
  /** When the client (the proxy) went away before the stream ended; null while open or when it ended normally. */
  closedAt: number | null;
  completed: boolean;
}

export interface SseChatOptions {
  /** The delta contents, one SSE event each. */
  chunks: string[];
  /** Pause before every chunk after the first. */
  delayMs?: number;
  /** Awaited before chunk `index` (index >= 1) is sent: lets a test hold the fake back. */
  beforeChunk?: (index: number) => Promise<void>;
  /** Sent as a final chunk with empty choices, as with `stream_options.include_usage`. */
  usage?: Record<string, number>;
  /** Reset the connection after this many chunks. */
  resetAfter?: number;
  /** Stop sending (but keep the connection open) after this many chunks. */
  stallAfter?: number;
  /** Receives the record of each stream this route serves. */
  streams?: StreamRecord[];
}

/** The SSE event for one chat completion chunk. */
export function chatChunkEvent(index: number, content: string): string {
  return `data: ${
    JSON.stringify({
      id: "chatcmpl-fake",
      object: "chat.completion.chunk",
      created: 1,
      model: "fake-model",
      choices: [{ index: 0, delta: { content }, finish_reason: null }],
      n: index,
    })
  }\n\n`;
}

/** A route streaming a chat completion as OpenAI does, with delays, gates, a reset or a stall. */
export function sseChat(options: SseChatOptions): FakeRoute {
  return () => {
    const record: StreamRecord = {
      openedAt: performance.now(),
      sentAt: [],
      closedAt: null,
      completed: false,
    };
    options.streams?.push(record);
    const encoder = new TextEncoder();
    let index = 0;
    let finished = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (index > 0) {
          if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
          await options.beforeChunk?.(index);
        }
        if (record.closedAt !== null) return;
        if (options.resetAfter !== undefined && index === options.resetAfter) {
          controller.error(new FakeReset());
          return;
        }
        if (options.stallAfter !== undefined && index === options.stallAfter) {
          await new Promise(() => {});
        }
        if (index < options.chunks.length) {
          controller.enqueue(encoder.encode(chatChunkEvent(index, options.chunks[index])));
          record.sentAt.push(performance.now());
          index++;
          return;
        }
        if (options.usage) {
          controller.enqueue(
            encoder.encode(
              `data: ${
                JSON.stringify({
                  id: "chatcmpl-fake",
                  object: "chat.completion.chunk",
                  choices: [],
                  usage: options.usage,
                })
              }\n\n`,
            ),
          );
        }
        controller.enqueue(encoder.encode("data: [DONE]\n\n"));
        finished = true;
        record.completed = true;
        controller.close();
      },
      cancel() {
        if (!finished) record.closedAt = performance.now();
      },
    }, { highWaterMark: 0 });
    return new Response(body, {
      headers: { "content-type": "text/event-stream", "x-request-id": "req_fake_stream" },
    });
  };
}

/** A route answering `status` with an OpenAI-style error body and extra headers. */
export function statusRoute(status: number, headers: Record<string, string> = {}): FakeRoute {
  return () =>
    Response.json({ error: { message: `fake ${status}`, type: "fake", param: null, code: null } }, {
      status,
      headers: { "x-request-id": `req_fake_${status}`, ...headers },
    });
}

/** A route that never answers; `closed` records when the caller gave up. */
export function stallRoute(closed: number[]): FakeRoute {
  return (request) =>
    new Promise<Response>((resolve) => {
      request.signal.addEventListener("abort", () => {
        closed.push(performance.now());
        resolve(new Response(null, { status: 499 }));
      });
    });
}
