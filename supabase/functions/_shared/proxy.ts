/**
 * The pass-through behind `openai-proxy` and `llm-proxy`: verify the caller, resolve whose key
 * pays, swap the caller's JWT for that key, forward to the provider and stream the answer back
 * byte for byte. Upstream failures become the envelope (`<PROVIDER>_INVALID_KEY`, ...).
 * Per request: one JWT verification, one cached key lookup, one upstream fetch; usage is
 * recorded in memory and written later.
 */
import { type ErrorCode } from "./errorCodes.ts";
import { AppError } from "./errors.ts";
import { CORS_RESPONSE_HEADERS, fail, readBodyBytes } from "./http.ts";
import { type ResolvedKey, resolveProviderKey } from "./keyResolution.ts";
import { PROVIDERS, type Service } from "./providers.ts";
import { chunkReader, concatChunks } from "./chunkReader.ts";
import { READ_AHEAD_BYTES, readAhead, relayBody, usageFromTail } from "./proxyStream.ts";
import type { Runtime } from "./runtime.ts";
import {
  codeForFetchFailure,
  codeForUpstreamStatus,
  keyHeaders,
  upstreamBaseUrl,
} from "./upstream.ts";
import { usageRecorderFor } from "./usageRecorder.ts";

/** The OpenAI-style endpoints the proxy forwards, relative to the provider's `/v1` base. */
const ROUTES: { method: string; path: RegExp }[] = [
  {
    method: "POST",
    path: /^\/(?:chat\/completions|completions|embeddings|moderations|responses)$/,
  },
  { method: "GET", path: /^\/models(?:\/[\w.:@\/-]+)?$/ },
];

/** Request headers a client may pass on; everything else (its JWT above all) stays here. */
const FORWARDED_REQUEST_HEADERS = [
  "content-type",
  "accept",
  "openai-beta",
  "anthropic-beta",
  "anthropic-version",
];

/**
 * Response headers worth passing back to the client. Looked up while walking the upstream's
 * headers once: eleven `get`s, each a scan of the list, cost five times as much.
 */
export const FORWARDED_RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  "content-type",
  "x-request-id",
  "openai-processing-ms",
  "openai-version",
  "openai-model",
  "x-ratelimit-limit-requests",
  "x-ratelimit-limit-tokens",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-remaining-tokens",
  "x-ratelimit-reset-requests",
  "x-ratelimit-reset-tokens",
]);

/** Upstream 4xx answers that are about the request itself, passed through as the provider wrote them. */
function isClientError(status: number): boolean {
  return status >= 400 && status < 500 && ![401, 403, 408, 429].includes(status);
}

/** Request bodies larger than this are refused before anything is sent upstream. */
export const MAX_PROXY_BODY_BYTES = 10 * 1024 * 1024;

export interface ProxyTarget {
  service: Service;
  /** The OpenAI-style path after `/v1`, e.g. `/chat/completions`. */
  path: string;
  /** The query string to pass on (`?limit=...`), already split off by the caller's URL parse. */
  search?: string;
}

/** Refuses paths and methods outside the proxied endpoints. */
export function checkRoute(method: string, path: string): void {
  const matches = ROUTES.filter((route) => route.path.test(path));
  if (matches.length === 0) fail("NOT_FOUND");
  if (!matches.some((route) => route.method === method)) fail("METHOD_NOT_ALLOWED");
}

function readBody(request: Request): Promise<Uint8Array<ArrayBuffer> | null> {
  if (request.method === "GET") return Promise.resolve(null);
  return readBodyBytes(request, MAX_PROXY_BODY_BYTES);
}

function upstreamError(
  code: ErrorCode,
  upstream: Response | null,
  headers: Record<string, string>,
  cause?: unknown,
): AppError {
  const retryAfter = upstream?.headers.get("retry-after");
  if (retryAfter) headers["retry-after"] = retryAfter;
  const requestId = upstream?.headers.get("x-request-id");
  const details: Record<string, unknown> = {};
  if (upstream) details.upstream_status = upstream.status;
  if (requestId) details.upstream_request_id = requestId;
  return new AppError(code, { headers, details, cause });
}

/**
 * The error for an upstream that failed before its answer was in hand. When we aborted it (the
 * timeout, the client gone), the abort's reason says why, not the error fetch raised for it.
 */
function failedUpstream(
  service: Service,
  abort: AbortController,
  keySource: Record<string, string>,
  error: unknown,
): AppError {
  const reason = abort.signal.aborted ? abort.signal.reason : error;
  return upstreamError(codeForFetchFailure(service, reason), null, { ...keySource }, reason);
}

/**
 * Forwards `request` to `target` with the key that pays for the caller (keyResolution.ts) and
 * returns the provider's answer. Throws `AppError` for anything that ends before the upstream
 * answered successfully.
 */
export async function proxyRequest(
  request: Request,
  rt: Runtime,
  target: ProxyTarget,
): Promise<Response> {
  checkRoute(request.method, target.path);
  // verifyToken, not authenticate: the key lookup right after confirms the user exists.
  const user = await rt.verifyToken(request.headers.get("authorization"));
  const key = await resolveProviderKey(rt, user, target.service);
  return await forwardWithKey(request, rt, target, { userId: user.id, key });
}

/** Who a forwarded request is for, the key already decided, and headers to add to every answer. */
export interface KeyedCaller {
  userId: string;
  key: ResolvedKey;
  responseHeaders?: Record<string, string>;
}

/**
 * The pass-through itself, for callers that checked the route and decided the key another way
 * (owner-funded `execute`). Usage is recorded for `caller.userId` under the key's source.
 */
export async function forwardWithKey(
  request: Request,
  rt: Runtime,
  target: ProxyTarget,
  caller: KeyedCaller,
): Promise<Response> {
  const { service } = target;
  const { credentials, source } = caller.key;
  const user = { id: caller.userId };
  const keySource = { ...caller.responseHeaders, "x-key-source": source };
  const url = upstreamBaseUrl(rt.config, service, credentials) + target.path +
    (target.search ?? "");

  const headers = keyHeaders(PROVIDERS[service].validation.keyHeader, credentials.api_key);
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = request.headers.get(name);
    if (value !== null && !(name in headers)) headers[name] = value;
  }

  // Read (and size-check) the body before anything upstream starts: a 413 is the caller's error.
  const requestBody = await readBody(request);
  const abort = new AbortController();
  let settled = false;
  // Deno also aborts request.signal once a response has been fully sent; by then `settled` is set.
  const onClientGone = () => {
    if (!settled) abort.abort(request.signal.reason);
  };
  request.signal.addEventListener("abort", onClientGone, { once: true });
  const finish = () => {
    settled = true;
    request.signal.removeEventListener("abort", onClientGone);
  };

  let upstream: Response;
  const headerDeadline = setTimeout(
    () => abort.abort(new DOMException("no upstream response in time", "TimeoutError")),
    rt.config.upstreamTimeoutMs,
  );
  try {
    upstream = await rt.fetch(url, {
      method: request.method,
      headers,
      body: requestBody,
      signal: abort.signal,
    });
  } catch (error) {
    finish();
    throw failedUpstream(service, abort, keySource, error);
  } finally {
    clearTimeout(headerDeadline);
  }

  const code = codeForUpstreamStatus(service, upstream.status);
  if (code && !isClientError(upstream.status)) {
    finish();
    await upstream.body?.cancel().catch(() => {});
    throw upstreamError(code, upstream, { ...keySource });
  }

  // Complete before the Response is built, so Deno keeps its native fast path for byte bodies.
  const responseHeaders: Record<string, string> = { ...CORS_RESPONSE_HEADERS, ...keySource };
  upstream.headers.forEach((value, name) => {
    if (FORWARDED_RESPONSE_HEADERS.has(name)) responseHeaders[name] = value;
  });
  if (!upstream.body || code) {
    // A 4xx about the request itself: pass the provider's own explanation through.
    finish();
    return new Response(upstream.body, { status: upstream.status, headers: responseHeaders });
  }
  const eventStream = responseHeaders["content-type"]?.startsWith("text/event-stream") ?? false;
  if (eventStream) responseHeaders["cache-control"] = "no-cache";

  const usage = usageRecorderFor(rt.db);
  const declaredLength = Number(upstream.headers.get("content-length") ?? NaN);
  if (!eventStream && declaredLength <= READ_AHEAD_BYTES) {
    // A small answer of known size: one native read of the whole body.
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await upstream.bytes();
    } catch (error) {
      finish();
      throw failedUpstream(service, abort, keySource, error);
    }
    finish();
    usage.record({ userId: user.id, service, source, usage: usageFromTail(bytes) });
    return new Response(bytes, { status: upstream.status, headers: responseHeaders });
  }
  const chunks = chunkReader(upstream.body);
  let prefix: Uint8Array[] = [];
  if (!eventStream) {
    let head;
    try {
      head = await readAhead(chunks, READ_AHEAD_BYTES, abort, rt.config.upstreamTimeoutMs);
    } catch (error) {
      finish();
      throw failedUpstream(service, abort, keySource, error);
    }
    if (head.complete) {
      finish();
      const bytes = concatChunks(head.chunks);
      usage.record({ userId: user.id, service, source, usage: usageFromTail(bytes) });
      return new Response(bytes, { status: upstream.status, headers: responseHeaders });
    }
    prefix = head.chunks;
  }
  const body = relayBody({
    chunks,
    prefix,
    abort,
    idleTimeoutMs: rt.config.upstreamTimeoutMs,
    timeLimitMs: rt.config.streamTimeLimitMs,
    eventStream,
    codeForFailure: (error) => codeForFetchFailure(service, error),
    onEnd: (tail) => {
      finish();
      usage.record({ userId: user.id, service, source, usage: usageFromTail(tail) });
    },
  });
  return new Response(body, { status: upstream.status, headers: responseHeaders });
}
