/**
 * The one error class. Handlers throw it; the top-level catch in `http.ts` turns it into the
 * envelope. `cause` is for logs only and never reaches a response.
 */
import { type ErrorCode, getHttpStatus } from "./errorCodes.ts";

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
}

/** True for an AppError with the given code (or any code when none is given). */
export function isAppError(value: unknown, code?: ErrorCode): value is AppError {
  return value instanceof AppError && (code === undefined || value.code === code);
}
