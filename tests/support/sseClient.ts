/**
 * A minimal SSE client over a fetch Response, built on `eventsource-parser` as an app would:
 * `next()` resolves with each event's parsed JSON as soon as its bytes arrive.
 */
import { createParser } from "eventsource-parser";

// deno-lint-ignore no-explicit-any
export type SseData = Record<string, any>;

export interface SseClient {
  /** The next event, or null once the stream has ended. */
  next(): Promise<SseData | null>;
  /** Every remaining event until the stream ends. */
  rest(): Promise<SseData[]>;
  comments: string[];
  /** Disconnects, as a browser closing the tab would. */
  cancel(): Promise<void>;
}

export function sseClient(response: Response): SseClient {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const queue: SseData[] = [];
  const comments: string[] = [];
  let ended = false;
  const parser = createParser({
    onEvent: (event) => queue.push(JSON.parse(event.data)),
    onComment: (comment) => comments.push(comment),
  });
  const next = async (): Promise<SseData | null> => {
    while (queue.length === 0 && !ended) {
      const { done, value } = await reader.read();
      if (done) ended = true;
      else parser.feed(value);
    }
    return queue.shift() ?? null;
  };
  return {
    next,
    async rest() {
      const out: SseData[] = [];
      for (let event = await next(); event; event = await next()) out.push(event);
      return out;
    },
    comments,
    cancel: () => reader.cancel(),
  };
}
