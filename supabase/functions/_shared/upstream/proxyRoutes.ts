/**
 * The explicit list of what the proxy forwards, per provider and wire format. A request outside
 * it is refused (`NOT_FOUND` / `METHOD_NOT_ALLOWED`) before any key is looked up.
 */
import { fail } from "../http/pipeline.ts";
import type { Service } from "../contract/providers.ts";

/** Which API a request speaks: OpenAI's (every provider), or a provider's own. */
export type Wire = "openai" | "anthropic" | "gemini";

export interface ProxyRoute {
  method: "GET" | "POST" | "DELETE";
  path: RegExp;
  /** A multipart upload (audio, files): streamed upstream under `MAX_UPLOAD_BYTES`. */
  upload?: boolean;
}

const ID = "[\\w.:@-]+";
const route = (method: ProxyRoute["method"], path: string, upload?: boolean): ProxyRoute => ({
  method,
  path: new RegExp(`^${path}$`),
  ...(upload ? { upload } : {}),
});

/** What every OpenAI-compatible provider serves. */
const OPENAI_COMMON: ProxyRoute[] = [
  route("POST", "/(?:chat/completions|completions|embeddings|moderations|responses)"),
  route("GET", `/models(?:/${ID}(?:/${ID})*)?`),
];

/** The rest of the OpenAI surface that carries a user's key: OpenAI itself and custom endpoints. */
const OPENAI_FULL: ProxyRoute[] = [
  ...OPENAI_COMMON,
  route("POST", "/audio/(?:transcriptions|translations)", true),
  route("POST", "/audio/speech"),
  route("POST", "/images/generations"),
  route("POST", "/images/(?:edits|variations)", true),
  route("GET", "/files"),
  route("POST", "/files", true),
  route("GET", `/files/${ID}(?:/content)?`),
  route("DELETE", `/files/${ID}`),
  route("GET", `/responses/${ID}(?:/input_items)?`),
  route("DELETE", `/responses/${ID}`),
  route("POST", `/responses/${ID}/cancel`),
  route("POST", "/responses/input_tokens"),
  route("POST", "/conversations"),
  route("GET", `/conversations/${ID}(?:/items(?:/${ID})?)?`),
  route("POST", `/conversations/${ID}(?:/items)?`),
  route("DELETE", `/conversations/${ID}(?:/items/${ID})?`),
  route("GET", `/batches(?:/${ID})?`),
  route("POST", "/batches"),
  route("POST", `/batches/${ID}/cancel`),
  route("GET", `/vector_stores(?:/${ID}(?:/files(?:/${ID}(?:/content)?)?)?)?`),
  route("POST", `/vector_stores(?:/${ID}(?:/search|/files(?:/${ID})?)?)?`),
  route("DELETE", `/vector_stores/${ID}(?:/files/${ID})?`),
  route("POST", `/vector_stores/${ID}/file_batches`),
  route("GET", `/vector_stores/${ID}/file_batches/${ID}(?:/files)?`),
  route("POST", `/vector_stores/${ID}/file_batches/${ID}/cancel`),
];

/** Anthropic's Messages API, relative to `ANTHROPIC_BASE_URL` (`.../v1`). */
const ANTHROPIC_NATIVE: ProxyRoute[] = [
  route("POST", "/messages(?:/count_tokens)?"),
];

/** Gemini's own API, relative to its version root (`.../v1beta`). */
const GEMINI_NATIVE: ProxyRoute[] = [
  route(
    "POST",
    `/models/${
      ID.replace(":", "")
    }:(?:generateContent|streamGenerateContent|countTokens|embedContent|batchEmbedContents)`,
  ),
  route("GET", `/models(?:/${ID.replace(":", "")})?`),
];

/** The routes a provider serves on a wire. */
export function routesFor(service: Service, wire: Wire): ProxyRoute[] {
  if (wire === "anthropic") return ANTHROPIC_NATIVE;
  if (wire === "gemini") return GEMINI_NATIVE;
  return service === "openai" || service === "custom" ? OPENAI_FULL : OPENAI_COMMON;
}

/** The route `method path` takes on a wire; refuses everything else. */
export function checkRoute(routes: ProxyRoute[], method: string, path: string): ProxyRoute {
  const matches = routes.filter((candidate) => candidate.path.test(path));
  if (matches.length === 0) fail("NOT_FOUND");
  return matches.find((candidate) => candidate.method === method) ?? fail("METHOD_NOT_ALLOWED");
}
