/**
 * generate-embedding: POST `{input, model?, provider?}` embeds one text with the user's own key
 * (OpenAI by default, or any OpenAI-compatible provider).
 */
import { z } from "zod";
import { DEFAULT_EMBEDDING_MODEL, embed } from "../_shared/upstream/embeddings.ts";
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

const requestSchema = z.strictObject({
  input: z.string().min(1),
  model: z.string().trim().min(1).max(200).default(DEFAULT_EMBEDDING_MODEL),
  provider: z.enum(OPENAI_COMPATIBLE_SERVICES).default("openai"),
});

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("generate-embedding", runtime, async (request, rt) => {
    const { user, body: { input, model, provider } } = await readUserJson(
      request,
      rt,
      requestSchema,
    );

    const key = await resolveProviderKey(rt, user, provider);
    const result = await embed({
      config: rt.config,
      fetch: rt.fetch,
      service: provider,
      stored: key.credentials,
      model,
    }, [
      input,
    ]);
    // A shared key is charged the tokens the provider reported, before its next call is decided.
    chargeSharedKey(rt.db, key, user.id, tokenUsageOf(result.usage));
    return jsonResponse(
      { provider, model, keySource: key.source, embedding: result.vectors[0], usage: result.usage },
      { headers: { "x-key-source": key.source } },
    );
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
