/**
 * Embeddings from an OpenAI-compatible provider with the user's key: one upstream request for a
 * list of inputs, vectors returned in input order.
 */
import type { Config } from "../core/config.ts";
import type { StoredCredentials } from "../vault/keyReader.ts";
import { providerErrorCode } from "../contract/errorCodes.ts";
import { AppError } from "../core/errors.ts";
import type { Service } from "../contract/providers.ts";
import { tokenCount } from "./tokenUsage.ts";
import { fetchUpstreamJson } from "./providerCalls.ts";

export const DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small";

export interface EmbeddingTarget {
  config: Pick<Config, "providerBaseUrls" | "allowPrivateBaseUrls" | "upstreamTimeoutMs">;
  fetch: typeof fetch;
  service: Service;
  stored: StoredCredentials & { api_key: string };
  model: string;
}

export interface EmbeddingUsage {
  prompt_tokens: number;
  total_tokens: number;
}

interface EmbeddingResponse {
  data?: { index?: number; embedding?: unknown }[];
  usage?: Partial<EmbeddingUsage>;
}

/** Embeds `inputs` in one request; throws the mapped envelope error (API_ERROR for a malformed answer). */
export async function embed(
  target: EmbeddingTarget,
  inputs: string[],
): Promise<{ vectors: number[][]; usage: EmbeddingUsage }> {
  const body = await fetchUpstreamJson<EmbeddingResponse>({
    config: target.config,
    fetch: target.fetch,
    service: target.service,
    stored: target.stored,
    path: "/embeddings",
    method: "POST",
    body: { model: target.model, input: inputs },
    timeoutMs: target.config.upstreamTimeoutMs,
  });
  const vectors: number[][] = new Array(inputs.length);
  for (const [position, item] of (body?.data ?? []).entries()) {
    const index = typeof item?.index === "number" ? item.index : position;
    if (Array.isArray(item?.embedding) && index >= 0 && index < inputs.length) {
      vectors[index] = item.embedding;
    }
  }
  if (vectors.filter(Boolean).length !== inputs.length) {
    throw new AppError(providerErrorCode(target.service, "API_ERROR"), {
      cause: new Error("embeddings response did not cover every input"),
    });
  }
  return {
    vectors,
    usage: {
      prompt_tokens: tokenCount(body.usage?.prompt_tokens) ?? 0,
      total_tokens: tokenCount(body.usage?.total_tokens) ?? 0,
    },
  };
}
