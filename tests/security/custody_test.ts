/**
 * Custody of stored keys against an attacker who holds a client role (PostgREST's `anon` or
 * `authenticated`, one request away on hosted Supabase) or a copy of the data without the
 * passphrase: no client role writes ciphertext, key versions, status, audit rows, share-token
 * hashes, shared-key usage counters or sequences, and a ciphertext moved to another row does not
 * open there.
 */
import { asUser, type Queryable } from "../../supabase/functions/_shared/core/db.ts";
import { storeCredential } from "../../supabase/functions/_shared/vault/keyWriter.ts";
import { createSharedKey } from "../../supabase/functions/_shared/sharing/llmConfigStore.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND } from "../support/database.ts";
import { newUser, testRuntime } from "../support/runtime.ts";
import { rotateEncryptionKey } from "../../scripts/rotateKey.ts";
import { recordAttacks } from "./figures.ts";
import { openIsolatedDatabase } from "./isolatedDatabase.ts";

const isolated = await openIsolatedDatabase();
const db = isolated.db;
const rt = testRuntime(db);

const victim = await newUser(db);
const attacker = await newUser(db);
const asDb = (user: { id: string }) => ({
  id: user.id,
  claims: { sub: user.id, role: "authenticated" },
});
await storeCredential(db, asDb(victim), rt.config, "openai", "api_key", "sk-victim-custody-0001");
await storeCredential(db, asDb(attacker), rt.config, "custom", "api_key", "sk-attacker-custody-01");
await storeCredential(
  db,
  asDb(attacker),
  rt.config,
  "custom",
  "base_url",
  "https://attacker.example.com/v1",
);
await createSharedKey(db, asDb(victim), rt.config, {
  account_name: "victim-team",
  display_name: "Victim team",
  provider: "openai",
  model: null,
  api_key: "sk-victim-shared-000001",
  is_public: false,
  allowed_user_ids: [],
  daily_limit: null,
  per_user_daily_limit: null,
});

/** Runs one statement as `role` (anon: no claims) and says whether the database refused it. */
async function refused(role: "anon" | "authenticated", sql: string, params: unknown[] = []) {
  const work = (tx: Queryable) => tx.query(sql, params);
  try {
    if (role === "authenticated") await asUser(db, asDb(attacker), work);
    else {
      await db.transaction(async (tx) => {
        await tx.query("select set_config('role', 'anon', true)", []);
        await work(tx);
      });
    }
    return false;
  } catch (error) {
    return /permission denied|row-level security|does not exist/i.test((error as Error).message);
  }
}

const hex = async (table: string, where: string, params: unknown[]) =>
  (await db.query<{ c: string }>(
    `select encode(ciphertext, 'hex') as c from public.${table} where ${where}`,
    params,
  ))[0].c;

Deno.test(`custody holds against client roles and moved ciphertext (${DATABASE_KIND})`, async (t) => {
  try {
    await t.step(
      "no client role writes ciphertext, key versions, status, audit rows or usage counters",
      async () => {
        const victimCipher = await hex("user_credentials", "user_id = $1::uuid", [victim.id]);
        const writes: [string, unknown[]][] = [
          [
            `update public.user_credentials set ciphertext = decode($1, 'hex')
            where service = 'custom' and credential_key = 'api_key'`,
            [victimCipher],
          ],
          ["update public.user_credentials set key_version = 7", []],
          ["update public.user_credentials set last_four = 'evil'", []],
          ["update public.user_credentials set validation_status = 'valid'", []],
          ["update public.user_credentials set last_validated_at = now()", []],
          [
            `insert into public.user_credentials (user_id, service, credential_key, ciphertext, last_four)
           values ((select auth.uid()), 'gemini', 'api_key', decode($1, 'hex'), 'xxxx')`,
            [victimCipher],
          ],
          [
            `insert into public.shared_keys (account_name, display_name, provider, ciphertext, last_four, owner_id)
           values ('stolen-key', 'x', 'openai', decode($1, 'hex'), 'xxxx', (select auth.uid()))`,
            [victimCipher],
          ],
          ["update public.shared_keys set ciphertext = '\\x00'::bytea", []],
          ["update public.shared_keys set key_version = 7", []],
          ["update public.shared_keys set last_four = 'evil'", []],
          // The usage counters, requests and tokens, that the shared keys' limits are decided on.
          ["update public.shared_key_usage set tokens = 0, requests = 0", []],
          [
            `insert into public.shared_key_usage (shared_key_id, user_id, day, tokens)
           select id, (select auth.uid()), current_date, 0 from public.shared_keys`,
            [],
          ],
          ["delete from public.shared_key_usage", []],
          [
            `select private.add_shared_key_tokens(jsonb_build_array(jsonb_build_object(
             'shared_key_id', gen_random_uuid(), 'user_id', (select auth.uid()),
             'day', current_date, 'tokens', -1000000)))`,
            [],
          ],
          [
            `insert into public.credential_events (owner_id, actor_id, service, event)
           values ((select auth.uid()), (select auth.uid()), 'openai', 'validate')`,
            [],
          ],
          ["update public.credential_events set event = 'set'", []],
          ["delete from public.credential_events", []],
          ["update public.flows set share_token_hash = extensions.digest('weak', 'sha256')", []],
          ["update public.flows set live_id = 'chosen-live-id'", []],
          ["update public.flows set daily_execution_count = 0", []],
          [
            "insert into public.owner_name_keys (owner_name, provider, ciphertext, last_four) values ('x1', 'openai', '\\x00', 'x')",
            [],
          ],
          [
            "select private.store_credential((select auth.uid()), 'openai', 'api_key', 'sk-x', 'x', '{}')",
            [],
          ],
          ["select private.open_secret('\\x00', 'x', 1, '{}')", []],
        ];
        let through = 0;
        for (const role of ["authenticated", "anon"] as const) {
          for (const [sql, params] of writes) {
            if (!await refused(role, sql, params)) {
              through++;
              console.error(`  ${role} was allowed: ${sql.split("\n")[0]}`);
            }
          }
        }
        recordAttacks("ciphertext writes", writes.length * 2, through);
        assertEquals(through, 0);
      },
    );

    await t.step("no client role moves a sequence", async () => {
      const sequences = await db.query<{ name: string }>(
        `select format('%I.%I', n.nspname, c.relname) as name
           from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
          where n.nspname = 'public' and c.relkind = 'S'`,
        [],
      );
      assert(sequences.length > 0);
      let through = 0;
      for (const role of ["anon", "authenticated"] as const) {
        for (const { name } of sequences) {
          for (
            const sql of [
              `select setval('${name}', 9223372036854775807)`,
              `select nextval('${name}')`,
            ]
          ) {
            if (!await refused(role, sql)) through++;
          }
        }
      }
      recordAttacks("sequence writes", sequences.length * 4, through);
      assertEquals(through, 0);
      // Saving still works for everyone afterwards.
      await storeCredential(
        db,
        asDb(victim),
        rt.config,
        "gemini",
        "api_key",
        "AIzaSyCustody0000000000",
      );
    });

    await t.step("a ciphertext moved into another row does not open there", async () => {
      // Someone with write access to the raw table but not the passphrase (a restored dump, a
      // leaked service connection) copies the victim's sealed key into their own custom row.
      const victimCipher = await hex(
        "user_credentials",
        "user_id = $1::uuid and service = 'openai'",
        [victim.id],
      );
      const sharedCipher = await hex("shared_keys", "account_name = 'victim-team'", []);
      await db.query(
        `update public.user_credentials set ciphertext = decode($2, 'hex')
          where user_id = $1::uuid and service = 'custom' and credential_key = 'api_key'`,
        [attacker.id, victimCipher],
      );
      rt.vault.forget(attacker.id, "custom");
      const moved = await rt.vault.lookup(attacker.id, "custom");
      await db.query(
        `update public.user_credentials set ciphertext = decode($2, 'hex')
          where user_id = $1::uuid and service = 'custom' and credential_key = 'base_url'`,
        [attacker.id, sharedCipher],
      );
      rt.vault.forget(attacker.id, "custom");
      const movedShared = await rt.vault.lookup(attacker.id, "custom");
      // The same ciphertext still opens where it belongs.
      const own = await rt.vault.lookup(victim.id, "openai");
      const opened = [moved.api_key, movedShared.base_url].filter((v) => v !== undefined);
      recordAttacks("ciphertext writes", 2, opened.length);
      assertEquals(opened, []);
      assertEquals(own.api_key, "sk-victim-custody-0001");
    });

    await t.step("every grant to anon and authenticated is one the design names", async () => {
      // What PostgREST would expose: table and column privileges, sequences, functions and
      // schemas reachable by the API roles. Anything not listed here is a failure.
      const expected = new Set([
        // A user's own conversations, written as the user (20261122100100_conversations.sql).
        "authenticated select public.conversations",
        "authenticated delete public.conversations",
        "authenticated insert public.conversations(id,title,user_id)",
        "authenticated update public.conversations(title,updated_at)",
        "authenticated select public.conversation_messages",
        "authenticated insert public.conversation_messages(content,conversation_id,role,run_id,user_id)",
        "authenticated select public.conversation_runs",
        "authenticated insert public.conversation_runs(conversation_id,id,model,provider,user_id)",
        "authenticated update public.conversation_runs(cancel_requested,completion_tokens,error_code,finished_at,output,prompt_tokens,status,total_tokens,updated_at)",
        "authenticated select public.usage_daily",
        // Credentials, sharing and flows: reads, the owner's own settings, and deletes.
        "authenticated select public.credential_events",
        "authenticated select public.flow_execution_log(actor_id,executed_at,flow_id,id,run_id,upstream_calls)",
        "authenticated delete public.flows",
        "authenticated insert public.flows(allowed_model,allowed_provider,daily_limit,definition,max_tokens_limit,name,owner_id,per_minute_limit,run_call_limit,run_max_age_seconds,use_owner_keys)",
        "authenticated select public.flows(allowed_model,allowed_provider,created_at,daily_execution_count,daily_execution_reset,daily_limit,definition,id,live_id,max_tokens_limit,name,owner_id,per_minute_limit,published_at,run_call_limit,run_max_age_seconds,updated_at,use_owner_keys)",
        "authenticated update public.flows(allowed_model,allowed_provider,daily_limit,definition,max_tokens_limit,name,per_minute_limit,run_call_limit,run_max_age_seconds,updated_at,use_owner_keys)",
        "authenticated delete public.llm_configs",
        "authenticated insert public.llm_configs",
        "authenticated select public.llm_configs",
        "authenticated update public.llm_configs",
        "authenticated select public.shared_key_usage",
        "authenticated delete public.shared_keys",
        "authenticated select public.shared_keys(account_name,allowed_user_ids,created_at,daily_limit,daily_token_limit,display_name,id,is_public,key_version,last_four,model,owner_id,per_user_daily_limit,per_user_daily_token_limit,provider,updated_at)",
        "authenticated update public.shared_keys(allowed_user_ids,daily_limit,daily_token_limit,display_name,is_public,model,per_user_daily_limit,per_user_daily_token_limit,updated_at)",
        // Editing those settings recomputes the row's secret_binding (its updated_at trigger makes
        // Postgres recompute stored generated columns); private itself stays closed.
        "authenticated execute private.shared_key_binding(uuid,uuid,text,text)",
        "authenticated delete public.user_credentials",
        "authenticated select public.user_credentials(created_at,credential_key,id,is_active,key_version,last_four,last_used_at,last_validated_at,service,updated_at,user_id,validation_status)",
      ]);
      const grants = await db.query<{ grant: string }>(
        `with tables as (
           select c.oid, format('%I.%I', n.nspname, c.relname) as name, c.relkind
             from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
            where n.nspname in ('public', 'private') and c.relkind in ('r', 'v', 'm', 'S', 'p')
         ), roles as (select unnest(array['anon', 'authenticated']) as role),
         privileges as (select unnest(array['select', 'insert', 'update', 'delete', 'truncate',
                                            'references', 'trigger']) as privilege)
         select r.role || ' ' || p.privilege || ' ' || t.name as grant
           from tables as t cross join roles as r cross join privileges as p
          where t.relkind <> 'S' and has_table_privilege(r.role, t.oid, p.privilege)
         union all
         select r.role || ' ' || p.privilege || ' ' || t.name || '(' ||
                string_agg(a.attname, ',' order by a.attname) || ')'
           from tables as t cross join roles as r
          cross join (values ('select'), ('insert'), ('update')) as p (privilege)
           join pg_attribute as a on a.attrelid = t.oid and a.attnum > 0 and not a.attisdropped
          where t.relkind <> 'S' and not has_table_privilege(r.role, t.oid, p.privilege)
            and has_column_privilege(r.role, t.oid, a.attnum, p.privilege)
          group by r.role, p.privilege, t.name
         union all
         select r.role || ' ' || p.privilege || ' ' || t.name
           from tables as t cross join roles as r
          cross join (values ('usage'), ('select'), ('update')) as p (privilege)
          where t.relkind = 'S' and has_sequence_privilege(r.role, t.oid, p.privilege)
         union all
         select r.role || ' execute ' || f.oid::regprocedure::text
           from pg_proc as f join pg_namespace as n on n.oid = f.pronamespace
          cross join roles as r
          where n.nspname in ('public', 'private') and has_function_privilege(r.role, f.oid, 'execute')
         union all
         select r.role || ' usage schema private' from roles as r
          where has_schema_privilege(r.role, 'private', 'usage')`,
        [],
      );
      const unexpected = grants.map((g) => g.grant).filter((g) => !expected.has(g));
      assertEquals(unexpected, []);
    });
    await t.step(
      "every row level security policy is per operation, for authenticated, scoped to the caller",
      async () => {
        const policies = await db.query<
          { name: string; roles: string; cmd: string; qual: string | null; check: string | null }
        >(
          `select tablename || ': ' || policyname as name, array_to_string(roles, ',') as roles,
                  cmd, qual, with_check as check
             from pg_policies where schemaname = 'public'`,
          [],
        );
        assert(policies.length > 10);
        const scoped = (expression: string | null) =>
          expression === null || /auth\.uid\(\)/.test(expression);
        const wrong = policies.filter((p) =>
          p.roles !== "authenticated" || p.cmd === "ALL" || !scoped(p.qual) || !scoped(p.check) ||
          (p.qual === null && p.check === null)
        ).map((p) => `${p.name} (${p.roles} ${p.cmd} using ${p.qual} check ${p.check})`);
        assertEquals(wrong, []);
      },
    );

    await t.step(
      "rotation skips and reports rows that do not open, and rotates the rest",
      async () => {
        // One user writes garbage into their own row (no longer possible for a client role, but a
        // restored dump can hold it); the moved ciphertexts above do not open either.
        const vandal = await newUser(db);
        await storeCredential(
          db,
          asDb(vandal),
          rt.config,
          "openai",
          "api_key",
          "sk-vandal-000000001",
        );
        await db.query(
          `update public.user_credentials set ciphertext = '\\xdeadbeef'::bytea where user_id = $1::uuid`,
          [vandal.id],
        );
        const newKey = `custody-rotated-${crypto.randomUUID()}`;
        const report = await rotateEncryptionKey(db, {
          newKey,
          previousKey: rt.config.encryptionKey,
          newVersion: 2,
          batchSize: 2,
        });
        const skipped = report.skipped.map((row) => row.binding).sort();
        assertEquals(
          skipped,
          [
            `user_credentials/${attacker.id}/custom/api_key`,
            `user_credentials/${attacker.id}/custom/base_url`,
            `user_credentials/${vandal.id}/openai/api_key`,
          ].sort(),
        );
        assert(report.verified, JSON.stringify(report.checks));
        assert(report.rotated >= 3, `rotated ${report.rotated}`);
        const after = testRuntime(db, {
          env: { CREDENTIALS_ENCRYPTION_KEY: newKey, CREDENTIALS_ENCRYPTION_KEY_VERSION: "2" },
        });
        assertEquals(
          (await after.vault.lookup(victim.id, "openai")).api_key,
          "sk-victim-custody-0001",
        );
        assertEquals(
          (await after.vault.lookup(victim.id, "gemini")).api_key,
          "AIzaSyCustody0000000000",
        );
      },
    );
  } finally {
    await isolated.close();
  }
});
