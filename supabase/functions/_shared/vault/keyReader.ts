/**
 * Reads a user's decrypted provider credentials in one database round trip, behind a
 * per-isolate cache.
 *
 * Cache bound: an entry lives at most `credentialCacheTtlMs` (capped at 10 s). The isolate that
 * writes or deletes a key calls `forget`, so it stops using the old value at once; every other
 * isolate stops within the TTL. Concurrent misses for the same user and service share one query.
 */
import type { Config } from "../core/config.ts";
import type { Database } from "../core/db.ts";
import { AppError, isAppError } from "../core/errors.ts";
import { keyringParam } from "./keyring.ts";
import { describeError, log } from "../core/log.ts";
import { providerErrorCode } from "../contract/errorCodes.ts";
import { type CredentialKey, PROVIDERS, type Service } from "../contract/providers.ts";

/** The decrypted values a user stored for one service, e.g. `{ api_key: "sk-..." }`. */
export type StoredCredentials = Partial<Record<CredentialKey, string>>;

/** The LLM config mode that governs one service for one user (personal, shared or owner-name). */
export type KeyMode =
  | { kind: "personal" }
  | { kind: "shared"; accountName: string }
  | { kind: "owner_name"; ownerName: string; ownerNameKey: string | null };

/** Everything one lookup learns: the user's own values and the mode in force. */
export interface KeyContext {
  credentials: StoredCredentials;
  mode: KeyMode;
  /** The user turned their api_key for this service off: it is kept but left out of `credentials`. */
  disabled: boolean;
}

/**
 * The error for a missing key: `<SERVICE>_NOT_CONFIGURED`, saying so when the key is stored but
 * turned off. `whose` names someone else's key (e.g. "The flow's owner").
 */
export function missingKeyError(service: Service, disabled: boolean, whose?: string): AppError {
  const label = PROVIDERS[service].label;
  const message = disabled
    ? whose
      ? `${whose} turned their ${label} key off.`
      : `Your ${label} key is turned off. Turn it on in Settings → Integrations → ${label}.`
    : whose
    ? `${whose} has not configured a key for this provider.`
    : undefined;
  return new AppError(providerErrorCode(service, "NOT_CONFIGURED"), message ? { message } : {});
}

export interface CredentialVault {
  /**
   * The user's stored credentials for `service` (an empty object when there are none).
   * Throws `UNAUTHORIZED` when the user no longer exists and `CREDENTIALS_UNAVAILABLE` when the
   * database does not answer within the lookup timeout. Never reads the environment.
   */
  lookup(userId: string, service: Service): Promise<StoredCredentials>;
  /** Same lookup (same cache entry), with the mode that governs the service. */
  lookupContext(userId: string, service: Service): Promise<KeyContext>;
  /** Drops the cached entry so the next lookup reads the database. */
  forget(userId: string, service: Service): void;
  /** Drops every cached entry of the user (after a change of LLM config mode). */
  forgetUser(userId: string): void;
}

export interface VaultOptions {
  db: Database;
  config: Pick<
    Config,
    | "encryptionKey"
    | "encryptionKeyVersion"
    | "previousEncryptionKey"
    | "credentialLookupTimeoutMs"
    | "credentialCacheTtlMs"
    | "allowOwnerNameSharing"
  >;
  /** Clock in ms; tests move it to expire entries. */
  now?: () => number;
  maxEntries?: number;
}

interface CacheEntry {
  value: KeyContext;
  expiresAt: number;
}

interface LookupRow {
  user_exists: boolean;
  credential_key: CredentialKey | null;
  secret: string | null;
  mode: KeyMode["kind"];
  shared_key_account_name: string | null;
  key_owner_name: string | null;
  owner_name_secret: string | null;
  is_active: boolean;
}

// is_active is read beside the decrypting function, in the same statement, so a key turned off
// is never handed out (the function itself stays as its migration defines it).
const LOOKUP_SQL =
  `select f.user_exists, f.credential_key, f.secret, f.mode, f.shared_key_account_name,
         f.key_owner_name, f.owner_name_secret, coalesce(c.is_active, true) as is_active
  from private.credentials_for($1::uuid, $2, $3::text::jsonb, $4) as f
  left join public.user_credentials as c
    on c.user_id = $1::uuid and c.service = $2 and c.credential_key = f.credential_key`;

function modeOf(row: LookupRow): KeyMode {
  if (row.mode === "shared") {
    return { kind: "shared", accountName: row.shared_key_account_name ?? "" };
  }
  if (row.mode === "owner_name") {
    return {
      kind: "owner_name",
      ownerName: row.key_owner_name ?? "",
      ownerNameKey: row.owner_name_secret,
    };
  }
  return { kind: "personal" };
}

/** Rejects with `CREDENTIALS_UNAVAILABLE` when `work` takes longer than `ms`. */
function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new AppError("CREDENTIALS_UNAVAILABLE", { cause: new Error(`lookup exceeded ${ms} ms`) }),
        ),
      ms,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export function createCredentialVault(options: VaultOptions): CredentialVault {
  const { db, config } = options;
  const now = options.now ?? (() => Date.now());
  const maxEntries = options.maxEntries ?? 10_000;
  const cache = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<KeyContext>>();

  async function query(userId: string, service: Service): Promise<KeyContext> {
    const rows = await db.query<LookupRow>(LOOKUP_SQL, [
      userId,
      service,
      keyringParam(config),
      config.allowOwnerNameSharing,
    ]);
    if (!rows[0]?.user_exists) throw new AppError("UNAUTHORIZED");
    const credentials: StoredCredentials = {};
    let disabled = false;
    for (const row of rows) {
      if (row.credential_key === "api_key" && !row.is_active) disabled = true;
      else if (row.credential_key && row.secret !== null) {
        credentials[row.credential_key] = row.secret;
      }
    }
    return { credentials, mode: modeOf(rows[0]), disabled };
  }

  function remember(key: string, value: KeyContext): void {
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(key, { value, expiresAt: now() + config.credentialCacheTtlMs });
  }

  function lookupContext(userId: string, service: Service): Promise<KeyContext> {
    const key = `${userId}:${service}`;
    const hit = cache.get(key);
    if (hit && hit.expiresAt > now()) return Promise.resolve(hit.value);
    const pending = inFlight.get(key);
    if (pending) return pending;

    const load = withTimeout(query(userId, service), config.credentialLookupTimeoutMs)
      .then((value) => {
        // A `forget` during the query means this value may already be stale: do not cache it.
        if (inFlight.get(key) === load) remember(key, value);
        return value;
      })
      .catch((error: unknown) => {
        if (isAppError(error, "UNAUTHORIZED")) throw error;
        log.warn("credential lookup failed", { service, error: describeError(error) });
        throw isAppError(error) ? error : new AppError("CREDENTIALS_UNAVAILABLE", { cause: error });
      })
      .finally(() => {
        if (inFlight.get(key) === load) inFlight.delete(key);
      });
    inFlight.set(key, load);
    return load;
  }

  return {
    lookup: (userId, service) =>
      lookupContext(userId, service).then((context) => context.credentials),
    lookupContext,
    forget(userId, service) {
      const key = `${userId}:${service}`;
      cache.delete(key);
      inFlight.delete(key);
    },
    forgetUser(userId) {
      for (const key of [...cache.keys(), ...inFlight.keys()]) {
        if (key.startsWith(`${userId}:`)) {
          cache.delete(key);
          inFlight.delete(key);
        }
      }
    },
  };
}
