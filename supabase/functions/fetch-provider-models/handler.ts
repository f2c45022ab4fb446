/**
 * fetch-provider-models: POST `{provider}` lists the models the user's own key can use, from the
 * provider's OpenAI-style `/models`. Bounded by VALIDATION_TIMEOUT_MS (10 s), which maps to the
 * provider's `*_TIMEOUT` code.
 */
import { z } from "zod";
import {
  defineHandler,
  type Handler,
  jsonResponse,
  readUserJson,
} from "../_shared/http/pipeline.ts";
import { resolveProviderKey } from "../_shared/sharing/keyResolution.ts";
import { runtimeFromEnv, type RuntimeSource } from "../_shared/core/runtime.ts";
import {
  fetchUpstreamJson,
  OPENAI_COMPATIBLE_SERVICES,
} from "../_shared/upstream/providerCalls.ts";

const requestSchema = z.strictObject({ provider: z.enum(OPENAI_COMPATIBLE_SERVICES) });

interface ModelList {
  data?: { id?: unknown; owned_by?: unknown; created?: unknown; display_name?: unknown }[];
}

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("fetch-provider-models", runtime, async (request, rt) => {
    const { user, body: { provider } } = await readUserJson(request, rt, requestSchema);

    const { credentials, source } = await resolveProviderKey(rt, user, provider);
    const list = await fetchUpstreamJson<ModelList>({
      config: rt.config,
      fetch: rt.fetch,
      service: provider,
      stored: credentials,
      path: "/models",
      method: "GET",
      timeoutMs: rt.config.validationTimeoutMs,
    });
    const models = (Array.isArray(list?.data) ? list.data : [])
      .filter((model) => typeof model?.id === "string")
      .map((model) => ({
        id: model.id as string,
        owned_by: typeof model.owned_by === "string" ? model.owned_by : null,
        display_name: typeof model.display_name === "string" ? model.display_name : null,
      }));
    return jsonResponse({ provider, keySource: source, models }, {
      headers: { "x-key-source": source },
    });
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
