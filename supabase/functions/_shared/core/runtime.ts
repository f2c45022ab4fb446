/**
 * What a handler needs, built once per isolate: settings, the database, the JWT verifier and the
 * credential vault. Deployed functions build it from the environment on first use; the local
 * stack and tests build it with their own database.
 */
import { type Authenticator, createAuthenticator } from "../http/auth.ts";
import { onShutdown } from "./background.ts";
import { type Config, loadConfig } from "./config.ts";
import { createCredentialVault, type CredentialVault } from "../vault/keyReader.ts";
import { connectPostgres, type Database } from "./db.ts";
import { ConfigError } from "./config.ts";
import { createOutboundFetch, type Resolver, resolveWithDns } from "../upstream/outbound.ts";
import { createUserDirectory } from "../http/userDirectory.ts";

export interface Runtime {
  config: Config;
  db: Database;
  /** Verifies the JWT and confirms the user still exists: the authenticate step of a handler. */
  authenticate: Authenticator;
  /**
   * Verifies the JWT only. For the proxy's hot path, whose very next step is a vault lookup that
   * confirms the user exists in the same round trip.
   */
  verifyToken: Authenticator;
  vault: CredentialVault;
  /**
   * The one way out to a provider: outbound.ts's guard (address check, connection pinned to the
   * checked address, no redirects) over the platform fetch.
   */
  fetch: typeof fetch;
  /** The DNS lookup the guard uses, for checks made before a call (saving a base URL). */
  resolve: Resolver;
  /** Aborts when the server stops: open streams then end with `SERVER_SHUTTING_DOWN`. */
  stopping: AbortSignal;
}

export interface RuntimeParts {
  config: Config;
  db: Database;
  /** The fetch under the outbound guard; tests and benchmarks may wrap it to observe requests. */
  fetch?: typeof fetch;
  /** DNS seam for the outbound guard (tests map names to addresses). */
  resolve?: Resolver;
  now?: () => number;
  /** The server's stop signal (the local stack's); never aborts when absent. */
  stopping?: AbortSignal;
}

export function createRuntime(parts: RuntimeParts): Runtime {
  const verifyToken = createAuthenticator(parts.config.jwt);
  const users = createUserDirectory({ db: parts.db, config: parts.config, now: parts.now });
  return {
    config: parts.config,
    db: parts.db,
    verifyToken,
    authenticate: async (authorization) => {
      const user = await verifyToken(authorization);
      await users.confirm(user.id);
      return user;
    },
    vault: createCredentialVault({ db: parts.db, config: parts.config, now: parts.now }),
    fetch: createOutboundFetch({
      policy: parts.config.privateAddresses,
      trustedOrigins: Object.values(parts.config.providerBaseUrls).map((url) =>
        new URL(url).origin
      ),
      resolve: parts.resolve,
      fetch: parts.fetch,
    }),
    resolve: parts.resolve ?? resolveWithDns,
    stopping: parts.stopping ?? new AbortController().signal,
  };
}

/** A runtime, or a function that builds it on first use (so a missing setting is a 500, not a crash). */
export type RuntimeSource = Runtime | (() => Runtime);

let fromEnv: Runtime | undefined;

/** The isolate's runtime for deployed functions, from `Deno.env`. Throws `ConfigError`. */
export function runtimeFromEnv(): Runtime {
  if (fromEnv) return fromEnv;
  const config = loadConfig();
  if (!config.dbUrl) throw new ConfigError("SUPABASE_DB_URL", "is not set (nor DB_POOLER_URL)");
  // When the platform is about to shut the isolate down, open streams end with an event.
  const stopping = new AbortController();
  onShutdown(() => Promise.resolve(stopping.abort()));
  fromEnv = createRuntime({
    config,
    db: connectPostgres(config.dbUrl, {
      max: config.dbPoolMax,
      queryTimeoutMs: config.databaseTimeoutMs,
    }),
    stopping: stopping.signal,
  });
  return fromEnv;
}

export function resolveRuntime(source: RuntimeSource): Runtime {
  return typeof source === "function" ? source() : source;
}
