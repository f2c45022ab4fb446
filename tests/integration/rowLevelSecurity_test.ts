/**
 * Direct SQL as the `authenticated` role, the way PostgREST would run a signed-in user's query:
 * RLS and column grants, not application code, must keep users apart.
 */
import { asUser, type Database } from "../../supabase/functions/_shared/core/db.ts";
import { storeCredential } from "../../supabase/functions/_shared/vault/keyWriter.ts";
import { assert, assertEquals, rejects } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { newUser, testConfig, type TestUser } from "../support/runtime.ts";
import { integrationSuite } from "../support/suite.ts";

type DbUser = { id: string; claims: { sub: string; role: string } };
let db: Database;
let alice: TestUser;
let bob: TestUser;
let aliceDb: DbUser;
let bobDb: DbUser;
const config = testConfig();
const suite = integrationSuite("rowLevelSecurity", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
    alice = await newUser(db);
    bob = await newUser(db);
    aliceDb = { id: alice.id, claims: { sub: alice.id, role: "authenticated" } };
    bobDb = { id: bob.id, claims: { sub: bob.id, role: "authenticated" } };
    await storeCredential(db, aliceDb, config, "openai", "api_key", "sk-alice-rls-0000001");
  },
});

const permissionDenied = (error: unknown) => /permission denied/i.test((error as Error).message);

suite.test(`user_credentials hides Alice's row from Bob's SQL (${DATABASE_KIND})`, async () => {
  const rows = await asUser(
    db,
    bobDb,
    (tx) => tx.query("select id from public.user_credentials where user_id = $1::uuid", [alice.id]),
  );
  assertEquals(rows.length, 0);
});

suite.test("user_credentials lets Bob neither update nor delete Alice's row", async () => {
  // No client role updates credential rows at all; writes go through the server.
  await rejects(
    asUser(db, bobDb, (tx) =>
      tx.query(
        "update public.user_credentials set last_four = 'evil' where user_id = $1::uuid returning id",
        [alice.id],
      )),
    permissionDenied,
  );
  const deleted = await asUser(
    db,
    bobDb,
    (tx) =>
      tx.query("delete from public.user_credentials where user_id = $1::uuid returning id", [
        alice.id,
      ]),
  );
  assertEquals(deleted.length, 0);
  const [row] = await db.query<{ last_four: string }>(
    "select last_four from public.user_credentials where user_id = $1::uuid",
    [alice.id],
  );
  assertEquals(row.last_four, "0001");
});

suite.test("user_credentials refuses a row Bob inserts in Alice's name", async () => {
  await rejects(
    asUser(db, bobDb, (tx) =>
      tx.query(
        `insert into public.user_credentials (user_id, service, credential_key, ciphertext, last_four)
         values ($1::uuid, 'gemini', 'api_key', '\\x00'::bytea, 'xxxx')`,
        [alice.id],
      )),
    /row-level security|permission denied/i,
  );
});

suite.test(
  "user_credentials never lets authenticated select the ciphertext, even of its own row",
  async () => {
    await rejects(
      asUser(db, aliceDb, (tx) => tx.query("select ciphertext from public.user_credentials", [])),
      permissionDenied,
    );
    await rejects(
      asUser(db, aliceDb, (tx) => tx.query("select * from public.user_credentials", [])),
      permissionDenied,
    );
    const own = await asUser(
      db,
      aliceDb,
      (tx) => tx.query<{ last_four: string }>("select last_four from public.user_credentials", []),
    );
    assertEquals(
      own.map((r) => r.last_four),
      ["0001"],
    );
  },
);

suite.test("user_credentials keeps anon out entirely", async () => {
  await rejects(
    db.transaction(async (tx) => {
      await tx.query("select set_config('role', 'anon', true)", [] as string[]);
      await tx.query("select last_four from public.user_credentials", []);
    }),
    permissionDenied,
  );
});

suite.test("credentials_for cannot be called by authenticated", async () => {
  await rejects(
    asUser(
      db,
      aliceDb,
      (tx) =>
        tx.query(
          "select * from private.credentials_for($1::uuid, 'openai', '{}'::jsonb, false)",
          [
            alice.id,
          ],
        ),
    ),
    permissionDenied,
  );
});

suite.test("user_credentials stores ciphertext that only the right passphrase opens", async () => {
  const [row] = await db.query<{ text: string }>(
    "select encode(ciphertext, 'escape') as text from public.user_credentials where user_id = $1::uuid",
    [alice.id],
  );
  assert(!row.text.includes("sk-alice-rls"));
  const wrong = JSON.stringify({ version: 1, current: "a-wrong-passphrase-entirely" });
  const [opened] = await db.query<{ secret: string | null }>(
    "select secret from private.credentials_for($1::uuid, 'openai', $2::text::jsonb, false)",
    [alice.id, wrong],
  );
  assertEquals(opened.secret, null);
});
