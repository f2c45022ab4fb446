/**
 * SQL lists the providers in one place, `private.providers`, and it matches
 * `_shared/contract/providers.ts` SERVICES. Checked on the migrated database (PGlite, or
 * DATABASE_URL), so it catches what a later migration does, not only what its text looks like:
 * a provider added in TypeScript but not in SQL, a new `provider` column that references nothing,
 * and a check constraint or function that lists providers by hand again.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { openTestDatabase } from "../support/database.ts";
import { integrationSuite } from "../support/suite.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import { SERVICES } from "../../supabase/functions/_shared/contract/providers.ts";

let db: Database;
const suite = integrationSuite("providerListSql", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
  },
});

/** A column is taken to carry a provider when its name ends in `service` or `provider`. */
const PROVIDER_COLUMN = /(^|_)(service|provider)$/;

/** Columns so named that are not providers, and why. */
const NOT_PROVIDER_COLUMNS: Record<string, string> = {
  "credential_events.service": "audit rows also name 'flow' (a shared flow's events)",
};

/** How many of the SERVICES a piece of SQL names as string literals. */
function providersNamedIn(sql: string): string[] {
  return SERVICES.filter((service) => sql.includes(`'${service}'`));
}

suite.test("private.providers lists exactly providers.ts SERVICES", async () => {
  const rows = await db.query<{ name: string }>(
    "select name from private.providers order by name",
    [],
  );
  assertEquals(rows.map((r) => r.name), [...SERVICES].sort());
});

suite.test("every column that carries a provider references private.providers", async () => {
  const columns = await db.query<{ table_name: string; column_name: string; references: boolean }>(
    `select c.relname as table_name, a.attname as column_name,
            exists (
              select 1 from pg_constraint k
               where k.contype = 'f' and k.conrelid = c.oid and k.conkey = array[a.attnum]
                 and k.confrelid = 'private.providers'::regclass
            ) as references
       from pg_attribute a
       join pg_class c on c.oid = a.attrelid
       join pg_namespace n on n.oid = c.relnamespace
      where n.nspname in ('public', 'private') and c.relkind in ('r', 'p')
        and a.attnum > 0 and not a.attisdropped and c.relname <> 'providers'`,
    [],
  );
  const carrying = columns.filter((c) =>
    PROVIDER_COLUMN.test(c.column_name) &&
    !(`${c.table_name}.${c.column_name}` in NOT_PROVIDER_COLUMNS)
  );
  assert(carrying.length >= 7, `too few provider columns found: ${JSON.stringify(carrying)}`);
  const unreferenced = carrying.filter((c) => !c.references)
    .map((c) => `${c.table_name}.${c.column_name}`);
  assertEquals(
    unreferenced,
    [],
    "give these a foreign key to private.providers (name) (or, if they are not providers, " +
      "list them in NOT_PROVIDER_COLUMNS with the reason)",
  );
});

suite.test("no check constraint, domain or function lists providers by hand", async () => {
  const constraints = await db.query<{ name: string; definition: string }>(
    `select coalesce(c.relname, t.typname) || '.' || k.conname as name,
            pg_get_constraintdef(k.oid) as definition
       from pg_constraint k
       left join pg_class c on c.oid = k.conrelid
       left join pg_type t on t.oid = k.contypid
       join pg_namespace n on n.oid = k.connamespace
      where k.contype = 'c' and n.nspname in ('public', 'private')`,
    [],
  );
  const functions = await db.query<{ name: string; definition: string }>(
    `select p.proname as name, p.prosrc as definition
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('public', 'private')`,
    [],
  );
  assert(constraints.length > 0 && functions.length > 0, "nothing to check");
  const handLists = [...constraints, ...functions]
    .filter((object) => providersNamedIn(object.definition).length >= 2)
    .map((object) => object.name);
  assertEquals(
    handLists,
    [],
    "reference private.providers (a foreign key, or a join) instead of listing providers",
  );
});
