/**
 * Share tokens and live ids for published flows. A token is 256 random bits, shown once; the
 * database keeps only its SHA-256, so lookups compare digests and their timing says nothing about
 * the token. Tokens carry the `shr_` prefix so log redaction recognizes them.
 */

function randomBase64Url(bytes: number): string {
  const buffer = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...buffer)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

export const SHARE_TOKEN_PATTERN = /^shr_[A-Za-z0-9_-]{43}$/;

/** A new share token: `shr_` and 43 base64url characters. */
export function newShareToken(): string {
  return `shr_${randomBase64Url(32)}`;
}

/** A new public live id (12 base64url characters). */
export function newLiveId(): string {
  return randomBase64Url(9);
}

/** How a token appears in any debug output. */
export const REDACTED = "[REDACTED]";
