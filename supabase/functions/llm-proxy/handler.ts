/**
 * llm-proxy: the same pass-through for every OpenAI-compatible provider, addressed as
 * `/llm-proxy/<provider>/v1/*` (openai, gemini, anthropic, perplexity, openrouter, custom).
 * See docs/proxy.md.
 */
import { defineHandler, fail, type Handler } from "../_shared/http.ts";
import { isService, PROVIDERS } from "../_shared/providers.ts";
import { proxyRequest } from "../_shared/proxy.ts";
import { runtimeFromEnv, type RuntimeSource } from "../_shared/runtime.ts";

const PATH = /^\/llm-proxy\/([a-z]+)\/v1(\/.*)$/;

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("llm-proxy", runtime, (request, rt) => {
    const { pathname, search } = new URL(request.url);
    const [, service, path] = pathname.match(PATH) ?? fail("NOT_FOUND");
    if (!isService(service) || !PROVIDERS[service].openAICompatible) fail("NOT_FOUND");
    return proxyRequest(request, rt, { service, path, search });
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
