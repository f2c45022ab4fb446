/**
 * The pass-through behind `openai-proxy` and `llm-proxy`: verify the caller, resolve whose key
 * pays, swap the caller's JWT for that key, forward to the provider and stream the answer back
 * byte for byte. Upstream failures become the envelope (`<PROVIDER>_INVALID_KEY`, ...).
 * Per request: one JWT verification, one cached key lookup, one upstream fetch; usage is
 * recorded in memory and written later.
 */
import { AppError } from "../core/errors.ts";
import { CORS_RESPONSE_HEADERS, fail, FORWARDED_RESPONSE_HEADERS } from "../http/pipeline.ts";
import {
  accessTokenOf,
  boundedUpload,
  MAX_UPLOAD_BYTES,
  readBody,
  searchWithoutKey,
} from "./proxyInbound.ts";
import { type ResolvedKey, resolveProviderKey } from "../sharing/keyResolution.ts";
import { type KeyHeaderStyle, PROVIDERS, type Service } from "../contract/providers.ts";
import { chunkReader, readWhole } from "../core/chunkReader.ts";
import type { ErrorEventFormat } from "../http/sse.ts";
import { relayBody, stalled, usageFromEnds, usageFromTail } from "./proxyStream.ts";
import { checkRoute, routesFor, type Wire } from "./proxyRoutes.ts";
import type { Runtime } from "../core/runtime.ts";
import {
  codeForStreamFailure,
  geminiNativeBase,
  keyHeaders,
  upstreamBaseUrl,
} from "./providerCalls.ts";
import { isPassThrough, readErrorText } from "../core/upstreamErrors.ts";
import { chargeSharedKey, usageRecorderFor } from "./usageRecorder.ts";
import { CALLERS_OWN_KEY } from "./outbound.ts";

/**
 * Request headers a client may pass on; everything else (its JWT above all) stays here. The
 * provider's own version and beta headers, OpenAI's organization and project (keys scoped to a
 * project need them), OpenRouter's app attribution.
 */
const FORWARDED_REQUEST_HEADERS = [
  "content-type",
  "accept",
  "openai-beta",
  "openai-organization",
  "openai-project",
  "anthropic-beta",
  "anthropic-version",
  "http-referer",
  "x-title",
];

export interface ProxyTarget {
  service: Service;
  /** The path after the API root, e.g. `/chat/completions` or `/models/m:generateContent`. */
  path: string;
  /** The query string to pass on (`?limit=...`), already split off by the caller's URL parse. */
  search?: string;
  /** The API the request speaks; `openai` when absent. */
  wire?: Wire;
  /** Gemini's native API version (`v1beta`), for `wire: "gemini"`. */
  apiVersion?: string;
  /** Stream the body upstream under `MAX_UPLOAD_BYTES` (set from the route). */
  upload?: boolean;
}

/** The key header style a wire uses: Gemini's own API takes `x-goog-api-key`. */
function keyStyleFor(service: Service, wire: Wire): KeyHeaderStyle {
  return wire === "gemini" ? "x-goog-api-key" : PROVIDERS[service].validation.keyHeader;
}

/** Google's OpenAI-compatible endpoint answers errors as `[{error}]`; clients expect `{error}`. */
function unwrapErrorArray(text: string): string {
  if (!text.startsWith("[")) return text;
  try {
    const body = JSON.parse(text);
    return Array.isArray(body) && body[0]?.error ? JSON.stringify(body[0]) : text;
  } catch {
    return text;
  }
}

/** How a broken stream ends on this target (see `errorEvent`). */
function errorFormatFor(target: ProxyTarget): ErrorEventFormat {
  if (target.wire === "anthropic") return "anthropic";
  return target.path === "/responses" ? "responses" : "envelope";
}

/** Content types whose bodies may carry token usage; binary answers (audio) are never scanned. */
const USAGE_BEARING = /^(?:application\/json|text\/event-stream)/;

/**
 * A non-streamed answer that declares a length up to this is read whole before its headers go
 * out, so a body that stalls or breaks still gets an error status; anything else is relayed
 * (why there is no read-ahead of other answers: bench/README.md#hot-path-notes).
 */
const WHOLE_BODY_BYTES = 256 * 1024;

/**
 * The error for an upstream that failed before its answer was in hand. When we aborted it (the
 * timeout, the client gone), the abort's reason says why, not the error fetch raised for it.
 */
function failedUpstream(
  service: Service,
  abort: AbortController,
  keySource: Record<string, string>,
  error: unknown,
  url: string,
): AppError {
  const reason = abort.signal.aborted ? abort.signal.reason : error;
  return AppError.fromNetwork(service, reason, { url, headers: { ...keySource } });
}

/** A read of the body that failed after the headers came: timeout or a broken answer. */
function failedRead(
  service: Service,
  abort: AbortController,
  keySource: Record<string, string>,
  error: unknown,
): AppError {
  const reason = abort.signal.aborted ? abort.signal.reason : error;
  if (reason instanceof AppError) return reason;
  return new AppError(codeForStreamFailure(service, reason), {
    headers: { ...keySource },
    cause: reason,
  });
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
  const route = checkRoute(
    routesFor(target.service, target.wire ?? "openai"),
    request.method,
    target.path,
  );
  // verifyToken, not authenticate: the key lookup right after confirms the user exists.
  const user = await rt.verifyToken(accessTokenOf(request, target.service));
  const key = await resolveProviderKey(rt, user, target.service);
  return await forwardWithKey(request, rt, { ...target, upload: route.upload }, {
    userId: user.id,
    key,
  });
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
  const wire = target.wire ?? "openai";
  const { credentials, source } = caller.key;
  const keySource = { ...caller.responseHeaders, "x-key-source": source };
  const base = upstreamBaseUrl(rt.config, service, credentials);
  const root = wire === "gemini" ? geminiNativeBase(base, target.apiVersion ?? "v1beta") : base;
  const url = root + target.path + searchWithoutKey(target.search);

  // The client's version and beta headers win over our defaults; the key header is always ours.
  const headers = keyHeaders(keyStyleFor(service, wire), credentials.api_key);
  // The caller's own key comes back only to them: outbound.ts need not scrub the answer.
  if (source === "user") headers[CALLERS_OWN_KEY] = "1";
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = request.headers.get(name);
    if (value !== null) headers[name] = value;
  }

  // Read (and size-check) the body before anything upstream starts: a 413 is the caller's error.
  // Uploads are streamed through instead, counted as they go.
  const upload = target.upload ? boundedUpload(request, MAX_UPLOAD_BYTES) : null;
  const requestBody = upload ? upload.body : await readBody(request);
  const abort = new AbortController();
  let settled = false;
  // Deno also aborts request.signal once a response has been fully sent; by then `settled` is set.
  const onClientGone = () => {
    if (!settled) abort.abort(request.signal.reason);
  };
  request.signal.addEventListener("abort", onClientGone, { once: true });
  // A server that stops ends the stream with its own event (relayBody reads the reason).
  const onStopping = () => abort.abort(new AppError("SERVER_SHUTTING_DOWN"));
  rt.stopping.addEventListener("abort", onStopping, { once: true });
  let contentType: string | undefined;
  /**
   * The one end of every request, with the bytes of the body sent (a relayed one's tail and head)
   * or none when it failed or had no body. Every body sent counts as a request; only JSON and
   * event streams are read for tokens, which a shared key is also charged.
   */
  const settle = (tail?: Uint8Array, head?: Uint8Array) => {
    settled = true;
    request.signal.removeEventListener("abort", onClientGone);
    rt.stopping.removeEventListener("abort", onStopping);
    if (!tail) return;
    const found = !USAGE_BEARING.test(contentType ?? "")
      ? null
      : head
      ? usageFromEnds(head, tail)
      : usageFromTail(tail);
    usageRecorderFor(rt.db).record({ userId: caller.userId, service, source, usage: found });
    chargeSharedKey(rt.db, caller.key, caller.userId, found);
  };

  let relaying = false;
  let whole: Uint8Array | undefined;
  try {
    const upstream = await fetchWithin(rt, url, {
      method: request.method,
      headers,
      body: requestBody,
      signal: abort.signal,
      ...(upload ? { duplex: "half" } : {}),
    } as RequestInit, abort).catch((error) => {
      if (upload?.overflowed()) fail("PAYLOAD_TOO_LARGE");
      throw failedUpstream(service, abort, keySource, error, url);
    });
    if (upstream.status >= 400) {
      return await refusal(upstream, service, credentials.api_key, keySource);
    }

    // Complete before the Response is built (why: bench/README.md#hot-path-notes).
    const responseHeaders = answerHeaders(upstream, keySource);
    contentType = responseHeaders["content-type"];
    const eventStream = contentType?.startsWith("text/event-stream") ?? false;
    if (eventStream) responseHeaders["cache-control"] = "no-cache";
    const declaredLength = Number(upstream.headers.get("content-length") ?? NaN);

    let body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null = null;
    if (upstream.body && !eventStream && declaredLength <= WHOLE_BODY_BYTES) {
      body = whole = await readWhole(upstream.body, {
        maxBytes: WHOLE_BODY_BYTES,
        declaredBytes: declaredLength,
        overflow: () => new Error("upstream body longer than it declared"),
        ms: rt.config.upstreamTimeoutMs,
        timeout: stalled,
        signal: abort.signal,
      }).catch((error) => {
        abort.abort(error);
        throw failedRead(service, abort, keySource, error);
      });
    } else if (upstream.body) {
      relaying = true;
      body = relayBody({
        chunks: chunkReader(upstream.body),
        abort,
        idleTimeoutMs: rt.config.upstreamTimeoutMs,
        timeLimitMs: rt.config.streamTimeLimitMs,
        eventStream,
        codeForFailure: (error) => codeForStreamFailure(service, error),
        errorFormat: errorFormatFor(target),
        onEnd: settle,
      });
    }
    return new Response(body, { status: upstream.status, headers: responseHeaders });
  } finally {
    // A relayed body settles when it ends; everything else, here.
    if (!relaying) settle(whole);
  }
}

/** The provider's response headers, within the upstream timeout (the body is read later). */
async function fetchWithin(
  rt: Runtime,
  url: string,
  init: RequestInit,
  abort: AbortController,
): Promise<Response> {
  const headerDeadline = setTimeout(
    () => abort.abort(new DOMException("no upstream response in time", "TimeoutError")),
    rt.config.upstreamTimeoutMs,
  );
  try {
    return await rt.fetch(url, init);
  } finally {
    clearTimeout(headerDeadline);
  }
}

/**
 * A refused request: a failure of the key, the account or the provider becomes its envelope
 * error (`AppError.fromUpstream`, thrown); a 4xx about the request itself is passed through with
 * the provider's own explanation.
 */
async function refusal(
  upstream: Response,
  service: Service,
  secret: string,
  keySource: Record<string, string>,
): Promise<Response> {
  const text = await readErrorText(upstream);
  const answer = { status: upstream.status, headers: upstream.headers, text };
  if (!isPassThrough(answer)) {
    throw AppError.fromUpstream(service, answer, { secret, headers: keySource });
  }
  return new Response(unwrapErrorArray(text), {
    status: upstream.status,
    headers: answerHeaders(upstream, keySource),
  });
}

/** The headers of an answer we pass on: CORS, the key source and the provider's own we forward. */
function answerHeaders(
  upstream: Response,
  keySource: Record<string, string>,
): Record<string, string> {
  const headers: Record<string, string> = { ...CORS_RESPONSE_HEADERS, ...keySource };
  upstream.headers.forEach((value, name) => {
    if (FORWARDED_RESPONSE_HEADERS.has(name)) headers[name] = value;
  });
  return headers;
}
