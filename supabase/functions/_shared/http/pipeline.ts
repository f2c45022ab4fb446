/**
 * The request pipeline every function shares: CORS preflight, a single top-level catch that
 * turns errors into the envelope, JSON helpers and a bounded body reader.
 */
import type { z } from "zod";
import type { AuthenticatedUser } from "./auth.ts";
import { ConfigError } from "../core/config.ts";
import { concatChunks } from "../core/chunkReader.ts";
import { buildErrorResponse, type ErrorCode } from "../contract/errorCodes.ts";
import { AppError } from "../core/errors.ts";
import { describeError, log } from "../core/log.ts";
import { resolveRuntime, type Runtime, type RuntimeSource } from "../core/runtime.ts";

export const MAX_BODY_BYTES = 1_048_576;

const CORS_ALLOW_HEADERS = "authorization, x-client-info, apikey, content-type";

/**
 * Response headers the proxy passes back from the provider, each exposed to browsers through
 * CORS below. Looked up while walking the upstream's headers once.
 */
export const FORWARDED_RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  "content-type",
  "content-disposition",
  "x-request-id",
  "request-id",
  "openai-processing-ms",
  "openai-version",
  "openai-model",
  "openai-organization",
  "x-ratelimit-limit-requests",
  "x-ratelimit-limit-tokens",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-remaining-tokens",
  "x-ratelimit-reset-requests",
  "x-ratelimit-reset-tokens",
  "anthropic-ratelimit-requests-limit",
  "anthropic-ratelimit-requests-remaining",
  "anthropic-ratelimit-requests-reset",
  "anthropic-ratelimit-tokens-limit",
  "anthropic-ratelimit-tokens-remaining",
  "anthropic-ratelimit-tokens-reset",
  "anthropic-ratelimit-input-tokens-limit",
  "anthropic-ratelimit-input-tokens-remaining",
  "anthropic-ratelimit-input-tokens-reset",
  "anthropic-ratelimit-output-tokens-limit",
  "anthropic-ratelimit-output-tokens-remaining",
  "anthropic-ratelimit-output-tokens-reset",
]);

/**
 * The CORS headers every response carries: all a browser checks on an actual (non-preflight)
 * response. Builders put them in at construction; adding headers to a built Response afterwards
 * would cost Deno its precomputed native response on the hot path.
 */
export const CORS_RESPONSE_HEADERS: Readonly<Record<string, string>> = {
  "access-control-allow-origin": "*",
  "access-control-expose-headers": [
    "x-key-source",
    "retry-after",
    "x-should-retry",
    "x-ratelimit-remaining-minute",
    "x-ratelimit-remaining-day",
    ...[...FORWARDED_RESPONSE_HEADERS].filter((name) => name !== "content-type"),
  ].join(", "),
};

/** The answer to a CORS preflight: lets a browser on any origin call with a bearer token. */
export function preflightResponse(request: Request): Response {
  return new Response(null, {
    status: 204,
    headers: {
      ...CORS_RESPONSE_HEADERS,
      "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
      // The OpenAI SDK sends x-stainless-* headers; echo what the browser asked for.
      "access-control-allow-headers": request.headers.get("access-control-request-headers") ??
        CORS_ALLOW_HEADERS,
      "access-control-max-age": "86400",
    },
  });
}

export interface JsonResponseInit {
  status?: number;
  headers?: Record<string, string>;
}

/** A JSON answer with the CORS headers, its headers complete at construction. */
export function jsonResponse(body: unknown, init: JsonResponseInit = {}): Response {
  return new Response(JSON.stringify(body), {
    status: init.status,
    headers: {
      ...CORS_RESPONSE_HEADERS,
      ...init.headers,
      "content-type": "application/json; charset=utf-8",
    },
  });
}

/** Extra top-level fields and headers a function adds to every error answer it gives. */
export interface ErrorExtras {
  body?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** The envelope as a Response, with the status from the error table. */
export function errorResponse(error: AppError, extras: ErrorExtras = {}): Response {
  const envelope = buildErrorResponse(error.code, error.userMessage, error.details);
  return jsonResponse({ ...envelope, ...extras.body }, {
    status: error.status,
    headers: { ...error.headers, ...extras.headers },
  });
}

/**
 * SQLSTATEs that mean the input could not be stored: a NUL in text (22P05 untranslatable
 * character, 22021 invalid byte sequence), a value of the wrong form (22P02) and nesting too
 * deep for jsonb (54001). Validation refuses these first; this is the last line behind it.
 */
const INPUT_SQLSTATES = new Set(["22P05", "22021", "22P02", "54001"]);

/** Maps anything thrown to an AppError; the unexpected is logged (redacted) and becomes a 500. */
export function toAppError(error: unknown, context: string): AppError {
  if (error instanceof AppError) return error;
  const sqlstate = (error as { code?: unknown } | null)?.code;
  if (typeof sqlstate === "string" && INPUT_SQLSTATES.has(sqlstate)) {
    log.warn("input the database could not store", { context, sqlstate });
    return new AppError("INVALID_REQUEST", {
      message: "The request contains a value that cannot be stored.",
      cause: error,
    });
  }
  if (error instanceof ConfigError) {
    log.error("missing or invalid setting", {
      context,
      variable: error.variable,
      error: error.message,
    });
    return new AppError("CONFIG_ERROR", { cause: error });
  }
  log.error("unexpected error", { context, error: describeError(error) });
  return new AppError("INTERNAL_ERROR", { cause: error });
}

export type Handler = (request: Request) => Promise<Response>;

/**
 * Wraps a function's handler: answers preflight, resolves the runtime, and catches everything.
 * Every response builder here adds the CORS headers itself, so responses pass through untouched.
 * `name` appears in logs only; `errorExtras` is added to every error answer (one catch for all).
 */
export function defineHandler(
  name: string,
  runtime: RuntimeSource,
  handle: (request: Request, rt: Runtime) => Promise<Response>,
  errorExtras: ErrorExtras = {},
): Handler {
  return async (request) => {
    if (request.method === "OPTIONS") return preflightResponse(request);
    try {
      return await handle(request, resolveRuntime(runtime));
    } catch (error) {
      return errorResponse(toAppError(error, name), errorExtras);
    }
  };
}

/** Throws the envelope error for `code`, with an optional message. */
export function fail(code: ErrorCode, message?: string): never {
  throw new AppError(code, { message });
}

/**
 * The whole body as bytes, null when there is none; 413 `PAYLOAD_TOO_LARGE` past `maxBytes`.
 * A declared `content-length` is checked before anything is read, and the server reads no more
 * than it declares, so the body is then taken in one native read without ever touching
 * `request.body`: creating that stream cost about 12 µs per request (a Deno 2.9.6 server under
 * wrk, 33.6 against 45.8 µs of CPU). A chunked body is counted as it arrives, so an oversized
 * one is refused without being held whole.
 */
export async function readBodyBytes(
  request: Request,
  maxBytes: number,
): Promise<Uint8Array<ArrayBuffer> | null> {
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    if (Number(declared) > maxBytes) fail("PAYLOAD_TOO_LARGE");
    const bytes = await request.bytes();
    if (bytes.byteLength > maxBytes) fail("PAYLOAD_TOO_LARGE");
    return bytes.byteLength === 0 ? null : bytes;
  }
  if (!request.body) return null;
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      fail("PAYLOAD_TOO_LARGE");
    }
    chunks.push(value);
  }
  return size === 0 ? null : concatChunks(chunks);
}

/** Deepest nesting a JSON body may have; jsonb and every consumer stay far from their limits. */
export const MAX_JSON_DEPTH = 64;

/**
 * Why `value` cannot be stored as it is, or null: a NUL character (Postgres text cannot hold
 * one), a lone UTF-16 surrogate (jsonb refuses it), in any string or key, or nesting deeper than
 * MAX_JSON_DEPTH. Walks without recursion, so a body nested 10,000 deep costs no stack.
 */
export function unstorableProblem(value: unknown): string | null {
  const pending: [unknown, number][] = [[value, 1]];
  const badText = (text: string) =>
    text.includes("\0")
      ? "Text must not contain NUL characters."
      : !text.isWellFormed()
      ? "Text must not contain unpaired surrogates."
      : null;
  while (pending.length > 0) {
    const [item, depth] = pending.pop()!;
    if (typeof item === "string") {
      const problem = badText(item);
      if (problem) return problem;
    } else if (item !== null && typeof item === "object") {
      if (depth > MAX_JSON_DEPTH) return `JSON must not nest deeper than ${MAX_JSON_DEPTH} levels.`;
      for (const [key, inner] of Object.entries(item)) {
        const problem = Array.isArray(item) ? null : badText(key);
        if (problem) return problem;
        pending.push([inner, depth + 1]);
      }
    }
  }
  return null;
}

/**
 * Reads a JSON body of at most `maxBytes`: 413 when larger, 415 for another content type,
 * 400 for an empty body, text that is not JSON, or JSON that cannot be stored
 * (`unstorableProblem`).
 */
export async function readJsonBody(request: Request, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) fail("UNSUPPORTED_MEDIA_TYPE");
  const bytes = await readBodyBytes(request, maxBytes);
  if (!bytes) fail("INVALID_REQUEST", "The request body is empty.");
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    fail("INVALID_REQUEST", "The request body is not valid JSON.");
  }
  const problem = unstorableProblem(value);
  if (problem) fail("INVALID_REQUEST", problem);
  return value;
}

/** Turns a zod error into a short, secret-free message: which fields were wrong, not their values. */
export function describeIssues(
  issues: readonly { code: string; path: PropertyKey[]; message: string }[],
): string {
  const parts = issues.slice(0, 5).map((issue) => {
    const where = issue.path.map(String).join(".") || "body";
    // zod names unknown keys in its message; a key name can be anything the caller sent.
    const message = issue.code === "unrecognized_keys"
      ? "unknown fields are not allowed"
      : issue.message;
    return `${where}: ${message}`;
  });
  return `Invalid request: ${parts.join("; ")}`;
}

/** Validates `value` with `schema`; anything else is `400 INVALID_REQUEST` naming the fields. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) fail("INVALID_REQUEST", describeIssues(parsed.error.issues));
  return parsed.data;
}

/**
 * The first steps most handlers share: POST only, authenticate the caller, then read and
 * validate the JSON body. `readBody` replaces the body reader (e.g. to accept an empty body).
 */
export async function readUserJson<T>(
  request: Request,
  rt: Runtime,
  schema: z.ZodType<T>,
  readBody: (request: Request) => Promise<unknown> = readJsonBody,
): Promise<{ user: AuthenticatedUser; body: T }> {
  if (request.method !== "POST") fail("METHOD_NOT_ALLOWED");
  const user = await rt.authenticate(request.headers.get("authorization"));
  return { user, body: parseWith(schema, await readBody(request)) };
}

/**
 * The caller when a token is present, else null: no `authorization` header is an anonymous
 * caller, but a header with a bad, expired or unknown token is still 401.
 */
export async function optionalUser(
  request: Request,
  rt: Runtime,
): Promise<AuthenticatedUser | null> {
  const authorization = request.headers.get("authorization");
  if (authorization === null || authorization.trim() === "") return null;
  return await rt.authenticate(authorization);
}
