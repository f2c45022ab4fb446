/**
 * Checks a user-supplied base URL for the custom OpenAI-compatible endpoint. The server will send
 * the user's key there, so it must be https and must not aim at the server's own network
 * (loopback, private, link-local) unless the deployment allows it (the local stack and tests).
 */

const PRIVATE_HOST = [
  /^localhost$/i,
  /\.localhost$/i,
  /^127\./,
  /^10\./,
  /^192\.168\./,
  /^172\.(1[6-9]|2\d|3[01])\./,
  /^169\.254\./,
  /^0\./,
  /^\[?::1?\]?$/,
  /^\[?f[cd][0-9a-f]{2}:/i,
  /^\[?fe80:/i,
  /^\[?::ffff:/i,
];

/** Why `raw` cannot be a custom base URL, or null when it can. */
export function baseUrlProblem(raw: string, allowPrivate: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "Base URL is not a valid URL.";
  }
  if (url.protocol !== "https:" && !(allowPrivate && url.protocol === "http:")) {
    return "Base URL must use https.";
  }
  if (url.username || url.password) return "Base URL must not contain credentials.";
  if (url.search || url.hash) return "Base URL must not have a query or fragment.";
  if (!allowPrivate && PRIVATE_HOST.some((pattern) => pattern.test(url.hostname))) {
    return "Base URL must be a public host.";
  }
  return null;
}

/** The URL without a trailing slash, ready to have `/chat/completions` appended. */
export function normalizeBaseUrl(raw: string): string {
  return raw.replace(/\/+$/, "");
}
