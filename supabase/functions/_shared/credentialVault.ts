/**
 * Reads a user's decrypted provider credentials in one database round trip, behind a
 * per-isolate cache.
 *
 * Cache bound: an entry lives at most `credentialCacheTtlMs` (capped at 10 s). The isolate that
 * writes or deletes a key calls `forget`, so it stops using the old value at once; every other
 * isolate stops within the TTL. Concurrent misses for the same user and service share one query.
 */
import type { Config } from "./config.ts";
import type { Database } from "./db.ts";
import { AppError, isAppError } from "./errors.ts";
import { describeError, log } from "./log.ts";
import type { CredentialKey, Service } from "./providers.ts";

/** The decrypted values a user stored for one service, e.g. `{ api_key: "sk-..." }`. */
export type StoredCredentials = Partial<Record<CredentialKey, string>>;

export interface CredentialVault {
  /**
   * The user's stored credentials for `service` (an empty object when there are none).
   * Throws `UNAUTHORIZED` when the user no longer exists and `CREDENTIALS_UNAVAILABLE` when the
   * database does not answer within the lookup timeout. Never reads the environment.
   */
  lookup(userId: string, service: Service): Promise<StoredCredentials>;
  /** Drops the cached entry so the next lookup reads the database. */
  forget(userId: string, service: Service): void;
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
  >;
  /** Clock in ms; tests move it to expire entries. */
  now?: () => number;
  maxEntries?: number;
}

interface CacheEntry {
  value: StoredCredentials;
  expiresAt: number;
}

interface LookupRow {
  user_exists: boolean;
  credential_key: CredentialKey | null;
  secret: string | null;
}

const LOOKUP_SQL = `select user_exists, credential_key, secret
  from private.credentials_for($1::uuid, $2, $3, $4::integer, $5)`;

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
  const inFlight = new Map<string, Promise<StoredCredentials>>();

  async function query(userId: string, service: Service): Promise<StoredCredentials> {
    const rows = await db.query<LookupRow>(LOOKUP_SQL, [
      userId,
      service,
      config.encryptionKey,
      config.encryptionKeyVersion,
      config.previousEncryptionKey,
    ]);
    if (!rows[0]?.user_exists) throw new AppError("UNAUTHORIZED");
    const stored: StoredCredentials = {};
    for (const row of rows) {
      if (row.credential_key && row.secret !== null) stored[row.credential_key] = row.secret;
    }
    return stored;
  }

  function remember(key: string, value: StoredCredentials): void {
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(key, { value, expiresAt: now() + config.credentialCacheTtlMs });
  }

  return {
    lookup(userId, service) {
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
          throw isAppError(error)
            ? error
            : new AppError("CREDENTIALS_UNAVAILABLE", { cause: error });
        })
        .finally(() => {
          if (inFlight.get(key) === load) inFlight.delete(key);
        });
      inFlight.set(key, load);
      return load;
    },
    forget(userId, service) {
      const key = `${userId}:${service}`;
      cache.delete(key);
      inFlight.delete(key);
    },
  };
}
