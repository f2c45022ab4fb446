/**
 * Talking to a provider with the user's key: where to send it, how to attach the key, and how
 * upstream failures map to the error table (as openai-node does: 401/403 -> invalid key,
 * 429 -> rate limited, 5xx or network -> API error, timeout -> timeout).
 */
import { baseUrlProblem, normalizeBaseUrl } from "./baseUrl.ts";
import type { ValidationStatus } from "./credentialStatus.ts";
import type { Config } from "./config.ts";
import type { StoredCredentials } from "./credentialVault.ts";
import { type ErrorCode, providerErrorCode } from "./errorCodes.ts";
import { AppError } from "./errors.ts";
import { type KeyHeaderStyle, PROVIDERS, type Service, SERVICES } from "./providers.ts";

/** The upstream base URL for a service: the deployment's setting, or the user's own for `custom`. */
export function upstreamBaseUrl(
  config: Pick<Config, "providerBaseUrls" | "allowPrivateBaseUrls">,
  service: Service,
  stored: StoredCredentials,
): string {
  if (service !== "custom") return config.providerBaseUrls[service];
  const raw = stored.base_url;
  if (!raw || baseUrlProblem(raw, config.allowPrivateBaseUrls)) {
    throw new AppError("CUSTOM_NOT_CONFIGURED", {
      message:
        "Custom endpoint base URL not configured. Add it in Settings → Integrations → Custom endpoint.",
    });
  }
  return normalizeBaseUrl(raw);
}

/** The header that carries the key, in the provider's own style. */
export function keyHeaders(style: KeyHeaderStyle, key: string): Record<string, string> {
  switch (style) {
    case "bearer":
      return { authorization: `Bearer ${key}` };
    case "x-api-key":
      return { "x-api-key": key, "anthropic-version": "2023-06-01" };
    case "manus":
      return { "API_KEY": key };
  }
}

/** The error code for an upstream HTTP status, or null when the status is a success. */
export function codeForUpstreamStatus(service: Service, status: number): ErrorCode | null {
  if (status < 400) return null;
  if (status === 401 || status === 403) return providerErrorCode(service, "INVALID_KEY");
  if (status === 429) return providerErrorCode(service, "RATE_LIMITED");
  if (status === 408 || status === 504) return providerErrorCode(service, "TIMEOUT");
  return providerErrorCode(service, "API_ERROR");
}

/** The error code for a fetch that threw: our timeout, or a network failure. */
export function codeForFetchFailure(service: Service, error: unknown): ErrorCode {
  const name = (error as { name?: string })?.name;
  return name === "TimeoutError"
    ? providerErrorCode(service, "TIMEOUT")
    : providerErrorCode(service, "API_ERROR");
}

export interface ValidationOutcome {
  status: ValidationStatus;
  /** Why the key is not `valid`. */
  code: ErrorCode | null;
  upstreamStatus: number | null;
}

/**
 * Calls the provider's cheapest authenticated endpoint with the key. Only 401/403 mark a key
 * invalid; rate limits, outages and timeouts say nothing about the key, so they are `unreachable`.
 */
export async function validateKey(
  config: Pick<Config, "providerBaseUrls" | "allowPrivateBaseUrls" | "validationTimeoutMs">,
  doFetch: typeof fetch,
  service: Service,
  stored: StoredCredentials,
): Promise<ValidationOutcome> {
  const key = stored.api_key;
  if (!key) throw new AppError(providerErrorCode(service, "NOT_CONFIGURED"));
  const spec = PROVIDERS[service];
  const url = upstreamBaseUrl(config, service, stored) + spec.validation.path;
  let response: Response;
  try {
    response = await doFetch(url, {
      method: spec.validation.method,
      headers: keyHeaders(spec.validation.keyHeader, key),
      signal: AbortSignal.timeout(config.validationTimeoutMs),
    });
    await response.body?.cancel();
  } catch (error) {
    return {
      status: "unreachable",
      code: codeForFetchFailure(service, error),
      upstreamStatus: null,
    };
  }
  const code = codeForUpstreamStatus(service, response.status);
  const status: ValidationStatus = code === null
    ? "valid"
    : code === providerErrorCode(service, "INVALID_KEY")
    ? "invalid"
    : "unreachable";
  return { status, code, upstreamStatus: response.status };
}

/** The envelope error for a failed upstream response, keeping its request id and `retry-after`. */
export function upstreamFailure(service: Service, response: Response): AppError {
  const code = codeForUpstreamStatus(service, response.status) ??
    providerErrorCode(service, "API_ERROR");
  const retryAfter = response.headers.get("retry-after");
  const requestId = response.headers.get("x-request-id");
  return new AppError(code, {
    cause: new Error(`upstream answered ${response.status}`),
    headers: retryAfter ? { "retry-after": retryAfter } : {},
    details: {
      upstream_status: response.status,
      ...(requestId ? { upstream_request_id: requestId } : {}),
    },
  });
}

/**
 * One JSON request to an OpenAI-compatible endpoint with the user's key, bounded by `timeoutMs`
 * (and `signal` when given). Resolves to the parsed body; throws the mapped envelope error.
 */
export async function fetchUpstreamJson<T>(
  options: {
    config: Pick<Config, "providerBaseUrls" | "allowPrivateBaseUrls">;
    fetch: typeof fetch;
    service: Service;
    stored: StoredCredentials & { api_key: string };
    path: string;
    method: "GET" | "POST";
    body?: unknown;
    timeoutMs: number;
    signal?: AbortSignal;
  },
): Promise<T> {
  const { service, stored } = options;
  const url = upstreamBaseUrl(options.config, service, stored) + options.path;
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const headers: Record<string, string> = keyHeaders(
    PROVIDERS[service].validation.keyHeader,
    stored.api_key,
  );
  if (options.body !== undefined) headers["content-type"] = "application/json";
  let response: Response;
  try {
    response = await options.fetch(url, {
      method: options.method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal ? AbortSignal.any([timeout, options.signal]) : timeout,
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw upstreamFailure(service, response);
    }
    return await response.json() as T;
  } catch (error) {
    if (error instanceof AppError) throw error;
    const reason = timeout.aborted ? timeout.reason : error;
    throw new AppError(codeForFetchFailure(service, reason), { cause: error });
  }
}

/** Services that speak the OpenAI wire format (chat completions, embeddings, models). */
export const OPENAI_COMPATIBLE_SERVICES = SERVICES.filter((s) => PROVIDERS[s].openAICompatible) as [
  Service,
  ...Service[],
];
