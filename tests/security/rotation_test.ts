/**
 * Master-key rotation at scale: 10,000 credentials with SECURITY_FULL=1 (500 otherwise) on a
 * database of their own, re-encrypted while a reader keeps looking keys up through the vault.
 * Counts every credential that is not readable, with its original value, afterwards.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND } from "../support/database.ts";
import { dbTest, testRuntime } from "../support/runtime.ts";
import { rotateEncryptionKey } from "../../scripts/rotateKey.ts";
import { recordRotation } from "./figures.ts";
import { openIsolatedDatabase } from "./isolatedDatabase.ts";
import { FULL } from "./securityStack.ts";

const ROWS = FULL ? 10_000 : 500;
const isolated = await openIsolatedDatabase();
const db = isolated.db;
const OLD_KEY = `rotation-scale-old-${crypto.randomUUID()}`;
const NEW_KEY = `rotation-scale-new-${crypto.randomUUID()}`;

dbTest(
  `key rotation re-encrypts ${ROWS} credentials with none lost (${DATABASE_KIND})`,
  async () => {
    // Two credentials per user, each value derived from the user id so it can be checked after.
    await db.query(
      `insert into auth.users (email)
     select 'rotation-scale-' || n || '@test.local' from generate_series(1, $1::int) as n`,
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
        and extensions.pgp_sym_decrypt(c.ciphertext, $1) =
            case c.service when 'openai' then 'sk-bulk-' else 'pplx-bulk-' end || u.id::text`,
      [NEW_KEY],
    );
    const lost = ROWS - Number(intact);
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
    assertEquals(report.rotated, ROWS);
    assertEquals(lost, 0);
    assertEquals(unreadable, 0);
    assert(reads > 0);
  },
);

dbTest("key rotation at scale closes its database", async () => {
  await isolated.close();
});
