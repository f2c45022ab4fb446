/**
 * Applies the local Supabase shim and then every migration in supabase/migrations, in name
 * order, recording each version the way the Supabase CLI does. Already-applied versions are
 * skipped, so it is safe to run at every start. On a database where the platform already owns
 * `auth` (hosted Supabase, or the hosted-like cluster in tests), the shim is not applied: the
 * connecting role does not own those objects there, exactly as on the platform.
 */
import type { Database } from "../supabase/functions/_shared/core/db.ts";

const ROOT = new URL("../", import.meta.url);
const MIGRATIONS_DIR = new URL("supabase/migrations/", ROOT);
const SHIM = new URL("local/supabase_shim.sql", ROOT);

export interface Migration {
  version: string;
  name: string;
  sql: string;
}

/** Reads `YYYYMMDDHHmmss_<name>.sql` files in order. */
export async function readMigrations(): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for await (const entry of Deno.readDir(MIGRATIONS_DIR)) {
    const match = entry.name.match(/^(\d{14})_(.+)\.sql$/);
    if (!entry.isFile || !match) continue;
    const sql = await Deno.readTextFile(new URL(entry.name, MIGRATIONS_DIR));
    migrations.push({ version: match[1], name: match[2], sql });
  }
  return migrations.sort((a, b) => a.version.localeCompare(b.version));
}

/** Brings `db` up to date; returns the versions it applied. */
export async function migrate(db: Database): Promise<string[]> {
  const [{ platform_owns_auth }] = await db.query<{ platform_owns_auth: boolean }>(
    `select exists (
       select from pg_namespace
       where nspname = 'auth' and nspowner <> (select oid from pg_roles where rolname = current_user)
     ) as platform_owns_auth`,
    [],
  );
  if (!platform_owns_auth) await db.query(await Deno.readTextFile(SHIM));
  // The table the Supabase CLI keeps (`supabase db push` creates the same one).
  await db.query(
    `create schema if not exists supabase_migrations;
     create table if not exists supabase_migrations.schema_migrations (
       version text primary key, name text, statements text[]
     )`,
  );
  const applied = new Set(
    (await db.query<{ version: string }>(
      "select version from supabase_migrations.schema_migrations",
      [],
    )).map((row) => row.version),
  );
  const done: string[] = [];
  for (const migration of await readMigrations()) {
    if (applied.has(migration.version)) continue;
    await db.transaction(async (tx) => {
      await tx.query(migration.sql);
      await tx.query(
        "insert into supabase_migrations.schema_migrations (version, name) values ($1, $2)",
        [migration.version, migration.name],
      );
    });
    done.push(migration.version);
  }
  return done;
}
