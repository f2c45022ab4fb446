/**
 * The caller's side of a proxied request: where its access token is, which query parameters
 * stay here, and how its body is read (bounded, or streamed through for uploads).
 */
import { AppError } from "../core/errors.ts";
import { fail, readBodyBytes } from "../http/pipeline.ts";
import type { Service } from "../contract/providers.ts";

/** Request bodies larger than this are refused before anything is sent upstream. */
export const MAX_PROXY_BODY_BYTES = 10 * 1024 * 1024;
/**
 * The bound for multipart uploads (audio transcriptions, files, image edits), which are streamed
 * upstream rather than read first. OpenAI takes audio up to 25 MB and images up to 50 MB; larger
 * files belong in its Uploads API.
 */
export const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;

/** Where a caller's access token may be, per provider: its SDKs put their key in these. */
const TOKEN_HEADERS: Partial<Record<Service, string[]>> = {
  anthropic: ["x-api-key"],
  gemini: ["x-goog-api-key"],
};

/**
 * The caller's access token as an `Authorization` value: the `Authorization` header, else the
 * header the provider's own SDK sends its key in (`x-api-key`, `x-goog-api-key`), else Gemini's
 * `key` query parameter. Null when there is none (401 follows).
 */
export function accessTokenOf(request: Request, service: Service): string | null {
  const authorization = request.headers.get("authorization");
  if (authorization) return authorization;
  for (const name of TOKEN_HEADERS[service] ?? []) {
    const value = request.headers.get(name);
    if (value) return `Bearer ${value}`;
  }
  if (service === "gemini") {
    const key = new URL(request.url).searchParams.get("key");
    if (key) return `Bearer ${key}`;
  }
  return null;
}

/** The query string without `key`: a caller's token never goes upstream, in any parameter. */
export function searchWithoutKey(search: string | undefined): string {
  if (!search || !/(?:^|[?&])key=/.test(search)) return search ?? "";
  const params = new URLSearchParams(search);
  params.delete("key");
  const rest = params.toString();
  return rest ? `?${rest}` : "";
}

/** A multipart body passed upstream as it arrives, failing past `maxBytes`. */
export function boundedUpload(
  request: Request,
  maxBytes: number,
): { body: ReadableStream<Uint8Array> | null; overflowed: () => boolean } {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) fail("PAYLOAD_TOO_LARGE");
  let size = 0;
  let overflow = false;
  const body = request.body?.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        size += chunk.byteLength;
        if (size > maxBytes) {
          overflow = true;
          controller.error(new AppError("PAYLOAD_TOO_LARGE"));
          return;
        }
        controller.enqueue(chunk);
      },
    }),
  ) ?? null;
  return { body, overflowed: () => overflow };
}

/** A JSON (or other small) body read whole under `MAX_PROXY_BODY_BYTES`; none for GET and DELETE. */
export function readBody(request: Request): Promise<Uint8Array<ArrayBuffer> | null> {
  if (request.method === "GET" || request.method === "DELETE") return Promise.resolve(null);
  return readBodyBytes(request, MAX_PROXY_BODY_BYTES);
}
