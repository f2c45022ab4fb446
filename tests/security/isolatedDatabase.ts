/**
 * A database of its own for tests that must see every row of a table (key rotation re-encrypts
 * the whole table): a fresh in-memory PGlite, or a new database on the server in DATABASE_URL
 * that is dropped again on close.
 */
import { connectPostgres, type Database } from "../../supabase/functions/_shared/core/db.ts";
import { migrate } from "../../local/migrate.ts";
import { openPglite } from "../../local/pgliteDatabase.ts";
import { DATABASE_URL } from "../support/database.ts";

export interface IsolatedDatabase {
  db: Database;
  /** The connection string of the new database; null on PGlite. */
  url: string | null;
  close(): Promise<void>;
}

/** Opens and migrates a database no other test file writes to. */
export async function openIsolatedDatabase(): Promise<IsolatedDatabase> {
  if (!DATABASE_URL) {
    const db = await openPglite();
    await migrate(db);
    return { db, url: null, close: () => db.close() };
  }
  const name = `byok_isolated_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = connectPostgres(DATABASE_URL, { max: 1 });
  await admin.query(`create database ${name}`, []);
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  const db = connectPostgres(url.href, { max: 10 });
  await migrate(db);
  return {
    db,
    url: url.href,
    async close() {
      await db.close();
      await admin.query(`drop database if exists ${name} with (force)`, []);
      await admin.close();
    },
  };
}
