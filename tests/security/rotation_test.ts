/**
 * Master-key rotation at scale: 10,000 credentials with SECURITY_FULL=1 (500 otherwise) on a
 * database of their own, re-encrypted while a reader keeps looking keys up through the vault.
 * Counts every credential that is not readable, with its original value, afterwards.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND } from "../support/database.ts";
import { testRuntime } from "../support/runtime.ts";
import { rotateEncryptionKey } from "../../scripts/rotateKey.ts";
import { recordRotation } from "./figures.ts";
import { type IsolatedDatabase, openIsolatedDatabase } from "./isolatedDatabase.ts";
import { FULL } from "./securityStack.ts";
import { integrationSuite } from "../support/suite.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";

const ROWS = FULL ? 10_000 : 500;
let isolated: IsolatedDatabase;
let db: Database;
const suite = integrationSuite("security rotation", {
  async setup(onTeardown) {
    isolated = await openIsolatedDatabase();
    onTeardown(() => isolated.close());
    db = isolated.db;
  },
});
const OLD_KEY = `rotation-scale-old-${crypto.randomUUID()}`;
const NEW_KEY = `rotation-scale-new-${crypto.randomUUID()}`;
/** Opens only rows re-sealed on version 2 with the new key. */
const NEW_KEYRING = JSON.stringify({ version: 2, current: NEW_KEY, previous: null });

suite.test(
  `key rotation re-encrypts ${ROWS} credentials with none lost (${DATABASE_KIND})`,
  async () => {
    // Two credentials per user, each value derived from the user id so it can be checked after.
    await db.query(
      `insert into auth.users (id, email)
     select gen_random_uuid(), 'rotation-scale-' || n || '@test.local' from generate_series(1, $1::int) as n`,
      [ROWS / 2],
    );
    await db.query(
      `insert into public.user_credentials (user_id, service, ciphertext, last_four, key_version)
     select u.id, s.service,
            extensions.pgp_sym_encrypt(s.prefix || u.id::text, $1, 'cipher-algo=aes256'),
            right(u.id::text, 4), 1
       from auth.users as u
      cross join (values ('openai', 'sk-bulk-'), ('perplexity', 'pplx-bulk-')) as s (service, prefix)
      where u.email like 'rotation-scale-%'`,
      [OLD_KEY],
    );
    // Shared and owner-name keys are rotated too, when those tables exist.
    const tables = new Set(
      (await db.query<{ table_name: string }>(
        "select table_name from information_schema.tables where table_schema = 'public'",
        [],
      )).map((r) => r.table_name),
    );
    let otherRows = 0;
    if (tables.has("shared_keys")) {
      otherRows += (await db.query(
        `insert into public.shared_keys (account_name, display_name, provider, ciphertext, last_four, owner_id)
       select 'rot-' || n, 'Rotation ' || n, 'openai',
              extensions.pgp_sym_encrypt('sk-shared-' || n, $1, 'cipher-algo=aes256'), 'xxxx',
              (select id from auth.users where email like 'rotation-scale-%' limit 1)
         from generate_series(1, 25) as n returning 1`,
        [OLD_KEY],
      )).length;
    }
    if (tables.has("owner_name_keys")) {
      otherRows += (await db.query(
        `insert into public.owner_name_keys (owner_name, provider, ciphertext, last_four)
       select 'owner-' || n, 'openai', extensions.pgp_sym_encrypt('sk-owner-' || n, $1, 'cipher-algo=aes256'), 'xxxx'
         from generate_series(1, 25) as n returning 1`,
        [OLD_KEY],
      )).length;
    }
    const sample = await db.query<{ id: string }>(
      "select id from auth.users where email like 'rotation-scale-%' order by random() limit 20",
      [],
    );
    const rotating = testRuntime(db, {
      env: {
        CREDENTIALS_ENCRYPTION_KEY: NEW_KEY,
        CREDENTIALS_ENCRYPTION_KEY_VERSION: "2",
        CREDENTIALS_ENCRYPTION_KEY_PREVIOUS: OLD_KEY,
        CREDENTIALS_CACHE_TTL_MS: "1",
      },
    });

    let running = true;
    let reads = 0;
    let unreadable = 0;
    const reader = (async () => {
      while (running) {
        for (const { id } of sample) {
          const stored = await rotating.vault.lookup(id, "openai");
          if (stored.api_key !== `sk-bulk-${id}`) unreadable++;
          reads++;
        }
      }
    })();
    const report = await rotateEncryptionKey(db, {
      newKey: NEW_KEY,
      previousKey: OLD_KEY,
      newVersion: 2,
      batchSize: 500,
    });
    running = false;
    await reader;

    const [{ intact }] = await db.query<{ intact: number }>(
      `select count(*)::int as intact from public.user_credentials as c
       join auth.users as u on u.id = c.user_id
      where u.email like 'rotation-scale-%' and c.key_version = 2
        and private.open_secret(c.ciphertext, c.secret_binding, c.key_version, $1::text::jsonb) =
            case c.service when 'openai' then 'sk-bulk-' else 'pplx-bulk-' end || u.id::text`,
      [NEW_KEYRING],
    );
    let otherIntact = 0;
    if (tables.has("shared_keys")) {
      otherIntact += Number(
        (await db.query<{ n: number }>(
          `select count(*)::int as n from public.shared_keys
        where account_name like 'rot-%' and key_version = 2
          and private.open_secret(ciphertext, secret_binding, key_version, $1::text::jsonb)
              = 'sk-shared-' || substr(account_name, 5)`,
          [NEW_KEYRING],
        ))[0].n,
      );
    }
    if (tables.has("owner_name_keys")) {
      otherIntact += Number(
        (await db.query<{ n: number }>(
          `select count(*)::int as n from public.owner_name_keys
        where owner_name like 'owner-%' and key_version = 2
          and private.open_secret(ciphertext, secret_binding, key_version, $1::text::jsonb)
              = 'sk-owner-' || substr(owner_name, 7)`,
          [NEW_KEYRING],
        ))[0].n,
      );
    }
    const lost = ROWS + otherRows - Number(intact) - otherIntact;
    recordRotation({
      rows: report.rotated,
      lost,
      rowsPerSecond: report.rowsPerSecond,
      database: DATABASE_KIND,
    });
    console.log(
      `  rotated ${report.rotated} rows in ${report.seconds.toFixed(2)} s ` +
        `(${Math.round(report.rowsPerSecond)} rows/s); ${reads} vault reads during the rotation`,
    );
    assert(report.verified, JSON.stringify(report.checks));
    assertEquals(report.rotated, ROWS + otherRows);
    assertEquals(lost, 0);
    assertEquals(unreadable, 0);
    assert(reads > 0);
  },
);
