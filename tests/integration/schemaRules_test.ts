/**
 * Rules every table follows, checked on the migrated database so that a later migration that
 * forgets one fails here: `updated_at` is stamped by the one trigger `private.set_updated_at`
 * (nobody writes it by hand, and a client cannot choose it), every column a row level security
 * policy filters by leads some index, and comments say what a table is.
 */
import { asUser, type Database, type Queryable } from "../../supabase/functions/_shared/core/db.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { newUser } from "../support/runtime.ts";
import { integrationSuite } from "../support/suite.ts";

let db: Database;
const suite = integrationSuite("schemaRules", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
  },
});

/**
 * The columns of each table that the server changes as bookkeeping, not as an update of the row:
 * a re-seal by rotate-key, a key check, a use, the on/off switch, the owner-funded run counters.
 * Writing only these leaves updated_at alone; every other column is in the trigger's `update of`
 * list. A table with no bookkeeping columns has a plain `before update` trigger.
 */
const BOOKKEEPING: Record<string, string[]> = {
  flows: ["daily_execution_count", "daily_execution_reset"],
  owner_name_keys: ["ciphertext", "key_version"],
  shared_keys: ["ciphertext", "key_version"],
  user_credentials: [
    "ciphertext",
    "is_active",
    "key_version",
    "last_used_at",
    "last_validated_at",
    "validation_status",
  ],
};

const OLD = "2000-01-01T00:00:00Z";

async function updatedAt(table: string, where: string, params: unknown[]): Promise<Date> {
  const [row] = await db.query<{ updated_at: Date }>(
    `select updated_at from public.${table} where ${where}`,
    params,
  );
  return new Date(row.updated_at);
}

const recent = (at: Date) => at.getTime() > Date.parse("2001-01-01T00:00:00Z");

async function asServiceRole<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
  return await db.transaction(async (tx) => {
    await tx.query("set local role service_role", []);
    return await work(tx);
  });
}

suite.test(
  `every table with updated_at has the set_updated_at trigger (${DATABASE_KIND})`,
  async () => {
    const tables = await db.query<{ table_name: string }>(
      `select c.relname as table_name
       from pg_class c
       join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'public'
       join pg_attribute u on u.attrelid = c.oid and u.attname = 'updated_at' and not u.attisdropped
      where c.relkind = 'r'
      order by 1`,
      [],
    );
    const triggers = await db.query<
      { table_name: string; row_before_update: boolean; columns: string[] | null }
    >(
      `select c.relname as table_name,
            t.tgtype & 19 = 19 as row_before_update,
            (select array_agg(a.attname::text order by a.attname)
               from pg_attribute a
              where a.attrelid = c.oid and a.attnum = any (t.tgattr::int2[])) as columns
       from pg_trigger t
       join pg_class c on c.oid = t.tgrelid
       join pg_proc p on p.oid = t.tgfoid
       join pg_namespace pn on pn.oid = p.pronamespace
      where not t.tgisinternal and pn.nspname = 'private' and p.proname = 'set_updated_at'`,
      [],
    );
    assert(tables.length >= 8, `too few tables with updated_at: ${JSON.stringify(tables)}`);
    const allColumns = await db.query<{ table_name: string; column_name: string }>(
      `select c.relname as table_name, a.attname as column_name
       from pg_attribute a join pg_class c on c.oid = a.attrelid
       join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'public'
      where c.relkind = 'r' and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''`,
      [],
    );
    for (const { table_name } of tables) {
      const mine = triggers.filter((t) => t.table_name === table_name);
      assertEquals(mine.length, 1, `${table_name}: one set_updated_at trigger`);
      const [row] = mine;
      assert(row.row_before_update, `${table_name}: the trigger is before update, for each row`);
      const bookkeeping = BOOKKEEPING[table_name];
      if (!bookkeeping) {
        assertEquals(row.columns, null, `${table_name}: a plain before update trigger`);
        continue;
      }
      const expected = allColumns.filter((c) => c.table_name === table_name)
        .map((c) => c.column_name).filter((c) => !bookkeeping.includes(c)).sort();
      assertEquals(
        [...(row.columns ?? [])].sort(),
        expected,
        `${table_name}: the trigger's update-of list is every column but the bookkeeping ones ` +
          "(a new column belongs in one or the other)",
      );
    }
  },
);

suite.test("no SQL function writes updated_at by hand", async () => {
  const rows = await db.query<{ name: string }>(
    `select p.proname as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('public', 'private') and p.prosrc ~* 'updated_at\\s*=\\s*now\\(\\)'`,
    [],
  );
  assertEquals(rows.map((r) => r.name), []);
});

suite.test(
  "an update by a client role stamps updated_at, and the client cannot choose it",
  async () => {
    const alice = await newUser(db);
    const aliceDb = { id: alice.id, claims: { sub: alice.id, role: "authenticated" } };
    const [conversation] = await db.query<{ id: string }>(
      "insert into public.conversations (user_id, title, updated_at) values ($1::uuid, 'a', $2) returning id",
      [alice.id, OLD],
    );
    await asUser(
      db,
      aliceDb,
      (tx) =>
        tx.query("update public.conversations set title = 'b' where id = $1::uuid", [
          conversation.id,
        ]),
    );
    const renamed = await updatedAt("conversations", "id = $1::uuid", [conversation.id]);
    assert(recent(renamed), `a rename stamps updated_at, got ${renamed.toISOString()}`);

    await asUser(
      db,
      aliceDb,
      (tx) =>
        tx.query("update public.conversations set updated_at = $2 where id = $1::uuid", [
          conversation.id,
          OLD,
        ]),
    );
    const chosen = await updatedAt("conversations", "id = $1::uuid", [conversation.id]);
    assert(recent(chosen), `a client's own updated_at is overwritten, got ${chosen.toISOString()}`);

    // A sealed table: the update recomputes the row's generated secret_binding as the client.
    const account = `stamp-${crypto.randomUUID().slice(0, 8)}`;
    await db.query(
      `insert into public.shared_keys
         (account_name, display_name, provider, ciphertext, last_four, owner_id, updated_at)
       values ($1, 'k', 'openai', '\\x00'::bytea, '0000', $2::uuid, $3)`,
      [account, alice.id, OLD],
    );
    await asUser(
      db,
      aliceDb,
      (tx) =>
        tx.query("update public.shared_keys set display_name = 'k2' where account_name = $1", [
          account,
        ]),
    );
    assert(
      recent(await updatedAt("shared_keys", "account_name = $1", [account])),
      "an owner's edit of a shared key stamps updated_at",
    );
  },
);

suite.test(
  "an update by service_role stamps updated_at; bookkeeping leaves it alone",
  async () => {
    const owner = await newUser(db);
    const [flow] = await db.query<{ id: string }>(
      "insert into public.flows (owner_id, name, updated_at) values ($1::uuid, 'f', $2) returning id",
      [owner.id, OLD],
    );
    await asServiceRole((tx) =>
      tx.query(
        "update public.flows set daily_execution_count = daily_execution_count + 1 where id = $1::uuid",
        [flow.id],
      )
    );
    assertEquals(
      (await updatedAt("flows", "id = $1::uuid", [flow.id])).toISOString(),
      new Date(OLD).toISOString(),
      "counting a run is not an update of the flow",
    );
    await asServiceRole((tx) =>
      tx.query("update public.flows set name = 'g' where id = $1::uuid", [flow.id])
    );
    assert(recent(await updatedAt("flows", "id = $1::uuid", [flow.id])), "a rename stamps it");

    await db.query(
      `insert into public.user_credentials (user_id, service, credential_key, ciphertext, last_four, updated_at)
     values ($1::uuid, 'openai', 'api_key', '\\x00'::bytea, '0000', $2)`,
      [owner.id, OLD],
    );
    const keyUpdatedAt = () =>
      updatedAt("user_credentials", "user_id = $1::uuid and service = 'openai'", [owner.id]);
    await asServiceRole((tx) =>
      tx.query(
        `update public.user_credentials set last_used_at = now(), validation_status = 'valid'
          where user_id = $1::uuid`,
        [owner.id],
      )
    );
    assertEquals(
      (await keyUpdatedAt()).toISOString(),
      new Date(OLD).toISOString(),
      "a use or a key check is not an update of the key",
    );
    await asServiceRole((tx) =>
      tx.query("update public.user_credentials set last_four = '1111' where user_id = $1::uuid", [
        owner.id,
      ])
    );
    assert(recent(await keyUpdatedAt()), "a new value stamps it");
  },
);

suite.test("every column a row level security policy filters by leads an index", async () => {
  const columns = await db.query<{ policy: string; column_name: string; indexed: boolean }>(
    `select distinct p.polname as policy,
            t.relname || '.' || a.attname as column_name,
            exists (select 1 from pg_index i
                     where i.indrelid = t.oid and i.indkey[0] = d.refobjsubid) as indexed
       from pg_policy p
       join pg_depend d
         on d.classid = 'pg_policy'::regclass and d.objid = p.oid
        and d.refclassid = 'pg_class'::regclass and d.refobjsubid > 0
       join pg_class t on t.oid = d.refobjid
       join pg_attribute a on a.attrelid = t.oid and a.attnum = d.refobjsubid
      order by 1, 2`,
    [],
  );
  const policies = await db.query<{ n: number }>(
    "select count(*)::integer as n from pg_policy",
    [],
  );
  // Each policy filters by at least one column; the catalog records every column it reads.
  assert(
    new Set(columns.map((c) => c.policy)).size === policies[0].n,
    `a policy reads no recorded column: ${JSON.stringify(columns)}`,
  );
  assertEquals(
    columns.filter((c) => !c.indexed).map((c) => `${c.column_name} (${c.policy})`),
    [],
    "add an index whose leading column this is",
  );
});

suite.test(
  "no comment on a table or column names a design seed instead of saying what it is",
  async () => {
    const rows = await db.query<{ name: string }>(
      `select c.relname || coalesce('.' || a.attname, '') as name
       from pg_description d
       join pg_class c on c.oid = d.objoid and d.classoid = 'pg_class'::regclass
       join pg_namespace n on n.oid = c.relnamespace and n.nspname in ('public', 'private')
       left join pg_attribute a on a.attrelid = c.oid and a.attnum = d.objsubid and d.objsubid > 0
      where d.description ~* 'seed\\s*0'`,
      [],
    );
    assertEquals(rows.map((r) => r.name), []);
  },
);
