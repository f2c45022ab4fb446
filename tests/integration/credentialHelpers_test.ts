/**
 * The per-user key helpers (getOpenAIApiKey and kin) and the vault under failure: no fallback to
 * the environment, a bounded lookup when the database is gone, and the documented cache staleness
 * bound.
 */
import { createHandler } from "../../supabase/functions/credentials-manager/handler.ts";
import {
  getGeminiApiKey,
  getManusApiKey,
  getOpenAIApiKey,
} from "../../supabase/functions/_shared/vault/keyGetters.ts";
import { storeCredential } from "../../supabase/functions/_shared/vault/keyWriter.ts";
import { connectPostgres, type Database } from "../../supabase/functions/_shared/core/db.ts";
import { createRuntime } from "../../supabase/functions/_shared/core/runtime.ts";
import { MAX_CREDENTIAL_CACHE_TTL_MS } from "../../supabase/functions/_shared/core/config.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { captureLogs, jsonRequest, newUser, testConfig, testRuntime } from "../support/runtime.ts";
import { integrationSuite } from "../support/suite.ts";

let db: Database;
const suite = integrationSuite("credentialHelpers", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
  },
});

suite.test(
  `getOpenAIApiKey returns null with OPENAI_API_KEY in the environment and no user key (${DATABASE_KIND})`,
  async () => {
    const globalKey = "sk-global-env-key-never-use";
    Deno.env.set("OPENAI_API_KEY", globalKey);
    Deno.env.set("GEMINI_API_KEY", "AIzaGlobalEnvKeyNeverUse");
    Deno.env.set("MANUS_API_KEY", "manus-global-env-key");
    try {
      const runtime = testRuntime(db, { env: { OPENAI_API_KEY: globalKey } });
      const alice = await newUser(db);
      assertEquals(await getOpenAIApiKey(alice.authorization, runtime), null);
      assertEquals(await getGeminiApiKey(alice.authorization, runtime), null);
      assertEquals(await getManusApiKey(alice.authorization, runtime), null);
    } finally {
      Deno.env.delete("OPENAI_API_KEY");
      Deno.env.delete("GEMINI_API_KEY");
      Deno.env.delete("MANUS_API_KEY");
    }
  },
);

suite.test("getOpenAIApiKey returns the caller's own key and nobody else's", async () => {
  const runtime = testRuntime(db);
  const alice = await newUser(db);
  const bob = await newUser(db);
  await storeCredential(
    db,
    { id: alice.id, claims: { sub: alice.id } },
    runtime.config,
    "openai",
    "api_key",
    "sk-alice-helper-1234",
  );
  assertEquals(await getOpenAIApiKey(alice.authorization, runtime), "sk-alice-helper-1234");
  assertEquals(await getOpenAIApiKey(bob.authorization, runtime), null);
  assertEquals(await getOpenAIApiKey("Bearer forged", runtime), null);
});

/** A TCP server that accepts connections and never answers: a database that hangs. */
function silentDatabaseServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) conns.push(conn);
  })().catch(() => {});
  return {
    url: `postgres://postgres@127.0.0.1:${(listener.addr as Deno.NetAddr).port}/none`,
    close() {
      listener.close();
      for (const conn of conns) conn.close();
    },
  };
}

suite.test(
  "getOpenAIApiKey returns null within the timeout when the database hangs, and the function answers 503",
  async () => {
    const hung = silentDatabaseServer();
    const deadDb = connectPostgres(hung.url, { connectTimeoutSeconds: 30 });
    const runtime = createRuntime({
      config: testConfig({ CREDENTIALS_LOOKUP_TIMEOUT_MS: "300" }),
      db: deadDb,
    });
    const alice = await newUser(db);
    try {
      const { result, lines } = await captureLogs(async () => {
        const started = performance.now();
        const key = await getOpenAIApiKey(alice.authorization, runtime);
        return { key, elapsed: performance.now() - started };
      });
      assertEquals(result.key, null);
      assert(result.elapsed < 1_000, `took ${result.elapsed} ms`);
      assert(lines.some((line) => line.includes("credential lookup failed")));
      assert(lines.every((line) => !line.includes(alice.token)));

      const response = await createHandler(runtime)(
        jsonRequest(
          "http://local/credentials-manager",
          { action: "validate", service: "openai" },
          alice.authorization,
        ),
      );
      assertEquals(response.status, 503);
      assertEquals((await response.json()).error.code, "CREDENTIALS_UNAVAILABLE");
    } finally {
      hung.close();
      await deadDb.close().catch(() => {});
    }
  },
);

suite.test(
  "the vault answers CREDENTIALS_UNAVAILABLE when the database refuses connections",
  async () => {
    const refused = connectPostgres("postgres://postgres@127.0.0.1:1/none");
    const runtime = createRuntime({
      config: testConfig({ CREDENTIALS_LOOKUP_TIMEOUT_MS: "2000" }),
      db: refused,
    });
    const alice = await newUser(db);
    const { result } = await captureLogs(() =>
      runtime.vault.lookup(alice.id, "openai").then(() => "answered", (e) => e.code)
    );
    assertEquals(result, "CREDENTIALS_UNAVAILABLE");
    await refused.close().catch(() => {});
  },
);

suite.test(
  "the vault keeps a key at most the cache TTL in another isolate, and none in the writer",
  async () => {
    let clock = 1_000_000;
    const writer = testRuntime(db, { now: () => clock });
    const other = testRuntime(db, { now: () => clock });
    const alice = await newUser(db);
    const dbUser = { id: alice.id, claims: { sub: alice.id } };
    await storeCredential(db, dbUser, writer.config, "openai", "api_key", "sk-first-key-000001");
    assertEquals((await other.vault.lookup(alice.id, "openai")).api_key, "sk-first-key-000001");
    assertEquals((await writer.vault.lookup(alice.id, "openai")).api_key, "sk-first-key-000001");

    await storeCredential(db, dbUser, writer.config, "openai", "api_key", "sk-second-key-00002");
    writer.vault.forget(alice.id, "openai");
    assertEquals((await writer.vault.lookup(alice.id, "openai")).api_key, "sk-second-key-00002");
    assertEquals((await other.vault.lookup(alice.id, "openai")).api_key, "sk-first-key-000001");
    clock += MAX_CREDENTIAL_CACHE_TTL_MS + 1;
    assertEquals((await other.vault.lookup(alice.id, "openai")).api_key, "sk-second-key-00002");
  },
);

suite.test("the vault shares one query among concurrent misses", async () => {
  let queries = 0;
  const counting = {
    ...db,
    query: (text: string, params?: readonly unknown[]) => {
      queries++;
      return db.query(text, params);
    },
  };
  const runtime = createRuntime({ config: testConfig(), db: counting as typeof db });
  const alice = await newUser(db);
  const results = await Promise.all(
    Array.from({ length: 20 }, () => runtime.vault.lookup(alice.id, "openai")),
  );
  assertEquals(results.length, 20);
  assertEquals(queries, 1);
});

suite.test("the credential cache TTL setting cannot exceed the 10 s bound", () => {
  assertEquals(
    testConfig({ CREDENTIALS_CACHE_TTL_MS: "600000" }).credentialCacheTtlMs,
    MAX_CREDENTIAL_CACHE_TTL_MS,
  );
  return Promise.resolve();
});
