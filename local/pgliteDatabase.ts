/**
 * Embedded PGlite (with pgcrypto) behind the functions' `Database` interface: the in-process
 * adapter the local stack and tests use when no real Postgres is given. One PGlite instance is
 * one connection, so statements queue; that is the embedded database's nature, not a pool limit.
 */
import { PGlite, type Transaction } from "@electric-sql/pglite";
import { pgcrypto } from "@electric-sql/pglite/contrib/pgcrypto";
import type { Database, Queryable } from "../supabase/functions/_shared/core/db.ts";

async function run<T>(client: PGlite | Transaction, text: string, params?: readonly unknown[]) {
  if (!params || params.length === 0) {
    // Parameterless text may hold several statements (migrations); the last result wins.
    const results = await client.exec(text);
    return (results.at(-1)?.rows ?? []) as T[];
  }
  return (await client.query<T>(text, params as unknown[])).rows;
}

/** Opens PGlite in `dataDir` (a folder, or undefined for memory) with pgcrypto loaded. */
export async function openPglite(dataDir?: string): Promise<Database & { pglite: PGlite }> {
  const pglite = await PGlite.create({ dataDir, extensions: { pgcrypto } });
  return {
    pglite,
    query: (text, params) => run(pglite, text, params),
    transaction: (work) =>
      pglite.transaction((tx) =>
        work({ query: (text, params) => run(tx, text, params) } as Queryable)
      ),
    close: () => pglite.close(),
  };
}
