/**
 * Verifies the caller's Supabase access token with jose. Accepts asymmetric signing keys from the
 * project's JWKS (the default) and, when `JWT_SECRET` is set, the legacy HS256 project secret. Anything else is a 401 `UNAUTHORIZED`: no token,
 * alg `none`, a bad signature, expiry, `nbf` or `iat` in the future, a wrong audience, no `sub`, or a role
 * that is not a signed-in user (the anon and service keys are not users).
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import type { JwtConfig } from "../core/config.ts";
import { AppError } from "../core/errors.ts";
import { log } from "../core/log.ts";

/** How far a token's `iat` may lie ahead of this server's clock. */
const CLOCK_SKEW_SECONDS = 60;

export interface AuthenticatedUser {
  id: string;
  email: string | null;
  claims: JWTPayload & Record<string, unknown>;
}

export type Authenticator = (authorization: string | null) => Promise<AuthenticatedUser>;

const ASYMMETRIC_ALGORITHMS = ["RS256", "ES256", "EdDSA"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Pulls the token out of `Authorization: Bearer <token>`; null when the header has no token. */
export function bearerToken(authorization: string | null): string | null {
  const match = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
  return match ? match[1] : null;
}

function unauthorized(cause: unknown): AppError {
  return new AppError("UNAUTHORIZED", { cause });
}

/** How many verified tokens an isolate remembers (a client reuses its token for many requests). */
const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

/** What verifying a token gave, remembered by the token's exact text until the token's `exp`. */
export interface VerifiedTokenCache<T> {
  /** The remembered value; undefined when the token is unknown or has expired (then forgotten). */
  get(token: string): T | undefined;
  /** Remembers `value` until `exp` (seconds since the epoch); a token without one is not kept. */
  set(token: string, value: T, exp: unknown): void;
}

/**
 * The one verified-token cache, bounded to `size` tokens (the oldest is forgotten first). Any
 * change to a token is a different text, so it is verified from scratch.
 */
export function createVerifiedTokenCache<T>(
  now: () => number = () => Date.now(),
  size = VERIFIED_TOKEN_CACHE_SIZE,
): VerifiedTokenCache<T> {
  const entries = new Map<string, { value: T; expiresAt: number }>();
  return {
    get(token) {
      const hit = entries.get(token);
      if (!hit) return undefined;
      if (hit.expiresAt > now()) return hit.value;
      entries.delete(token);
      return undefined;
    },
    set(token, value, exp) {
      if (typeof exp !== "number") return;
      if (entries.size >= size) entries.delete(entries.keys().next().value!);
      entries.set(token, { value, expiresAt: exp * 1000 });
    },
  };
}

/**
 * Builds the verifier once per isolate; the returned function is the per-request step.
 * A token that verified once is remembered until its `exp` (createVerifiedTokenCache), so a
 * client's next requests skip the signature check (the most expensive step of a proxied request).
 */
export function createAuthenticator(
  config: JwtConfig,
  now: () => number = () => Date.now(),
): Authenticator {
  const hmacKey = config.secret
    ? crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(config.secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    )
    : null;
  const keySet: JWTVerifyGetKey | null = config.jwks
    ? createLocalJWKSet(config.jwks as Parameters<typeof createLocalJWKSet>[0])
    : config.jwksUrl
    ? createRemoteJWKSet(new URL(config.jwksUrl), { timeoutDuration: 5_000 })
    : null;
  const verified = createVerifiedTokenCache<AuthenticatedUser>(now);
  const misconfigured = onceReporter();

  return async (authorization) => {
    const token = bearerToken(authorization);
    if (!token) throw unauthorized(new Error("no bearer token"));
    const hit = verified.get(token);
    if (hit) return hit;
    const user = await verifySignedToken(token, hmacKey, keySet, misconfigured);
    verified.set(token, user, user.claims.exp);
    return user;
  };
}

/** The full check of one token: signature, algorithm, claims, role and subject. */
/**
 * Logs a configuration error once per isolate: a token signed in a way this deployment has no
 * key for. The caller still gets 401 (anyone can send such a token), but the operator learns
 * why every user of a legacy HS256 project is refused.
 */
function onceReporter(): (alg: string) => void {
  const reported = new Set<string>();
  return (alg) => {
    if (reported.has(alg)) return;
    reported.add(alg);
    log.error("configuration error: cannot verify tokens signed with this algorithm", {
      alg,
      fix: alg === "HS256"
        ? "JWT_SECRET is not set: if this project signs user tokens with the legacy JWT " +
          "secret, set it (supabase secrets set JWT_SECRET=...)"
        : "no JWKS: SUPABASE_URL (or SUPABASE_JWKS) is not set",
    });
  };
}

async function verifySignedToken(
  token: string,
  hmacKey: Promise<CryptoKey> | null,
  keySet: JWTVerifyGetKey | null,
  misconfigured: (alg: string) => void,
): Promise<AuthenticatedUser> {
  let alg: string | undefined;
  try {
    alg = decodeProtectedHeader(token).alg;
  } catch (cause) {
    throw unauthorized(cause);
  }

  const options = { audience: "authenticated", requiredClaims: ["sub", "exp"] };
  let payload: JWTPayload;
  try {
    if (alg === "HS256" && hmacKey) {
      ({ payload } = await jwtVerify(token, await hmacKey, { ...options, algorithms: ["HS256"] }));
    } else if (alg && ASYMMETRIC_ALGORITHMS.includes(alg) && keySet) {
      ({ payload } = await jwtVerify(token, keySet, {
        ...options,
        algorithms: ASYMMETRIC_ALGORITHMS,
      }));
    } else {
      if (alg === "HS256" || (alg && ASYMMETRIC_ALGORITHMS.includes(alg))) misconfigured(alg);
      throw new Error(`unsupported alg ${alg}`);
    }
  } catch (cause) {
    throw unauthorized(cause);
  }

  // A token issued in the future was minted with a wrong clock or to outlive its lifetime.
  if (typeof payload.iat === "number" && payload.iat > Date.now() / 1000 + CLOCK_SKEW_SECONDS) {
    throw unauthorized(new Error("iat is in the future"));
  }
  if (payload.role !== "authenticated") throw unauthorized(new Error("not a user token"));
  if (typeof payload.sub !== "string" || !UUID.test(payload.sub)) {
    throw unauthorized(new Error("sub is not a user id"));
  }
  const email = typeof payload.email === "string" ? payload.email : null;
  return { id: payload.sub.toLowerCase(), email, claims: payload as AuthenticatedUser["claims"] };
}
