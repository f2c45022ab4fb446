/**
 * batch-embeddings' engine: split inputs into chunks within provider limits, run the chunks with
 * bounded concurrency, and report failures per item without losing the successful vectors.
 */
import {
  buildErrorResponse,
  type ErrorEnvelope,
  providerErrorCode,
} from "../contract/errorCodes.ts";
import { embed, type EmbeddingTarget, type EmbeddingUsage } from "./embeddings.ts";
import { toAppError } from "../http/pipeline.ts";
import type { AppError } from "../core/errors.ts";

/** OpenAI's documented cap on inputs per embeddings request. */
export const MAX_INPUTS_PER_REQUEST = 2048;
/** Keeps one request well under the providers' per-request token caps (~4 characters a token). */
export const MAX_CHARACTERS_PER_REQUEST = 400_000;
export const DEFAULT_CONCURRENCY = 4;

export interface ChunkLimits {
  maxInputs: number;
  maxCharacters: number;
}

/**
 * Groups input indexes into consecutive chunks of at most `maxInputs` items and `maxCharacters`
 * characters. An input longer than the character cap travels alone (the provider then judges it).
 */
export function planChunks(inputs: readonly string[], limits: ChunkLimits): number[][] {
  const chunks: number[][] = [];
  let current: number[] = [];
  let characters = 0;
  for (const [index, input] of inputs.entries()) {
    const full = current.length >= limits.maxInputs ||
      characters + input.length > limits.maxCharacters;
    if (current.length > 0 && full) {
      chunks.push(current);
      current = [];
      characters = 0;
    }
    current.push(index);
    characters += input.length;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Runs `work` over `items` with at most `limit` in flight. */
export async function mapWithConcurrency<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export interface ItemFailure {
  index: number;
  error: ErrorEnvelope["error"];
}

export interface BatchResult {
  /** One entry per input, in input order; null where that input failed. */
  embeddings: (number[] | null)[];
  failures: ItemFailure[];
  usage: EmbeddingUsage;
  chunks: number;
  /** The first failure as thrown, so a caller can answer with it when nothing succeeded. */
  firstError: AppError | null;
}

/**
 * A chunk rejected for its content (a 4xx other than key or rate-limit problems) is retried one
 * item at a time, so a single bad input fails alone. Key, rate-limit, timeout and outage errors
 * would fail every item the same way, so they are reported for the whole chunk.
 */
function worthSplitting(error: AppError, target: EmbeddingTarget): boolean {
  const status = error.details?.upstream_status;
  return error.code === providerErrorCode(target.service, "API_ERROR") &&
    typeof status === "number" &&
    status >= 400 && status < 500;
}

/** Embeds every input; never throws for an upstream failure, which lands in `failures` instead. */
export async function embedBatch(
  target: EmbeddingTarget,
  inputs: readonly string[],
  options: { limits: ChunkLimits; concurrency: number },
): Promise<BatchResult> {
  const embeddings: (number[] | null)[] = new Array(inputs.length).fill(null);
  const failures: ItemFailure[] = [];
  const usage: EmbeddingUsage = { prompt_tokens: 0, total_tokens: 0 };
  const chunks = planChunks(inputs, options.limits);

  const runChunk = async (indexes: number[]): Promise<AppError | null> => {
    try {
      const result = await embed(target, indexes.map((i) => inputs[i]));
      indexes.forEach((
        inputIndex,
        position,
      ) => (embeddings[inputIndex] = result.vectors[position]));
      usage.prompt_tokens += result.usage.prompt_tokens;
      usage.total_tokens += result.usage.total_tokens;
      return null;
    } catch (error) {
      return toAppError(error, "batch-embeddings");
    }
  };
  let firstError: AppError | null = null;
  const recordFailure = (indexes: number[], error: AppError) => {
    firstError ??= error;
    const envelope = buildErrorResponse(error.code, error.userMessage, error.details).error;
    for (const index of indexes) failures.push({ index, error: envelope });
  };

  const toSplit: number[] = [];
  await mapWithConcurrency(chunks, options.concurrency, async (indexes) => {
    const error = await runChunk(indexes);
    if (!error) return;
    if (indexes.length > 1 && worthSplitting(error, target)) toSplit.push(...indexes);
    else recordFailure(indexes, error);
  });
  await mapWithConcurrency(toSplit, options.concurrency, async (index) => {
    const error = await runChunk([index]);
    if (error) recordFailure([index], error);
  });

  failures.sort((a, b) => a.index - b.index);
  return { embeddings, failures, usage, chunks: chunks.length, firstError };
}
