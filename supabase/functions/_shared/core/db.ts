/**
 * The database seam. Deployed functions use postgres.js over `SUPABASE_DB_URL`; the local stack
 * and tests may hand in embedded PGlite through the same interface.
 */
import postgres from "postgres";
import { AppError } from "./errors.ts";

export type Row = Record<string, unknown>;

export interface Queryable {
  /** Runs one statement with bind parameters. Secrets go in `params`, never in `text`. */
  query<T = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface Database extends Queryable {
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** The deadline this database puts on each query, when it has one (ms). */
  readonly queryTimeoutMs?: number;
}

/** The caller as PostgREST would see them: a verified user id and the JWT claims. */
export interface DbUser {
  id: string;
  claims: Record<string, unknown>;
}

/**
 * Runs `work` in a transaction as the `authenticated` role with the caller's claims, the way
 * PostgREST does, so row level security decides what the statements can touch. The first
 * statement also confirms the user still exists (a token for a deleted user is refused) and
 * bounds the rest with `statement_timeout`, so the server itself stops a statement that runs
 * past the database's query deadline.
 */
export async function asUser<T>(
  db: Database,
  user: DbUser,
  work: (tx: Queryable) => Promise<T>,
): Promise<T> {
  return await db.transaction(async (tx) => {
    const [session] = await tx.query<{ user_exists: boolean }>(
      `select exists (select 1 from auth.users where id = $1::uuid) as user_exists,
              set_config('request.jwt.claims', $2, true),
              set_config('role', 'authenticated', true),
              set_config('statement_timeout', $3, true)`,
      [user.id, JSON.stringify(user.claims), String(db.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS)],
    );
    if (!session?.user_exists) throw new AppError("UNAUTHORIZED");
    return await work(tx);
  });
}

/**
 * Runs `work` in a transaction as the server on behalf of a verified user, for the `private`
 * definer functions that do the writes no client role may do. Like `asUser`, the first statement
 * confirms the user still exists; unlike it, the role stays the server's.
 */
export async function forUser<T>(
  db: Database,
  user: DbUser,
  work: (tx: Queryable) => Promise<T>,
): Promise<T> {
  return await db.transaction(async (tx) => {
    const [session] = await tx.query<{ user_exists: boolean }>(
      "select exists (select 1 from auth.users where id = $1::uuid) as user_exists",
      [user.id],
    );
    if (!session?.user_exists) throw new AppError("UNAUTHORIZED");
    return await work(tx);
  });
}

export interface PostgresOptions {
  /** Pool size per isolate. */
  max?: number;
  connectTimeoutSeconds?: number;
  /** Longest a query or a transaction may take before it fails as unavailable (ms). */
  queryTimeoutMs?: number;
}

/** The query deadline when none is given: requests answer 503 within about 5 s of an outage. */
export const DEFAULT_QUERY_TIMEOUT_MS = 5_000;

/** postgres.js and socket error codes of a connection that broke or never came up. */
const CONNECTION_ERROR_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
/** SQLSTATEs of a server that cannot serve now: shutting down, too many connections, timed out. */
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300", "57014", "25P03"]);

/** True for an error that says the database is unreachable or timed out, not that SQL failed. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  return CONNECTION_ERROR_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) ||
    code.startsWith("08");
}

class QueryDeadline extends Error {
  constructor(ms: number) {
    super(`the database did not answer within ${ms} ms`);
    this.name = "QueryDeadline";
  }
}

/**
 * A postgres.js pool. `prepare: false` keeps it compatible with Supabase's transaction pooler.
 *
 * Every query and transaction runs under `queryTimeoutMs`: past it, or when the connection
 * breaks, it fails with 503 `CREDENTIALS_UNAVAILABLE` (one code for "the database is not
 * answering", whatever the function). A deadline also retires the pool: its connections may be
 * hung mid-protocol, which postgres.js cannot tell from slow, so new work gets fresh connections
 * and the old pool is closed in the background. Transactions also set `statement_timeout` (see
 * `asUser`); it is not sent as a startup parameter, which a transaction pooler may refuse.
 */
export function connectPostgres(url: string, options: PostgresOptions = {}): Database {
  const queryTimeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  const open = () =>
    postgres(url, {
      prepare: false,
      max: options.max ?? 5,
      idle_timeout: 30,
      connect_timeout: options.connectTimeoutSeconds ?? 5,
      onnotice: () => {},
    });
  let sql = open();
  let closed = false;

  function retire(pool: postgres.Sql): void {
    if (sql !== pool || closed) return;
    sql = open();
    pool.end({ timeout: 1 }).catch(() => {});
  }

  async function bounded<T>(work: (pool: postgres.Sql) => Promise<T>): Promise<T> {
    const pool = sql;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QueryDeadline(queryTimeoutMs)), queryTimeoutMs);
    });
    try {
      return await Promise.race([work(pool), deadline]);
    } catch (error) {
      if (error instanceof QueryDeadline) retire(pool);
      if (error instanceof QueryDeadline || isDatabaseUnavailable(error)) {
        throw new AppError("CREDENTIALS_UNAVAILABLE", { cause: error });
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  const run = <T>(
    client: postgres.Sql | postgres.TransactionSql,
    text: string,
    params?: readonly unknown[],
  ) =>
    client.unsafe(text, (params ?? []) as postgres.ParameterOrJSON<never>[]) as unknown as Promise<
      T[]
    >;
  return {
    queryTimeoutMs,
    query: (text, params) => bounded((pool) => run(pool, text, params)),
    transaction: (work) =>
      bounded((pool) =>
        pool.begin((tx) => work({ query: (text, params) => run(tx, text, params) }))
      ) as Promise<never>,
    close: () => {
      closed = true;
      return sql.end({ timeout: 5 });
    },
  };
}
