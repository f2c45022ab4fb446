/**
 * The test database: embedded PGlite by default, or the real Postgres named by DATABASE_URL.
 * Either way the shim and migrations are applied, and tests isolate themselves by creating
 * their own users rather than truncating tables.
 */
import { connectPostgres, type Database } from "../../supabase/functions/_shared/core/db.ts";
import { migrate } from "../../local/migrate.ts";
import { openPglite } from "../../local/pgliteDatabase.ts";

export const DATABASE_URL = Deno.env.get("DATABASE_URL")?.trim() || null;
export const DATABASE_KIND = DATABASE_URL ? "postgres" : "pglite";

/** A migrated database for one test file. Close it in the last step. */
export async function openTestDatabase(): Promise<Database> {
  const db = DATABASE_URL ? connectPostgres(DATABASE_URL, { max: 10 }) : await openPglite();
  await migrate(db);
  return db;
}

/** Creates a user in auth.users and returns its id. */
export async function createUser(db: Database, email = `${crypto.randomUUID()}@test.local`) {
  const [row] = await db.query<{ id: string; email: string }>(
    "insert into auth.users (id, email) values (gen_random_uuid(), $1) returning id, email",
    [email],
  );
  return row;
}
