/**
 * Talking to a provider with the user's key: where to send it and how to attach the key. Its
 * failures map to the error table in one place, `AppError.fromUpstream` / `fromNetwork`
 * (errors.ts, upstreamErrors.ts).
 */
import { baseUrlProblem, normalizeBaseUrl } from "./baseUrl.ts";
import { readWhole } from "../core/chunkReader.ts";
import type { ValidationStatus } from "../contract/keyStatus.ts";
import type { Config } from "../core/config.ts";
import type { StoredCredentials } from "../vault/keyReader.ts";
import { type ErrorCode, providerErrorCode } from "../contract/errorCodes.ts";
import { AppError } from "../core/errors.ts";
import { readErrorText } from "../core/upstreamErrors.ts";
import { type KeyHeaderStyle, PROVIDERS, type Service, SERVICES } from "../contract/providers.ts";

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
      return { "x-api-key": key, "anthropic-version": DEFAULT_ANTHROPIC_VERSION };
    case "x-goog-api-key":
      return { "x-goog-api-key": key };
    case "manus":
      return { "API_KEY": key };
  }
}

/** Sent to Anthropic only when the client named no `anthropic-version` of its own. */
export const DEFAULT_ANTHROPIC_VERSION = "2023-06-01";

/**
 * Gemini's native API base for an API version, derived from the one setting `GEMINI_BASE_URL`
 * (which ends where the OpenAI-compatible paths begin, `.../v1beta/openai`): the same host and
 * prefix, so a gateway or a test fake moves both. `version` is `v1beta`, `v1` or `v1alpha`.
 */
export function geminiNativeBase(openAIBase: string, version: string): string {
  const root = openAIBase.replace(/\/openai$/, "").replace(/\/v1(?:beta|alpha)?$/, "");
  return `${root}/${version}`;
}

/**
 * The error code for a read that failed after the answer began: our idle timeout, or the
 * connection breaking mid-answer (an API error: the provider was reached).
 */
export function codeForStreamFailure(service: Service, error: unknown): ErrorCode {
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
  /** The mapped error when the key is not `valid` (its envelope details included). */
  error: AppError | null;
}

/** What a validation failure records: only the provider's word about the key or its credit. */
function validationStatusFor(service: Service, code: ErrorCode): ValidationStatus {
  if (code === providerErrorCode(service, "INVALID_KEY")) return "invalid";
  if (code === providerErrorCode(service, "QUOTA_EXCEEDED")) return "quota_exceeded";
  return "unreachable";
}

/**
 * Calls the provider's cheapest authenticated endpoint with the key. A refused key is
 * `invalid`, an account without credit `quota_exceeded`; rate limits, outages, network failures
 * and timeouts say nothing about the key, so they are `unreachable`.
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
  let error: AppError | null = null;
  let upstreamStatus: number | null = null;
  try {
    const response = await doFetch(url, {
      method: spec.validation.method,
      headers: keyHeaders(spec.validation.keyHeader, key),
      signal: AbortSignal.timeout(config.validationTimeoutMs),
    });
    upstreamStatus = response.status;
    if (response.ok) {
      await response.body?.cancel();
    } else {
      error = await upstreamFailure(service, response, key);
    }
  } catch (failure) {
    error = AppError.fromNetwork(service, failure, { url });
  }
  if (!error) return { status: "valid", code: null, upstreamStatus, error: null };
  return {
    status: validationStatusFor(service, error.code),
    code: error.code,
    upstreamStatus,
    error,
  };
}

/** The envelope error for a failed upstream response, its body read (bounded) and mapped. */
export async function upstreamFailure(
  service: Service,
  response: Response,
  secret?: string,
): Promise<AppError> {
  const text = await readErrorText(response);
  return AppError.fromUpstream(service, {
    status: response.status,
    headers: response.headers,
    text,
  }, {
    secret,
  });
}

/**
 * The largest JSON answer read: far past any models list or embeddings batch (2,048 vectors of
 * 3,072 numbers is about 125 MB as text), so only a runaway body meets it.
 */
const MAX_JSON_ANSWER_BYTES = 192 * 1024 * 1024;

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
  } catch (error) {
    throw AppError.fromNetwork(service, timeout.aborted ? timeout.reason : error, { url });
  }
  if (!response.ok) throw await upstreamFailure(service, response, stored.api_key);
  try {
    if (!response.body) throw new SyntaxError("empty body");
    const bytes = await readWhole(response.body, {
      maxBytes: MAX_JSON_ANSWER_BYTES,
      declaredBytes: Number(response.headers.get("content-length") ?? NaN),
      overflow: () => new RangeError("upstream answer too large"),
      ms: options.timeoutMs,
      timeout: () => new DOMException("upstream answer not in time", "TimeoutError"),
      signal: timeout,
    });
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch (error) {
    const late = timeout.aborted || (error as { name?: string })?.name === "TimeoutError";
    if (late) throw AppError.fromNetwork(service, timeout.reason ?? error, { url });
    throw new AppError(providerErrorCode(service, "API_ERROR"), {
      cause: error,
      details: { upstream_status: response.status },
    });
  }
}

/** Services that speak the OpenAI wire format (chat completions, embeddings, models). */
export const OPENAI_COMPATIBLE_SERVICES = SERVICES.filter((s) => PROVIDERS[s].openAICompatible) as [
  Service,
  ...Service[],
];
