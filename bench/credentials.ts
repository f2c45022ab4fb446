/**
 * Credentials section of `npm run bench`: cold (cache miss) and warm lookups through the vault,
 * beside a bare `select 1` round trip and the decrypt query alone, on PGlite and on Postgres.
 */
import { keyringParam } from "../supabase/functions/_shared/vault/keyring.ts";
import { storeCredential } from "../supabase/functions/_shared/vault/keyWriter.ts";
import { connectPostgres, type Database } from "../supabase/functions/_shared/core/db.ts";
import { loadConfig } from "../supabase/functions/_shared/core/config.ts";
import { createCredentialVault } from "../supabase/functions/_shared/vault/keyReader.ts";
import { migrate } from "../local/migrate.ts";
import { openPglite } from "../local/pgliteDatabase.ts";
import { ms, percentile, sample } from "./stats.ts";

const ITERATIONS = Number(Deno.env.get("BENCH_ITERATIONS") ?? "2000");

async function benchDatabase(label: string, db: Database): Promise<void> {
  await migrate(db);
  const config = loadConfig({
    CREDENTIALS_ENCRYPTION_KEY: `bench-${crypto.randomUUID()}`,
    JWT_SECRET: "bench-jwt-secret",
  });
  const [user] = await db.query<{ id: string }>(
    "insert into auth.users (id, email) values (gen_random_uuid(), $1) returning id",
    [
      `${crypto.randomUUID()}@bench.local`,
    ],
  );
  await storeCredential(
    db,
    { id: user.id, claims: { sub: user.id } },
    config,
    "openai",
    "api_key",
    "sk-bench-0123456789abcdef",
  );
  const vault = createCredentialVault({ db, config });

  const select1 = await sample(() => db.query("select $1::int as one", [1]), ITERATIONS);
  const decrypt = await sample(
    () =>
      db.query(
        `select private.open_secret(ciphertext, secret_binding, key_version, $2::text::jsonb)
           from public.user_credentials where user_id = $1::uuid and service = 'openai'`,
        [user.id, keyringParam(config)],
      ),
    ITERATIONS,
  );
  const cold = await sample(() => {
    vault.forget(user.id, "openai");
    return vault.lookup(user.id, "openai");
  }, ITERATIONS);
  const warm = await sample(() => vault.lookup(user.id, "openai"), ITERATIONS * 10);

  const row = (name: string, s: number[]) =>
    console.log(
      `  ${name.padEnd(26)} p50 ${ms(percentile(s, 50)).padStart(10)}   p99 ${
        ms(percentile(s, 99)).padStart(10)
      }`,
    );
  console.log(`\ncredentials: ${label} (${ITERATIONS} iterations)`);
  row("select 1 round trip", select1);
  row("select + decrypt (SQL only)", decrypt);
  row("cold lookup (cache miss)", cold);
  row("warm lookup (cache hit)", warm);
  const coldOver = percentile(cold, 50) - percentile(decrypt, 50);
  const warmShare = (100 * percentile(warm, 50)) / percentile(cold, 50);
  console.log(
    `  cold p50 - (select + decrypt) p50 = ${ms(coldOver)}   (target: within about 1 ms)`,
  );
  console.log(`  warm p50 / cold p50 = ${warmShare.toFixed(3)} %   (target: under 1 %)`);
}

export async function runCredentialsBench(): Promise<void> {
  const pglite = await openPglite();
  try {
    await benchDatabase("PGlite (embedded)", pglite);
  } finally {
    await pglite.close();
  }

  const adminUrl = Deno.env.get("BENCH_POSTGRES_URL") ??
    "postgres://postgres@127.0.0.1:5432/postgres";
  const admin = connectPostgres(adminUrl, { max: 1 });
  const name = `byok_bench_${Date.now()}`;
  try {
    await admin.query(`create database ${name}`);
  } catch (error) {
    console.log(`\ncredentials: PostgreSQL skipped (${(error as Error).message})`);
    await admin.close();
    return;
  }
  const db = connectPostgres(adminUrl.replace(/\/[^/]*$/, `/${name}`), { max: 1 });
  try {
    await benchDatabase("PostgreSQL (127.0.0.1)", db);
  } finally {
    await db.close();
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.close();
  }
}

if (import.meta.main) await runCredentialsBench();
