/**
 * Server-Sent Events, shaped like Deno std's `ServerSentEventStream` and Hono's `streamSSE`:
 * events are objects serialized by one `TransformStream`; a failure mid-stream becomes the error
 * envelope as an `error` event and the stream closes in a `finally`; `cancel()` (the client went
 * away) aborts whatever the producer is waiting on, e.g. the upstream request.
 */
import { buildErrorResponse, type ErrorCode } from "../contract/errorCodes.ts";
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

/** One event as `text/event-stream` text; an `event` or `id` containing a newline is refused. */
export function encodeEvent(message: ServerSentEvent): string {
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

/** The wire formats whose error event has a shape of its own. */
export type ErrorEventFormat = "envelope" | "responses" | "anthropic";

/** What an error event says: an `AppError`, or just a code. */
export interface ErrorEventSource {
  code: ErrorCode;
  userMessage?: string;
  details?: Record<string, unknown>;
}

/**
 * The event a failed stream ends with: always `{type: "error", ...envelope}` (the openai SDK
 * throws it as an APIError carrying our code). `responses` adds the Responses API's own fields
 * (`sequence_number`, `code`, `message`, `param`), which the AI SDK validates, and names the
 * event `error`; `anthropic` names it `error`, as Anthropic's stream does.
 */
export function errorEvent(
  error: ErrorEventSource,
  format: ErrorEventFormat = "envelope",
  sequenceNumber = 0,
): ServerSentEvent {
  const envelope = buildErrorResponse(error.code, error.userMessage, error.details);
  if (format === "responses") {
    return {
      event: "error",
      data: {
        type: "error",
        sequence_number: sequenceNumber,
        code: error.code,
        message: envelope.error.message,
        param: null,
        ...envelope,
      },
    };
  }
  const data = { type: "error", ...envelope };
  return format === "anthropic" ? { event: "error", data } : { data };
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
  /** Queues the error event for `error` (`errorEvent`). */
  sendError(error: ErrorEventSource): void;
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
        sendError: (error) => push(errorEvent(error)),
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
          push(errorEvent(toAppError(error, options.context)));
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
