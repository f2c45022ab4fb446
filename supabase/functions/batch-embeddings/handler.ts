/**
 * batch-embeddings: POST `{inputs, model?, provider?, chunk_size?}` embeds many texts with the
 * user's own key. Inputs are split into chunks within provider limits (2048 inputs and 400,000
 * characters per request), at most 4 chunks run at once, and a failure is reported per item
 * (`failures: [{index, error}]`) while every successful vector is kept. When not a single input
 * succeeded, the answer is the first error itself (e.g. 401 OPENAI_INVALID_KEY).
 */
import { z } from "zod";
import { DEFAULT_EMBEDDING_MODEL } from "../_shared/upstream/embeddings.ts";
import {
  DEFAULT_CONCURRENCY,
  embedBatch,
  MAX_CHARACTERS_PER_REQUEST,
  MAX_INPUTS_PER_REQUEST,
  planChunks,
} from "../_shared/upstream/embeddingsBatch.ts";
import {
  defineHandler,
  type Handler,
  jsonResponse,
  readUserJson,
} from "../_shared/http/pipeline.ts";
import { resolveProviderKey } from "../_shared/sharing/keyResolution.ts";
import { chargeSharedKey, tokenUsageOf } from "../_shared/upstream/usageRecorder.ts";
import { runtimeFromEnv, type RuntimeSource } from "../_shared/core/runtime.ts";
import { OPENAI_COMPATIBLE_SERVICES } from "../_shared/upstream/providerCalls.ts";

/** The 1 MB body limit already bounds the total; this bounds the bookkeeping. */
const MAX_INPUTS = 10_000;

const requestSchema = z.strictObject({
  inputs: z.array(z.string().min(1)).min(1).max(MAX_INPUTS),
  model: z.string().trim().min(1).max(200).default(DEFAULT_EMBEDDING_MODEL),
  provider: z.enum(OPENAI_COMPATIBLE_SERVICES).default("openai"),
  chunk_size: z.int().min(1).max(MAX_INPUTS_PER_REQUEST).default(MAX_INPUTS_PER_REQUEST),
});

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("batch-embeddings", runtime, async (request, rt) => {
    const { user, body: { inputs, model, provider, chunk_size } } = await readUserJson(
      request,
      rt,
      requestSchema,
    );

    const limits = { maxInputs: chunk_size, maxCharacters: MAX_CHARACTERS_PER_REQUEST };
    // Every chunk is one upstream call the key's owner pays for: a shared key counts them all.
    const key = await resolveProviderKey(rt, user, provider, {
      upstreamCalls: planChunks(inputs, limits).length,
    });
    const result = await embedBatch(
      { config: rt.config, fetch: rt.fetch, service: provider, stored: key.credentials, model },
      inputs,
      { limits, concurrency: DEFAULT_CONCURRENCY },
    );
    // A shared key is charged the tokens the provider reported, before its next call is decided.
    chargeSharedKey(rt.db, key, user.id, tokenUsageOf(result.usage));
    if (result.firstError && result.failures.length === inputs.length) throw result.firstError;
    return jsonResponse({
      provider,
      model,
      keySource: key.source,
      embeddings: result.embeddings,
      failures: result.failures,
      usage: result.usage,
      chunks: result.chunks,
    }, { headers: { "x-key-source": key.source } });
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
