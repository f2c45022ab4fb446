/**
 * One streamed chat completion from an OpenAI-compatible provider, read incrementally with
 * `eventsource-parser`: each content delta is handed on as soon as its chunk arrives.
 */
import { createParser } from "eventsource-parser";
import { chunkReader, readWithin } from "../core/chunkReader.ts";
import type { Config } from "../core/config.ts";
import type { StoredCredentials } from "../vault/keyReader.ts";
import type { ChatMessage, Usage } from "./store.ts";
import { providerErrorCode } from "../contract/errorCodes.ts";
import { AppError } from "../core/errors.ts";
import { PROVIDERS, type Service } from "../contract/providers.ts";
import { keyHeaders, upstreamBaseUrl, upstreamFailure } from "../upstream/providerCalls.ts";
import { tokenCount } from "../upstream/tokenUsage.ts";

export interface ChatStreamOptions {
  config: Pick<Config, "providerBaseUrls" | "allowPrivateBaseUrls">;
  fetch: typeof fetch;
  service: Service;
  stored: StoredCredentials & { api_key: string };
  model: string;
  messages: ChatMessage[];
  /** Aborts the upstream request (cancel, client gone, time limit). */
  signal: AbortSignal;
  /** Longest silence from upstream (before headers or between chunks) before `onStall`. */
  idleTimeoutMs: number;
  /** Called when upstream stays silent past `idleTimeoutMs`; it should abort `signal`. */
  onStall(): void;
  onDelta(content: string): void;
  onUsage(usage: Usage): void;
}

interface ChunkJson {
  choices?: { delta?: { content?: string | null } }[];
  usage?: Partial<Usage> | null;
  error?: unknown;
}

function upstreamStreamError(service: Service, cause: unknown): AppError {
  return new AppError(providerErrorCode(service, "API_ERROR"), { cause });
}

/**
 * Streams one completion. Resolves when upstream finishes; throws the mapped envelope error on
 * an HTTP failure or a broken stream. When `signal` aborts, the rejection is whatever fetch
 * raised; the caller reads `signal.reason` to tell cancel, stall and disconnect apart.
 */
export async function streamChatCompletion(options: ChatStreamOptions): Promise<void> {
  const { service, stored } = options;
  const url = upstreamBaseUrl(options.config, service, stored) + "/chat/completions";
  // Each wait is bounded on its own: the headers by a timer, every read by `readWithin`, which
  // also watches `signal` itself (fetch may have lost track of it, see chunkReader.ts).
  const headerTimer = setTimeout(options.onStall, options.idleTimeoutMs);
  let response: Response;
  try {
    response = await options.fetch(url, {
      method: "POST",
      headers: {
        ...keyHeaders(PROVIDERS[service].validation.keyHeader, stored.api_key),
        "content-type": "application/json",
        accept: "text/event-stream",
      },
      body: JSON.stringify({
        model: options.model,
        messages: options.messages,
        stream: true,
        stream_options: { include_usage: true },
      }),
      signal: options.signal,
    });
  } catch (error) {
    if (options.signal.aborted) throw error;
    throw AppError.fromNetwork(service, error, { url });
  } finally {
    clearTimeout(headerTimer);
  }
  if (!response.ok || !response.body) {
    throw await upstreamFailure(service, response, stored.api_key);
  }

  const state: { failure: AppError | null } = { failure: null };
  const parser = createParser({
    onEvent(event) {
      if (state.failure || event.data === "[DONE]") return;
      let chunk: ChunkJson;
      try {
        chunk = JSON.parse(event.data);
      } catch (cause) {
        state.failure = upstreamStreamError(service, cause);
        return;
      }
      if (chunk.error) {
        state.failure = upstreamStreamError(service, new Error("upstream sent an error event"));
        return;
      }
      const content = chunk.choices?.[0]?.delta?.content;
      if (content) options.onDelta(content);
      if (chunk.usage) {
        options.onUsage({
          prompt_tokens: tokenCount(chunk.usage.prompt_tokens),
          completion_tokens: tokenCount(chunk.usage.completion_tokens),
          total_tokens: tokenCount(chunk.usage.total_tokens),
        });
      }
    },
  });

  const reader = chunkReader(response.body);
  const decoder = new TextDecoder();
  const stalled = () => {
    options.onStall();
    return options.signal.reason;
  };
  try {
    while (true) {
      let chunk: Uint8Array | null;
      try {
        chunk = await readWithin(reader, {
          ms: options.idleTimeoutMs,
          timeout: stalled,
          signal: options.signal,
        });
      } catch (error) {
        if (options.signal.aborted) throw error;
        throw upstreamStreamError(service, error);
      }
      if (chunk === null) break;
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (state.failure) throw state.failure;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
