/**
 * The body of a proxied response: upstream bytes go to the client chunk by chunk as they arrive.
 * On the way it watches for a stalled upstream (idle timeout) and for the stream's total time
 * limit, turns a mid-stream failure into an SSE error event for event streams, aborts the
 * upstream when the client goes away, and keeps a short head and tail of the bytes so `usage`
 * can be read once the body ends.
 */
import type { ErrorCode } from "../contract/errorCodes.ts";
import { type ChunkReader, readWithin } from "../core/chunkReader.ts";
import { AppError } from "../core/errors.ts";
import { encodeEvent, errorEvent, type ErrorEventFormat } from "../http/sse.ts";
import type { TokenUsage } from "./usageRecorder.ts";
import { MAX_TOKENS_PER_CALL, tokenCount } from "./tokenUsage.ts";

export interface RelayOptions {
  /** The upstream body. */
  chunks: ChunkReader;
  /** Aborting it cancels the upstream request. */
  abort: AbortController;
  /** A chunk must arrive within this many ms, or the upstream counts as stalled. */
  idleTimeoutMs: number;
  /**
   * The body ends with `STREAM_TIME_LIMIT` once it has run this long (ms), before the platform
   * cuts the connection with no answer at all.
   */
  timeLimitMs: number;
  /** Event streams end with an SSE `error` event on failure instead of a broken connection. */
  eventStream: boolean;
  /** The error code for a failure while reading (timeout or network). */
  codeForFailure(error: unknown): ErrorCode;
  /** The wire's shape of the closing SSE event for a failure (`errorEvent`); `envelope` if unset. */
  errorFormat?: ErrorEventFormat;
  /**
   * Called once when the body ends for any reason, with the tail of the bytes sent and their
   * head (Anthropic reports input tokens in its first event, output tokens in its last).
   */
  onEnd(tail: Uint8Array, head: Uint8Array): void;
}

/**
 * How much of the end of a body is kept for reading `usage`: it is always near the end. The tail
 * is copied into one buffer allocated per body, so no chunk is held past its turn.
 */
const TAIL_BYTES = 16 * 1024;
/** How much of the start of a body is kept: Anthropic's `message_start` is its first event. */
const HEAD_BYTES = 4 * 1024;
const encoder = new TextEncoder();

/** The Responses API's next `sequence_number`: one past the last one in `tail`, else 0. */
function nextSequenceNumber(tail: Uint8Array): number {
  const seen = [...decoder.decode(tail).matchAll(/"sequence_number"\s*:\s*(\d+)/g)];
  return seen.length ? Number(seen[seen.length - 1][1]) + 1 : 0;
}

/**
 * The client-facing body stream for an upstream body. Chunks are handed on as they are and stay
 * the consumer's to keep (why none is released early: bench/README.md#hot-path-notes).
 */
export function relayBody(options: RelayOptions): ReadableStream<Uint8Array> {
  const { chunks } = options;
  const tail = new Uint8Array(TAIL_BYTES);
  let tailBytes = 0;
  const head = new Uint8Array(HEAD_BYTES);
  let headBytes = 0;
  let ended = false;
  const endsAt = performance.now() + options.timeLimitMs;

  function end(): void {
    if (ended) return;
    ended = true;
    options.onEnd(tail.subarray(0, tailBytes), head.subarray(0, headBytes));
  }

  function keep(chunk: Uint8Array): void {
    if (headBytes < HEAD_BYTES) {
      const part = chunk.subarray(0, HEAD_BYTES - headBytes);
      head.set(part, headBytes);
      headBytes += part.byteLength;
    }
    if (chunk.byteLength >= TAIL_BYTES) {
      tail.set(chunk.subarray(chunk.byteLength - TAIL_BYTES));
      tailBytes = TAIL_BYTES;
      return;
    }
    const kept = Math.min(tailBytes, TAIL_BYTES - chunk.byteLength);
    tail.copyWithin(0, tailBytes - kept, tailBytes);
    tail.set(chunk, kept);
    tailBytes = kept + chunk.byteLength;
  }

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const left = endsAt - performance.now();
        if (left <= 0) throw new AppError("STREAM_TIME_LIMIT");
        const chunk = await readWithin(chunks, {
          ms: Math.min(options.idleTimeoutMs, left),
          timeout: left < options.idleTimeoutMs ? () => new AppError("STREAM_TIME_LIMIT") : stalled,
          signal: options.abort.signal,
        });
        if (chunk === null) {
          end();
          controller.close();
          return;
        }
        keep(chunk);
        controller.enqueue(chunk);
      } catch (error) {
        end();
        options.abort.abort(error);
        chunks.cancel(error).catch(() => {});
        if (!options.eventStream) {
          controller.error(error);
          return;
        }
        const code = error instanceof AppError ? error.code : options.codeForFailure(error);
        const format = options.errorFormat ?? "envelope";
        const sequence = format === "responses"
          ? nextSequenceNumber(tail.subarray(0, tailBytes))
          : 0;
        controller.enqueue(encoder.encode(encodeEvent(errorEvent({ code }, format, sequence))));
        controller.close();
      }
    },
    cancel(reason) {
      end();
      options.abort.abort(reason);
      return chunks.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/** Why a read gave up: no chunk within the idle timeout. */
export function stalled(): DOMException {
  return new DOMException("upstream stalled", "TimeoutError");
}

const USAGE_FIELDS = {
  prompt: /"(?:prompt_tokens|input_tokens)"\s*:\s*(\d+)/,
  completion: /"(?:completion_tokens|output_tokens)"\s*:\s*(\d+)/,
  total: /"total_tokens"\s*:\s*(\d+)/,
};

const GEMINI_USAGE_FIELDS = {
  prompt: /"promptTokenCount"\s*:\s*(\d+)/,
  completion: /"candidatesTokenCount"\s*:\s*(\d+)/,
  thoughts: /"thoughtsTokenCount"\s*:\s*(\d+)/,
  total: /"totalTokenCount"\s*:\s*(\d+)/,
};

const USAGE_KEY = encoder.encode('"usage"');
const GEMINI_USAGE_KEY = encoder.encode('"usageMetadata"');
/** Past the key, how far a `usage` object's token counts can reach. */
const USAGE_OBJECT_BYTES = 2_048;
const decoder = new TextDecoder();

/** Where the last `key` (e.g. `"usage"`) starts in `bytes`, or -1. */
function lastKey(bytes: Uint8Array, key: Uint8Array): number {
  const last = key.byteLength - 1;
  for (let end = bytes.byteLength - 1; end >= last; end--) {
    if (bytes[end] !== key[last]) continue;
    let k = 1;
    while (k <= last && bytes[end - k] === key[last - k]) k++;
    if (k > last) return end - last;
  }
  return -1;
}

/**
 * The last `usage` object in a body (or its tail): OpenAI-style (`prompt_tokens`,
 * `completion_tokens`) or Responses/Anthropic-style (`input_tokens`, `output_tokens`). Null when
 * there is none. Only the bytes after the key are decoded.
 */
export function usageFromTail(bytes: Uint8Array): TokenUsage | null {
  const at = lastKey(bytes, USAGE_KEY);
  if (at < 0) return geminiUsageFromTail(bytes);
  return usageAt(bytes, at);
}

/** The first `usage` object in a body's head (Anthropic's `message_start`). */
function firstUsage(bytes: Uint8Array): TokenUsage | null {
  const text = decoder.decode(bytes);
  const at = text.indexOf('"usage"');
  return at < 0 ? null : usageAt(encoder.encode(text.slice(at)), 0);
}

/** The token counts of the `usage` object whose key starts at `at`. */
function usageAt(bytes: Uint8Array, at: number): TokenUsage | null {
  const object = decoder.decode(bytes.subarray(at, at + USAGE_OBJECT_BYTES));
  const number = (pattern: RegExp) => tokenCount(object.match(pattern)?.[1] ?? "0") ?? 0;
  const promptTokens = number(USAGE_FIELDS.prompt);
  const completionTokens = number(USAGE_FIELDS.completion);
  const totalTokens = number(USAGE_FIELDS.total) ||
    Math.min(promptTokens + completionTokens, MAX_TOKENS_PER_CALL);
  if (promptTokens + completionTokens + totalTokens === 0) return null;
  return { promptTokens, completionTokens, totalTokens };
}

/** Gemini's `usageMetadata` (the last one: in a stream each chunk carries the running count). */
function geminiUsageFromTail(bytes: Uint8Array): TokenUsage | null {
  const at = lastKey(bytes, GEMINI_USAGE_KEY);
  if (at < 0) return null;
  const object = decoder.decode(bytes.subarray(at, at + USAGE_OBJECT_BYTES));
  const number = (pattern: RegExp) => Number(object.match(pattern)?.[1] ?? 0);
  const promptTokens = number(GEMINI_USAGE_FIELDS.prompt);
  const completionTokens = number(GEMINI_USAGE_FIELDS.completion) +
    number(GEMINI_USAGE_FIELDS.thoughts);
  const totalTokens = number(GEMINI_USAGE_FIELDS.total) || promptTokens + completionTokens;
  if (promptTokens + completionTokens + totalTokens === 0) return null;
  return { promptTokens, completionTokens, totalTokens };
}

/**
 * The usage of a streamed body from its head and tail. Anthropic's stream reports input tokens
 * in `message_start` (the head) and the final output count in `message_delta` (the tail).
 */
export function usageFromEnds(head: Uint8Array, tail: Uint8Array): TokenUsage | null {
  const last = usageFromTail(tail);
  if (last && last.promptTokens > 0) return last;
  const first = firstUsage(head);
  if (!first) return last;
  if (!last) return first;
  const promptTokens = first.promptTokens;
  const completionTokens = last.completionTokens || first.completionTokens;
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens };
}
