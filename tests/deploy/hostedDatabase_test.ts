/**
 * The migrations and the database tests on a database shaped like hosted Supabase's
 * (tests/support/hosted_platform.sql): `postgres` is not a superuser, pgcrypto lives in
 * `extensions`, and `auth` belongs to the platform. The real CLI applies supabase/migrations
 * with `supabase db push --remote=<db-url>` as `postgres`; then the RLS, vault and sharing tests run
 * against that database as `postgres`, as the deployed functions connect.
 * Set DEPLOY_TRANSCRIPT=<file> to append each CLI command's output to it.
 */
import { connectPostgres } from "../../supabase/functions/_shared/db.ts";
import { migrate, readMigrations } from "../../local/migrate.ts";
import { openPglite } from "../../local/pgliteDatabase.ts";
import type { Queryable } from "../../supabase/functions/_shared/db.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { hostedClusterUnavailable, startHostedCluster } from "../support/hostedCluster.ts";
import { startManagementApi } from "../support/managementApi.ts";
import {
  cliAvailable,
  copyProject,
  renderTranscript,
  supabaseCli,
} from "../support/supabaseCli.ts";

const DATABASE_TESTS = [
  "tests/integration/rowLevelSecurity_test.ts",
  "tests/integration/credentialsManager_test.ts",
  "tests/integration/credentialHelpers_test.ts",
  "tests/integration/keyRotation_test.ts",
  "tests/integration/sharing_test.ts",
  "tests/integration/flows_test.ts",
];

/** What code may rely on in `auth`: each column's type, nullability and default; each helper's body. */
async function authShape(db: Queryable) {
  const columns = await db.query<Record<string, string>>(
    `select column_name, data_type, is_nullable, coalesce(column_default, '') as column_default
     from information_schema.columns where table_schema = 'auth' and table_name = 'users'`,
  );
  const functions = await db.query<{ name: string; body: string }>(
    `select p.proname as name, regexp_replace(p.prosrc, '\\s+', ' ', 'g') as body
     from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'auth' and p.proname in ('uid', 'role', 'jwt') order by 1`,
  );
  return {
    columns: new Map(columns.map((c) => [c.column_name, JSON.stringify(c)])),
    functions: functions.map(({ name, body }) => ({ name, body })),
  };
}

const unavailable = (await hostedClusterUnavailable()) ??
  ((await cliAvailable()) ? null : "the Supabase CLI is not installed");
if (unavailable) console.warn(`hosted-like database tests ignored: ${unavailable}`);

Deno.test({
  name: "hosted-like database: db push as non-superuser postgres, then RLS and vault tests pass",
  ignore: unavailable !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await startHostedCluster();
    const api = startManagementApi();
    const project = await copyProject(crypto.randomUUID());
    const cli = await supabaseCli(api, project);
    const admin = connectPostgres(cluster.adminUrl, { max: 1 });
    try {
      const [shape] = await admin.query<{ superuser: boolean; pgcrypto_schema: string }>(
        `select (select rolsuper from pg_roles where rolname = 'postgres') as superuser,
                (select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace
                 where e.extname = 'pgcrypto') as pgcrypto_schema`,
      );
      assertEquals(shape, { superuser: false, pgcrypto_schema: "extensions" });

      const push = await cli.run(["db", "push", `--remote=${cluster.postgresUrl}`, "--yes"]);
      assertEquals(push.code, 0, push.output);
      const applied = await admin.query<{ version: string }>(
        "select version from supabase_migrations.schema_migrations order by version",
      );
      assertEquals(
        applied.map((row) => row.version),
        (await readMigrations()).map((m) => m.version),
      );
      const again = await cli.run(["db", "push", `--remote=${cluster.postgresUrl}`, "--yes"]);
      assertEquals(again.code, 0, again.output);
      assert(/up to date/i.test(again.output), again.output);

      // The local shim is the same shape where code can tell: whatever a local run relies on in
      // auth.users exists on the platform with the same type, nullability and default.
      const local = await openPglite();
      try {
        await migrate(local);
        const [shim, platform] = [await authShape(local), await authShape(admin)];
        for (const [name, column] of shim.columns) {
          assertEquals(column, platform.columns.get(name), `auth.users.${name}`);
        }
        assertEquals(shim.functions, platform.functions);
      } finally {
        await local.close();
      }

      const run = await new Deno.Command(Deno.execPath(), {
        args: ["test", "--allow-all", ...DATABASE_TESTS],
        cwd: new URL("../../", import.meta.url).pathname,
        env: { DATABASE_URL: cluster.postgresUrl, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const output = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
      const summary = output.match(/\| (\d+) passed.*\| (\d+) failed/);
      assert(run.success && summary, output.slice(-4_000));
      assertEquals(summary[2], "0");
      assert(Number(summary[1]) > 50, `only ${summary[1]} database tests ran`);
    } finally {
      const transcript = Deno.env.get("DEPLOY_TRANSCRIPT");
      if (transcript) {
        await Deno.writeTextFile(transcript, renderTranscript(cli.transcript), { append: true });
      }
      await admin.close();
      await cli.close();
      await api.close();
      await Deno.remove(project, { recursive: true });
      await cluster.stop();
    }
  },
});
