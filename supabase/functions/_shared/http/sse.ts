/**
 * Server-Sent Events, shaped like Deno std's `ServerSentEventStream` and Hono's `streamSSE`:
 * events are objects serialized by one `TransformStream`; a failure mid-stream becomes the error
 * envelope as an `error` event and the stream closes in a `finally`; `cancel()` (the client went
 * away) aborts whatever the producer is waiting on, e.g. the upstream request.
 */
import { buildErrorResponse } from "../contract/errorCodes.ts";
import { CORS_RESPONSE_HEADERS, toAppError } from "./pipeline.ts";

/** One SSE message. `data` is JSON-encoded; a `comment` is sent as `: <comment>`. */
export interface ServerSentEvent {
  data?: unknown;
  event?: string;
  id?: string;
  retry?: number;
  comment?: string;
}

const NEWLINE = /[\r\n]/;

function encodeEvent(message: ServerSentEvent): string {
  if (message.event !== undefined && NEWLINE.test(message.event)) {
    throw new SyntaxError("SSE event name must not contain a newline");
  }
  if (message.id !== undefined && NEWLINE.test(message.id)) {
    throw new SyntaxError("SSE event id must not contain a newline");
  }
  let out = "";
  if (message.comment !== undefined) out += `: ${message.comment.replace(/[\r\n]+/g, " ")}\n`;
  if (message.event !== undefined) out += `event: ${message.event}\n`;
  if (message.id !== undefined) out += `id: ${message.id}\n`;
  if (message.retry !== undefined) out += `retry: ${Math.trunc(message.retry)}\n`;
  // JSON.stringify never emits a raw newline, so one `data:` line carries the whole event.
  if (message.data !== undefined) out += `data: ${JSON.stringify(message.data)}\n`;
  return `${out}\n`;
}

/** Serializes `ServerSentEvent` objects into `text/event-stream` bytes. */
export class ServerSentEventStream extends TransformStream<ServerSentEvent, Uint8Array> {
  constructor() {
    const encoder = new TextEncoder();
    super({
      transform(message, controller) {
        controller.enqueue(encoder.encode(encodeEvent(message)));
      },
    });
  }
}

/** What a producer gets: `send` queues one event; `signal` aborts when the client goes away. */
export interface SseWriter {
  send(data: Record<string, unknown>): void;
  readonly signal: AbortSignal;
  /** True once the stream is closed or cancelled; further sends are dropped. */
  readonly closed: boolean;
}

export interface StreamSseOptions {
  /** Comment heartbeat interval; keeps proxies from closing an idle connection. */
  heartbeatMs: number;
  /** Names the stream in logs when the producer throws. */
  context: string;
  headers?: Record<string, string>;
}

export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-accel-buffering": "no",
} as const;

/**
 * Runs `produce` and streams what it sends. Anything it throws becomes
 * `{"type":"error","error":{code,message,recoverable}}`, after which the stream closes.
 */
export function streamSse(
  produce: (writer: SseWriter) => Promise<void>,
  options: StreamSseOptions,
): Response {
  const abort = new AbortController();
  let closed = false;
  let heartbeat: ReturnType<typeof setInterval> | undefined;

  const source = new ReadableStream<ServerSentEvent>({
    start(controller) {
      const push = (message: ServerSentEvent) => {
        if (closed) return;
        try {
          controller.enqueue(message);
        } catch {
          closed = true;
        }
      };
      const writer: SseWriter = {
        send: (data) => push({ data }),
        signal: abort.signal,
        get closed() {
          return closed;
        },
      };
      heartbeat = setInterval(() => push({ comment: "ping" }), options.heartbeatMs);
      (async () => {
        try {
          await produce(writer);
        } catch (error) {
          const appError = toAppError(error, options.context);
          push({
            data: {
              type: "error",
              ...buildErrorResponse(appError.code, appError.userMessage, appError.details),
            },
          });
        } finally {
          clearInterval(heartbeat);
          if (!closed) {
            closed = true;
            controller.close();
          }
        }
      })();
    },
    cancel(reason) {
      closed = true;
      clearInterval(heartbeat);
      abort.abort(reason ?? new DOMException("client disconnected", "AbortError"));
    },
  });

  return new Response(source.pipeThrough(new ServerSentEventStream()), {
    status: 200,
    headers: { ...CORS_RESPONSE_HEADERS, ...options.headers, ...SSE_HEADERS },
  });
}
