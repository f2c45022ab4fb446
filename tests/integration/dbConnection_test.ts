/**
 * How deployed functions connect: the transaction pooler's URL when DB_POOLER_URL is set, else
 * the injected SUPABASE_DB_URL; at most DB_POOL_MAX connections per isolate; no prepared
 * statements (the transaction pooler cannot keep them).
 */
import { loadConfig } from "../../supabase/functions/_shared/core/config.ts";
import { runtimeFromEnv } from "../../supabase/functions/_shared/core/runtime.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_URL } from "../support/database.ts";

const base = { CREDENTIALS_ENCRYPTION_KEY: "a-long-enough-passphrase", JWT_SECRET: "jwt-secret" };

Deno.test("the pooler URL wins over SUPABASE_DB_URL, and the pool size is configurable", () => {
  const direct = "postgres://postgres@db.example.supabase.co:5432/postgres";
  const pooler = "postgres://postgres.ref@aws-0-eu-central-1.pooler.supabase.com:6543/postgres";
  assertEquals(loadConfig({ ...base, SUPABASE_DB_URL: direct }).dbUrl, direct);
  assertEquals(
    loadConfig({ ...base, SUPABASE_DB_URL: direct, DB_POOLER_URL: pooler }).dbUrl,
    pooler,
  );
  assertEquals(loadConfig(base).dbPoolMax, 3);
  assertEquals(loadConfig({ ...base, DB_POOL_MAX: "1" }).dbPoolMax, 1);
  let refused = false;
  try {
    loadConfig({ ...base, DB_POOL_MAX: "0" });
  } catch {
    refused = true;
  }
  assert(refused, "DB_POOL_MAX=0 was accepted");
});

Deno.test({
  name: "runtimeFromEnv connects through DB_POOLER_URL with at most DB_POOL_MAX connections",
  ignore: !DATABASE_URL,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const env = {
      ...base,
      DB_POOLER_URL: DATABASE_URL!,
      // Unreachable: the pool must not use it when a pooler URL is given.
      SUPABASE_DB_URL: "postgres://postgres@127.0.0.1:1/unused",
      DB_POOL_MAX: "2",
    };
    const previous = Object.fromEntries(Object.keys(env).map((k) => [k, Deno.env.get(k)]));
    for (const [key, value] of Object.entries(env)) Deno.env.set(key, value);
    try {
      const { db } = runtimeFromEnv();
      const rows = await Promise.all(
        Array.from({ length: 6 }, () =>
          db.query<{ pid: number; prepared: number }>(
            `select pg_backend_pid() as pid,
                    (select count(*)::int from pg_prepared_statements) as prepared,
                    pg_sleep(0.2)::text as slept`,
          )),
      );
      const pids = new Set(rows.map(([row]) => row.pid));
      assert(pids.size >= 1 && pids.size <= 2, `${pids.size} connections`);
      assertEquals(rows.map(([row]) => row.prepared), [0, 0, 0, 0, 0, 0]);
      await db.close();
    } finally {
      for (const [key, value] of Object.entries(previous)) {
        if (value === undefined) Deno.env.delete(key);
        else Deno.env.set(key, value);
      }
    }
  },
});
