import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { DATABASE_KIND, DATABASE_URL } from "../support/database.ts";
import { testRuntime } from "../support/runtime.ts";
import { storeCredential } from "../../supabase/functions/_shared/vault/keyWriter.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import { rotateEncryptionKey, RotationError, verifyRotation } from "../../scripts/rotateKey.ts";
import { type IsolatedDatabase, openIsolatedDatabase } from "../security/isolatedDatabase.ts";
import { integrationSuite } from "../support/suite.ts";
import type { Runtime } from "../../supabase/functions/_shared/core/runtime.ts";

const KEY_V1 = `rotation-old-${crypto.randomUUID()}`;
const KEY_V2 = `rotation-new-${crypto.randomUUID()}`;
const KEY_V3 = `rotation-next-${crypto.randomUUID()}`;

let isolated: IsolatedDatabase;
let db: Database;
let oldRuntime: Runtime;
/** What a deployment runs during the rotation: the new key, its version, and the old key. */
let rotatingRuntime: Runtime;
/** After the rotation: the previous key removed. */
let rotatedRuntime: Runtime;
const suite = integrationSuite("keyRotation", {
  async setup(onTeardown) {
    isolated = await openIsolatedDatabase();
    onTeardown(() => isolated.close());
    db = isolated.db;
    oldRuntime = testRuntime(db, { env: { CREDENTIALS_ENCRYPTION_KEY: KEY_V1 } });
    rotatingRuntime = testRuntime(db, {
      env: {
        CREDENTIALS_ENCRYPTION_KEY: KEY_V2,
        CREDENTIALS_ENCRYPTION_KEY_VERSION: "2",
        CREDENTIALS_ENCRYPTION_KEY_PREVIOUS: KEY_V1,
        CREDENTIALS_CACHE_TTL_MS: "1",
      },
    });
    rotatedRuntime = testRuntime(db, {
      env: {
        CREDENTIALS_ENCRYPTION_KEY: KEY_V2,
        CREDENTIALS_ENCRYPTION_KEY_VERSION: "2",
        CREDENTIALS_CACHE_TTL_MS: "1",
      },
    });
  },
});

const USERS = 40;
const expected = new Map<string, { openai: string; custom: string; baseUrl: string }>();

async function seedUsers(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const [user] = await db.query<{ id: string }>(
      "insert into auth.users (id, email) values (gen_random_uuid(), $1) returning id",
      [`rotation-${crypto.randomUUID()}@test.local`],
    );
    const dbUser = { id: user.id, claims: { sub: user.id, role: "authenticated" } };
    const values = {
      openai: `sk-rot-${crypto.randomUUID()}`,
      custom: `custom-${crypto.randomUUID()}`,
      baseUrl: `https://llm-${i}.example.com/v1`,
    };
    await storeCredential(db, dbUser, oldRuntime.config, "openai", "api_key", values.openai);
    await storeCredential(db, dbUser, oldRuntime.config, "custom", "api_key", values.custom);
    await storeCredential(db, dbUser, oldRuntime.config, "custom", "base_url", values.baseUrl);
    expected.set(user.id, values);
  }
}

/** Reads every seeded user's values through `runtime`'s vault; returns how many differ. */
async function mismatches(runtime: ReturnType<typeof testRuntime>): Promise<number> {
  let wrong = 0;
  for (const [id, values] of expected) {
    const openai = await runtime.vault.lookup(id, "openai");
    const custom = await runtime.vault.lookup(id, "custom");
    if (openai.api_key !== values.openai) wrong++;
    if (custom.api_key !== values.custom || custom.base_url !== values.baseUrl) wrong++;
  }
  return wrong;
}

async function snapshot(database: Database): Promise<string> {
  const rows = await database.query<{ id: string; digest: string; key_version: number }>(
    `select id, md5(ciphertext) as digest, key_version from public.user_credentials order by id`,
    [],
  );
  return JSON.stringify(rows);
}

suite.test(
  "rotateEncryptionKey refuses equal, missing or short keys before touching rows",
  async () => {
    await seedUsers(2);
    const before = await snapshot(db);
    const attempts = [
      { newKey: KEY_V1, previousKey: KEY_V1, newVersion: 2 },
      { newKey: "", previousKey: KEY_V1, newVersion: 2 },
      { newKey: KEY_V2, previousKey: "", newVersion: 2 },
      { newKey: "short", previousKey: KEY_V1, newVersion: 2 },
      { newKey: KEY_V2, previousKey: KEY_V1, newVersion: 0 },
    ];
    for (const options of attempts) {
      let error: unknown = null;
      try {
        await rotateEncryptionKey(db, options);
      } catch (caught) {
        error = caught;
      }
      assert(error instanceof RotationError, `expected a refusal for ${JSON.stringify(options)}`);
      assertMatch((error as Error).message, /CREDENTIALS_ENCRYPTION_KEY/);
      assert(!(error as Error).message.includes(KEY_V1), "the message names the passphrase");
    }
    assertEquals(await snapshot(db), before);
  },
);

suite.test(
  `key rotation keeps every credential readable while it runs, resumes, and verifies (${DATABASE_KIND})`,
  async () => {
    await seedUsers(USERS - 2);
    const total = expected.size * 3;
    const controller = new AbortController();
    const progress: number[] = [];

    // Readers keep using the vault while the first run works through its batches.
    let readsDuringRotation = 0;
    let wrongDuringRotation = 0;
    let rotating = true;
    const reader = (async () => {
      while (rotating) {
        wrongDuringRotation += await mismatches(rotatingRuntime);
        readsDuringRotation++;
      }
    })();
    const first = await rotateEncryptionKey(db, {
      newKey: KEY_V2,
      previousKey: KEY_V1,
      newVersion: 2,
      batchSize: 10,
      signal: controller.signal,
      onProgress: (p) => {
        progress.push(p.done);
        assertEquals(p.total, total);
        if (p.done >= 50) controller.abort();
      },
    });
    rotating = false;
    await reader;
    assert(first.interrupted, "the first run should stop when aborted");
    assertEquals(first.rotated, 50);
    assertEquals(first.verified, false);
    assertEquals(progress, [10, 20, 30, 40, 50]);
    assert(readsDuringRotation > 0);
    assertEquals(wrongDuringRotation, 0);

    // Half-rotated: rows on both versions, all readable with new key + previous key.
    const versions = await db.query<{ key_version: number; n: number }>(
      "select key_version, count(*)::int as n from public.user_credentials group by 1 order by 1",
      [],
    );
    assertEquals(versions.map((v) => [v.key_version, Number(v.n)]), [[1, total - 50], [2, 50]]);
    assertEquals(await mismatches(rotatingRuntime), 0);

    // A write during the rotation uses the new key and version.
    const [writer] = [...expected.keys()];
    const fresh = `sk-written-during-rotation-${crypto.randomUUID()}`;
    await storeCredential(
      db,
      { id: writer, claims: { sub: writer, role: "authenticated" } },
      rotatingRuntime.config,
      "openai",
      "api_key",
      fresh,
    );
    expected.get(writer)!.openai = fresh;

    const [{ n: stale }] = await db.query<{ n: number }>(
      "select count(*)::int as n from public.user_credentials where key_version <> 2",
      [],
    );
    const second = await rotateEncryptionKey(db, {
      newKey: KEY_V2,
      previousKey: KEY_V1,
      newVersion: 2,
      batchSize: 25,
    });
    assertEquals(second.interrupted, false);
    assert(Number(stale) >= total - 51 && Number(stale) <= total - 50);
    assertEquals(second.total, Number(stale));
    assertEquals(second.rotated, Number(stale));
    assert(second.verified, JSON.stringify(second.checks));
    // Every encrypted table is checked, including ones added after this test was written.
    assert(second.checks.every((c) => c.undecryptable === 0 && c.stale === 0));
    assertEquals(
      second.checks.find((c) => c.table === "user_credentials"),
      { table: "user_credentials", rows: total, undecryptable: 0, stale: 0 },
    );
    assertEquals(await mismatches(rotatedRuntime), 0);

    // Running it again finds nothing to do and still verifies.
    const third = await rotateEncryptionKey(db, {
      newKey: KEY_V2,
      previousKey: KEY_V1,
      newVersion: 2,
    });
    assertEquals([third.rotated, third.verified], [0, true]);
  },
);

suite.test("key rotation with the wrong previous key fails, says so, and changes no row", async () => {
  const before = await snapshot(db);
  const wrongPrevious = `not-the-old-key-${crypto.randomUUID()}`;
  let error: unknown = null;
  try {
    await rotateEncryptionKey(db, {
      newKey: KEY_V3,
      previousKey: wrongPrevious,
      newVersion: 3,
      batchSize: 7,
    });
  } catch (caught) {
    error = caught;
  }
  assert(error instanceof RotationError, `expected a RotationError, got ${error}`);
  const message = (error as Error).message;
  assertMatch(message, /CREDENTIALS_ENCRYPTION_KEY_PREVIOUS/);
  assertMatch(message, /no row changed/);
  for (const secret of [wrongPrevious, KEY_V3, KEY_V2]) {
    assert(!message.includes(secret), "the message contains a passphrase");
  }
  assertEquals(await snapshot(db), before);
  assertEquals(await mismatches(rotatedRuntime), 0);

  // The check at the end of a rotation catches rows that the new key cannot read.
  const checks = await verifyRotation(db, { newKey: KEY_V3, newVersion: 3 });
  const userRows = checks.find((c) => c.table === "user_credentials")!;
  assert(userRows.rows > 0);
  assertEquals(userRows.undecryptable, userRows.rows);
  assertEquals(userRows.stale, userRows.rows);
});

suite.test(
  "npm run rotate-key exits non-zero on a refusal and 0 after a verified rotation",
  async () => {
    const run = async (env: Record<string, string>) => {
      const output = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          new URL("../../scripts/rotate-key.ts", import.meta.url).pathname,
        ],
        env: { SUPABASE_DB_URL: isolated.url!, ROTATE_BATCH_SIZE: "16", ...env },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(output.stdout) +
        new TextDecoder().decode(output.stderr);
      for (const secret of [KEY_V1, KEY_V2, KEY_V3]) {
        assert(!text.includes(secret), "the CLI printed a passphrase");
      }
      return { code: output.code, text };
    };
    const same = await run({
      CREDENTIALS_ENCRYPTION_KEY: KEY_V2,
      CREDENTIALS_ENCRYPTION_KEY_PREVIOUS: KEY_V2,
      CREDENTIALS_ENCRYPTION_KEY_VERSION: "3",
    });
    assertEquals(same.code, 1);
    assertMatch(same.text, /nothing to rotate/);

    const ok = await run({
      CREDENTIALS_ENCRYPTION_KEY: KEY_V3,
      CREDENTIALS_ENCRYPTION_KEY_PREVIOUS: KEY_V2,
      CREDENTIALS_ENCRYPTION_KEY_VERSION: "3",
    });
    assertEquals(ok.code, 0, ok.text);
    assertMatch(ok.text, /user_credentials: \d+ \/ \d+ rows \(\d+ rows\/s\)/);
    assertMatch(ok.text, /verified/);
    const afterRuntime = testRuntime(db, {
      env: { CREDENTIALS_ENCRYPTION_KEY: KEY_V3, CREDENTIALS_ENCRYPTION_KEY_VERSION: "3" },
    });
    assertEquals(await mismatches(afterRuntime), 0);
  },
  // The CLI needs a Postgres URL; PGlite is in-process, so on PGlite this shows as ignored.
  { ignore: !DATABASE_URL },
);
