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
}

/** The caller as PostgREST would see them: a verified user id and the JWT claims. */
export interface DbUser {
  id: string;
  claims: Record<string, unknown>;
}

/**
 * Runs `work` in a transaction as the `authenticated` role with the caller's claims, the way
 * PostgREST does, so row level security decides what the statements can touch. The first
 * statement also confirms the user still exists; a token for a deleted user is refused.
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
              set_config('role', 'authenticated', true)`,
      [user.id, JSON.stringify(user.claims)],
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
}

/** A postgres.js pool. `prepare: false` keeps it compatible with Supabase's transaction pooler. */
export function connectPostgres(url: string, options: PostgresOptions = {}): Database {
  const sql = postgres(url, {
    prepare: false,
    max: options.max ?? 5,
    idle_timeout: 30,
    connect_timeout: options.connectTimeoutSeconds ?? 5,
    onnotice: () => {},
  });
  const run = <T>(
    client: postgres.Sql | postgres.TransactionSql,
    text: string,
    params?: readonly unknown[],
  ) =>
    client.unsafe(text, (params ?? []) as postgres.ParameterOrJSON<never>[]) as unknown as Promise<
      T[]
    >;
  return {
    query: (text, params) => run(sql, text, params),
    transaction: (work) =>
      sql.begin((tx) => work({ query: (text, params) => run(tx, text, params) })) as Promise<never>,
    close: () => sql.end({ timeout: 5 }),
  };
}
