/**
 * The one error class. Handlers throw it; the top-level catch in `http/pipeline.ts` turns it into
 * the envelope. `cause` is for logs only and never reaches a response.
 */
import {
  ERROR_TABLE,
  type ErrorCode,
  getHttpStatus,
  providerErrorCode,
} from "../contract/errorCodes.ts";
import { describeError, log } from "./log.ts";
import type { Service } from "../contract/providers.ts";
import {
  classifyUpstream,
  parseUpstreamSaid,
  type UpstreamAnswer,
  upstreamDetails,
} from "./upstreamErrors.ts";

export interface AppErrorOptions {
  /** Replaces the table's user message (for validation details). Never put a secret here. */
  message?: string;
  cause?: unknown;
  /** Extra response headers, e.g. `retry-after`. */
  headers?: Record<string, string>;
  /** Extra envelope fields, e.g. the upstream request id. */
  details?: Record<string, unknown>;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly details: Record<string, unknown> | undefined;
  readonly userMessage: string | undefined;

  constructor(code: ErrorCode, options: AppErrorOptions = {}) {
    super(options.message ?? code, { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.status = getHttpStatus(code);
    this.headers = options.headers ?? {};
    this.details = options.details;
    this.userMessage = options.message;
  }

  /**
   * The error for a provider's failed answer, mapped by its status and what its body said
   * (upstreamErrors.ts). A 4xx about the request itself becomes `<PROVIDER>_API_ERROR` here;
   * the proxy passes those through instead (`isPassThrough`). `secret` (the key used) is kept
   * out of every detail. `retry-after` is kept.
   */
  static fromUpstream(
    service: Service,
    answer: UpstreamAnswer,
    options: { secret?: string; headers?: Record<string, string> } = {},
  ): AppError {
    const said = parseUpstreamSaid(answer.text);
    const kind = classifyUpstream(answer.status, said) ?? "API_ERROR";
    const code = providerErrorCode(service, kind);
    const headers = { ...options.headers };
    const retryAfter = answer.headers.get("retry-after");
    if (retryAfter && ERROR_TABLE[code].recoverable) headers["retry-after"] = retryAfter;
    // The SDKs (openai, anthropic) take this header's word over the status's on retrying.
    if (!ERROR_TABLE[code].recoverable) headers["x-should-retry"] = "false";
    return new AppError(code, {
      headers,
      details: upstreamDetails(answer, said, options.secret),
      cause: new Error(`upstream answered ${answer.status}`),
    });
  }

  /**
   * The error for a request that got no answer: our timeout (`<PROVIDER>_TIMEOUT`) or a network
   * failure (`<PROVIDER>_UNREACHABLE`, logged with the host and the error's name, never a key).
   * An abort for a client that went away is neither, and is not logged.
   */
  static fromNetwork(
    service: Service,
    error: unknown,
    options: { url?: string; headers?: Record<string, string> } = {},
  ): AppError {
    const name = (error as { name?: string })?.name;
    const timedOut = name === "TimeoutError";
    // Aborted by us for the client's sake (it went away): nobody to tell, nothing unreachable.
    if (name === "AbortError") {
      return new AppError(providerErrorCode(service, "API_ERROR"), {
        headers: options.headers,
        cause: error,
      });
    }
    if (!timedOut) {
      let host: string | undefined;
      try {
        host = options.url ? new URL(options.url).host : undefined;
      } catch {
        host = undefined;
      }
      log.warn("provider unreachable", { service, host, error: describeError(error) });
    }
    return new AppError(providerErrorCode(service, timedOut ? "TIMEOUT" : "UNREACHABLE"), {
      headers: options.headers,
      cause: error,
    });
  }
}

/** True for an AppError with the given code (or any code when none is given). */
export function isAppError(value: unknown, code?: ErrorCode): value is AppError {
  return value instanceof AppError && (code === undefined || value.code === code);
}
