/**
 * llm-proxy: one pass-through per provider, addressed as `/llm-proxy/<provider>/...`:
 * - `/v1/*` the OpenAI-compatible API (openai, gemini, anthropic, perplexity, openrouter, custom);
 * - `/anthropic/v1/messages` (and `count_tokens`): Anthropic's own Messages API;
 * - `/gemini/v1beta/models/...` (also `v1alpha`, and `v1` for `models/{model}:action`): Gemini's
 *   own API.
 * See docs/proxy.md.
 */
import { defineHandler, fail, type Handler } from "../_shared/http/pipeline.ts";
import { isService, PROVIDERS } from "../_shared/contract/providers.ts";
import { proxyRequest, type ProxyTarget } from "../_shared/upstream/proxy.ts";
import { runtimeFromEnv, type RuntimeSource } from "../_shared/core/runtime.ts";

const PATH = /^\/llm-proxy\/([a-z]+)(\/.*)$/;
const GEMINI_NATIVE = /^\/(v1beta|v1alpha|v1)(\/models(?:\/.*)?)$/;

/**
 * Google's SDKs (`@google/genai`, `@google/generative-ai`, `@ai-sdk/google`) mark their requests
 * with one of these; the OpenAI SDK sends neither.
 */
function fromGoogleClient(request: Request): boolean {
  return request.headers.has("x-goog-api-key") || request.headers.has("x-goog-api-client") ||
    new URL(request.url).searchParams.has("key");
}

/** Which API a path speaks on `service`, and the path relative to that API's root. */
function targetFor(request: Request, service: ProxyTarget["service"]): ProxyTarget {
  const { pathname, search } = new URL(request.url);
  const rest = pathname.match(PATH)![2];
  if (service === "gemini") {
    const [, version, path] = rest.match(GEMINI_NATIVE) ?? [];
    // Under `/v1`, `models/{model}:action` is native, and so are `models` and `models/{id}`
    // when a Google client asks; the OpenAI SDK's `/v1/models` stays OpenAI-compatible.
    if (version && (version !== "v1" || path.includes(":") || fromGoogleClient(request))) {
      return { service, wire: "gemini", apiVersion: version, path, search };
    }
  }
  const path = rest.match(/^\/v1(\/.*)$/)?.[1] ?? fail("NOT_FOUND");
  if (service === "anthropic" && path.startsWith("/messages")) {
    return { service, wire: "anthropic", path, search };
  }
  return { service, path, search };
}

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("llm-proxy", runtime, (request, rt) => {
    const [, service] = new URL(request.url).pathname.match(PATH) ?? fail("NOT_FOUND");
    if (!isService(service) || !PROVIDERS[service].openAICompatible) fail("NOT_FOUND");
    return proxyRequest(request, rt, targetFor(request, service));
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
