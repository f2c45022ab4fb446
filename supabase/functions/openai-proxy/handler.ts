/**
 * openai-proxy: an OpenAI-compatible endpoint at `/openai-proxy/v1/*`. Point the official SDK at
 * `<functions url>/openai-proxy/v1` with the user's Supabase access token as the API key; the
 * request goes to OpenAI with that user's own key.
 */
import { defineHandler, fail, type Handler } from "../_shared/http/pipeline.ts";
import { proxyRequest } from "../_shared/upstream/proxy.ts";
import { runtimeFromEnv, type RuntimeSource } from "../_shared/core/runtime.ts";

const PATH = /^\/openai-proxy\/v1(\/.*)$/;

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("openai-proxy", runtime, (request, rt) => {
    const { pathname, search } = new URL(request.url);
    const path = pathname.match(PATH)?.[1] ?? fail("NOT_FOUND");
    return proxyRequest(request, rt, { service: "openai", path, search });
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
