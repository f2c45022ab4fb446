/**
 * Deployment settings, read and trimmed once. A missing required value is a `ConfigError`
 * naming the variable. Provider API keys are deliberately absent: they only ever come from
 * the user's own stored credentials.
 */
import type { PrivateAddressPolicy } from "../upstream/outbound.ts";
import { PROVIDERS, type Service, SERVICES } from "../contract/providers.ts";

export type EnvSource = Record<string, string | undefined> | ((name: string) => string | undefined);

export class ConfigError extends Error {
  constructor(readonly variable: string, reason: string) {
    super(`${variable} ${reason}`);
    this.name = "ConfigError";
  }
}

export interface JwtConfig {
  /**
   * Legacy HS256 project secret, from `JWT_SECRET`: the platform does not inject it, and refuses
   * user secrets named `SUPABASE_*`, so a legacy project sets it under this name.
   */
  secret: string | null;
  /** The JWKS the platform injects as `SUPABASE_JWKS` (`{"keys": [...]}` or a bare array). */
  jwks: { keys: Record<string, unknown>[] } | null;
  /** Where to fetch the project's JWKS when none is inline. */
  jwksUrl: string | null;
}

export interface Config {
  /** pgp_sym_encrypt passphrase for new writes; reaches SQL only as a bind parameter. */
  encryptionKey: string;
  /** The version number stored on rows written with `encryptionKey`. */
  encryptionKeyVersion: number;
  /** The key before the last rotation, used for rows still carrying an older version. */
  previousEncryptionKey: string | null;
  /**
   * Where the functions' pool connects: `DB_POOLER_URL` (the project's transaction pooler, port
   * 6543, as Supabase recommends for functions) when set, else the injected `SUPABASE_DB_URL`.
   */
  dbUrl: string | null;
  /** Connections each isolate's pool may open (`DB_POOL_MAX`); every function has its own. */
  dbPoolMax: number;
  /** Longest one query or transaction may take before the request answers 503. */
  databaseTimeoutMs: number;
  jwt: JwtConfig;
  providerBaseUrls: Record<Exclude<Service, "custom">, string>;
  credentialLookupTimeoutMs: number;
  credentialCacheTtlMs: number;
  upstreamTimeoutMs: number;
  /**
   * Longest a streamed answer may run before it ends with a `STREAM_TIME_LIMIT` event: below the
   * platform's wall clock, so the client gets an answer instead of a cut connection.
   */
  streamTimeLimitMs: number;
  validationTimeoutMs: number;
  /** Comment heartbeat interval on SSE streams (conversation-run). */
  sseHeartbeatMs: number;
  /** How often a streaming run polls its cancel flag; bounds how late a cancel takes effect. */
  runCancelPollMs: number;
  /**
   * Which non-public addresses a custom endpoint may reach (outbound.ts): `none` (deployments),
   * `loopback` (`ALLOW_PRIVATE_BASE_URLS=loopback`, what `npm start` uses) or `all`
   * (`ALLOW_PRIVATE_BASE_URLS=true`, tests).
   */
  privateAddresses: PrivateAddressPolicy;
  /** `privateAddresses` is not `none`: the base URL string check lets http and private literals by. */
  allowPrivateBaseUrls: boolean;
  allowOwnerNameSharing: boolean;
}

/** Cache entries never outlive this, whatever the setting says: the documented staleness bound. */
export const MAX_CREDENTIAL_CACHE_TTL_MS = 10_000;
const MIN_ENCRYPTION_KEY_LENGTH = 16;
/**
 * The free plan's wall clock is 150 s, and a worker is retired at about half of it, so a stream
 * that starts late in a worker's life may have little more than 75 s: 60 s stays below that.
 */
export const DEFAULT_STREAM_TIME_LIMIT_MS = 60_000;

function reader(source: EnvSource): (name: string) => string | undefined {
  const get = typeof source === "function" ? source : (name: string) => source[name];
  return (name) => {
    const value = get(name)?.trim();
    return value === undefined || value === "" ? undefined : value;
  };
}

function positiveInt(read: (n: string) => string | undefined, name: string, fallback: number) {
  const raw = read(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new ConfigError(name, "must be a positive integer");
  }
  return value;
}

function flag(read: (n: string) => string | undefined, name: string): boolean {
  return read(name)?.toLowerCase() === "true";
}

/**
 * How tokens are verified. Asymmetric signing keys (ES256, RS256, EdDSA) through the JWKS are the
 * default: inline from `SUPABASE_JWKS`, else fetched from `SUPABASE_URL`; both are injected on
 * the platform. HS256 tokens need `JWT_SECRET`. Neither at all is one `ConfigError`.
 */
function readJwtConfig(read: (name: string) => string | undefined): JwtConfig {
  const inlineJwks = read("SUPABASE_JWKS");
  let jwks: JwtConfig["jwks"] = null;
  if (inlineJwks) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(inlineJwks);
    } catch (cause) {
      throw new ConfigError("SUPABASE_JWKS", `is not JSON (${(cause as Error).name})`);
    }
    const keys = Array.isArray(parsed) ? parsed : (parsed as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys)) throw new ConfigError("SUPABASE_JWKS", "has no keys array");
    jwks = { keys };
  }
  const supabaseUrl = read("SUPABASE_URL");
  const jwt: JwtConfig = {
    secret: read("JWT_SECRET") ?? null,
    jwks,
    jwksUrl: jwks
      ? null
      : supabaseUrl
      ? `${supabaseUrl.replace(/\/+$/, "")}/auth/v1/.well-known/jwks.json`
      : null,
  };
  if (!jwt.secret && !jwt.jwks && !jwt.jwksUrl) {
    throw new ConfigError(
      "JWT_SECRET",
      "is not set, and there is no JWKS either (SUPABASE_JWKS or SUPABASE_URL): no token can be verified",
    );
  }
  return jwt;
}

function privateAddressPolicy(read: (n: string) => string | undefined): PrivateAddressPolicy {
  const raw = read("ALLOW_PRIVATE_BASE_URLS")?.toLowerCase();
  if (raw === undefined || raw === "false") return "none";
  if (raw === "true") return "all";
  if (raw === "loopback") return "loopback";
  throw new ConfigError("ALLOW_PRIVATE_BASE_URLS", "must be true, loopback or false");
}

/** Reads every setting the functions use. Throws `ConfigError` for a missing or malformed one. */
export function loadConfig(source: EnvSource = (name) => Deno.env.get(name)): Config {
  const read = reader(source);

  const encryptionKey = read("CREDENTIALS_ENCRYPTION_KEY");
  if (!encryptionKey) throw new ConfigError("CREDENTIALS_ENCRYPTION_KEY", "is not set");
  if (encryptionKey.length < MIN_ENCRYPTION_KEY_LENGTH) {
    throw new ConfigError(
      "CREDENTIALS_ENCRYPTION_KEY",
      `must be at least ${MIN_ENCRYPTION_KEY_LENGTH} characters`,
    );
  }

  const jwt = readJwtConfig(read);

  const privateAddresses = privateAddressPolicy(read);
  const providerBaseUrls = Object.fromEntries(
    SERVICES.filter((s) => s !== "custom").map((service) => {
      const spec = PROVIDERS[service];
      const url = (spec.baseUrlEnv && read(spec.baseUrlEnv)) ?? spec.defaultBaseUrl!;
      return [service, url.replace(/\/+$/, "")];
    }),
  ) as Config["providerBaseUrls"];

  return {
    encryptionKey,
    encryptionKeyVersion: positiveInt(read, "CREDENTIALS_ENCRYPTION_KEY_VERSION", 1),
    previousEncryptionKey: read("CREDENTIALS_ENCRYPTION_KEY_PREVIOUS") ?? null,
    dbUrl: read("DB_POOLER_URL") ?? read("SUPABASE_DB_URL") ?? null,
    dbPoolMax: positiveInt(read, "DB_POOL_MAX", 3),
    databaseTimeoutMs: positiveInt(read, "DATABASE_TIMEOUT_MS", 5_000),
    jwt,
    providerBaseUrls,
    credentialLookupTimeoutMs: positiveInt(read, "CREDENTIALS_LOOKUP_TIMEOUT_MS", 5_000),
    credentialCacheTtlMs: Math.min(
      positiveInt(read, "CREDENTIALS_CACHE_TTL_MS", MAX_CREDENTIAL_CACHE_TTL_MS),
      MAX_CREDENTIAL_CACHE_TTL_MS,
    ),
    upstreamTimeoutMs: positiveInt(read, "UPSTREAM_TIMEOUT_MS", 120_000),
    streamTimeLimitMs: positiveInt(read, "STREAM_TIME_LIMIT_MS", DEFAULT_STREAM_TIME_LIMIT_MS),
    validationTimeoutMs: positiveInt(read, "VALIDATION_TIMEOUT_MS", 10_000),
    sseHeartbeatMs: positiveInt(read, "SSE_HEARTBEAT_MS", 15_000),
    runCancelPollMs: positiveInt(read, "RUN_CANCEL_POLL_MS", 250),
    privateAddresses,
    allowPrivateBaseUrls: privateAddresses !== "none",
    allowOwnerNameSharing: flag(read, "ALLOW_OWNER_NAME_SHARING"),
  };
}
