/**
 * What a provider said when it refused a request, read from its status *and* its error body, as
 * openai-node's `APIError.generate` does. Every caller (proxy, validate, models, embeddings,
 * conversation-run) reaches this through `AppError.fromUpstream` (errors.ts), so an OpenAI 429
 * `insufficient_quota`, Anthropic's credit-balance 400, OpenRouter's 402 and Gemini's 400
 * `API_KEY_INVALID` mean the same thing wherever they surface.
 */
import type { ProviderErrorKind } from "../contract/errorCodes.ts";

/** The fields of an error body that say what happened; never its message text. */
export interface UpstreamSaid {
  /** `error.type` (OpenAI, Anthropic) or `error.status` (Google's `INVALID_ARGUMENT`, ...). */
  type: string | null;
  /** `error.code` (OpenAI's `insufficient_quota`) or Google's `details[].reason`. */
  code: string | null;
  /** Google's `details[].reason` values (`API_KEY_INVALID`). */
  reasons: string[];
  /** Only matched against known phrases; never passed on (it may quote part of the key). */
  message: string;
}

/** An upstream answer that was not a success, its body already read (bounded). */
export interface UpstreamAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/** How much of an error body is read: error bodies are small, and this bounds a hostile one. */
export const ERROR_BODY_BYTES = 64 * 1024;

const str = (value: unknown): string | null => typeof value === "string" ? value : null;

/**
 * The error object inside a body: `{error: {...}}` (OpenAI, Gemini native, OpenRouter),
 * `{type: "error", error: {...}}` (Anthropic), `[{error: {...}}]` (Gemini's OpenAI-compatible
 * endpoint) or `{error: "text"}`.
 */
export function errorObjectOf(body: unknown): Record<string, unknown> | null {
  const first = Array.isArray(body) ? body[0] : body;
  if (!first || typeof first !== "object") return null;
  const error = (first as { error?: unknown }).error;
  if (typeof error === "string") return { message: error };
  return error && typeof error === "object" ? error as Record<string, unknown> : null;
}

/** Reads what the provider said from an error body; all fields empty when it is not JSON. */
export function parseUpstreamSaid(text: string): UpstreamSaid {
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (an HTML error page, a proxy's text): the status alone decides.
  }
  const error = errorObjectOf(body);
  const details = Array.isArray(error?.details) ? error.details : [];
  const reasons = details.map((detail) => str((detail as { reason?: unknown })?.reason))
    .filter((reason): reason is string => reason !== null);
  return {
    type: str(error?.type) ?? str(error?.status),
    code: str(error?.code) ?? reasons[0] ?? null,
    reasons,
    message: str(error?.message) ?? "",
  };
}

const INVALID_KEY_TYPES = new Set([
  "authentication_error",
  "permission_error",
  "invalid_api_key",
  "UNAUTHENTICATED",
  "PERMISSION_DENIED",
]);
const INVALID_KEY_CODES = new Set(["invalid_api_key", "API_KEY_INVALID", "API_KEY_EXPIRED"]);
const QUOTA_CODES = new Set(["insufficient_quota", "billing_error", "billing_hard_limit_reached"]);
/** Anthropic answers an account without credit with a 400 whose message says so. */
const QUOTA_MESSAGE = /credit balance is too low|insufficient credits/i;

/**
 * The kind of failure, or null for a 4xx about the request itself (a bad model, a bad parameter),
 * which the proxy passes through as the provider wrote it.
 */
export function classifyUpstream(status: number, said: UpstreamSaid): ProviderErrorKind | null {
  if (status < 400) return null;
  const { type, code } = said;
  if (
    status === 402 || QUOTA_CODES.has(code ?? "") || QUOTA_CODES.has(type ?? "") ||
    (status < 500 && QUOTA_MESSAGE.test(said.message))
  ) {
    return "QUOTA_EXCEEDED";
  }
  if (
    status === 401 || status === 403 || INVALID_KEY_TYPES.has(type ?? "") ||
    INVALID_KEY_CODES.has(code ?? "") || said.reasons.some((r) => INVALID_KEY_CODES.has(r))
  ) {
    return "INVALID_KEY";
  }
  if (status === 429 || type === "rate_limit_error" || type === "RESOURCE_EXHAUSTED") {
    return "RATE_LIMITED";
  }
  if (status === 408 || status === 504) return "TIMEOUT";
  // 5xx, and Anthropic's 529 `overloaded_error`: the provider's trouble, worth retrying.
  if (status >= 500) return "API_ERROR";
  return null;
}

/** True for a refusal about the request itself, which the proxy passes through as written. */
export function isPassThrough(answer: UpstreamAnswer): boolean {
  return classifyUpstream(answer.status, parseUpstreamSaid(answer.text)) === null;
}

/** A detail value a client may see: a short identifier that does not contain the key. */
function safeIdentifier(value: string | null, secret: string | undefined): string | null {
  if (!value || !/^[A-Za-z0-9_.:-]{1,80}$/.test(value)) return null;
  if (secret && (value.includes(secret) || (secret.length >= 8 && secret.includes(value)))) {
    return null;
  }
  return value;
}

/** The provider's request id, in whichever header it uses. */
export function upstreamRequestId(headers: Headers): string | null {
  return headers.get("x-request-id") ?? headers.get("request-id") ??
    headers.get("x-goog-request-id") ?? null;
}

/**
 * The envelope details for a failed answer: upstream status, request id, and the provider's
 * error type and code when it sent a recognisable body, none of them containing `secret`.
 */
export function upstreamDetails(
  answer: Pick<UpstreamAnswer, "status" | "headers">,
  said: UpstreamSaid,
  secret?: string,
): Record<string, unknown> {
  const details: Record<string, unknown> = { upstream_status: answer.status };
  const requestId = safeIdentifier(upstreamRequestId(answer.headers), secret);
  if (requestId) details.upstream_request_id = requestId;
  const type = safeIdentifier(said.type, secret);
  if (type) details.upstream_type = type;
  const code = safeIdentifier(said.code, secret);
  if (code) details.upstream_code = code;
  return details;
}

/** Reads at most `ERROR_BODY_BYTES` of an error body as text, then lets the rest go. */
export async function readErrorText(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < ERROR_BODY_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // A body that breaks mid-way: what arrived is all there is to read.
  } finally {
    reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(Math.min(size, ERROR_BODY_BYTES));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.byteLength - at);
    bytes.set(part, at);
    at += part.byteLength;
  }
  return new TextDecoder().decode(bytes);
}
