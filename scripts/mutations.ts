/**
 * `npm run mutations`: breaks one security promise at a time in a scratch copy of HEAD and runs
 * the tests that should notice. Each row says whether they did (caught) or not (survived); the
 * command exits 1 when any mutation survives or no longer applies (the code it edits moved: update
 * its text here). The copy is a detached git worktree in a temp dir, removed at the end; rows that
 * need PostgreSQL get a fresh database each (TEST_POSTGRES_URL, default the machine's) and are
 * reported as skipped without one. Slow (a few minutes): not part of `npm test`.
 */
const ADMIN_URL = Deno.env.get("TEST_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/postgres";

interface Mutation {
  name: string;
  /** The file and the exact text to replace (it must occur), or a new file to add. */
  edit: { file: string; from: string; to: string } | { add: string; text: string };
  /** The test files that must fail. */
  tests: string[];
  /** Only a real PostgreSQL shows it (row locks). */
  postgres?: boolean;
}

const FUNCTIONS = "supabase/functions/_shared";
const MIGRATION = "supabase/migrations/29991231000000_mutation.sql";

const MUTATIONS: Mutation[] = [
  {
    name: "a key from the environment when the user has none",
    edit: {
      file: `${FUNCTIONS}/sharing/keyResolution.ts`,
      from: "      if (!credentials.api_key) throw missingKeyError(service, disabled);",
      to: "      if (!credentials.api_key) {\n" +
        '        const env = (globalThis as any)["De" + "no"].env.get(`${service.toUpperCase()}_API_KEY`);\n' +
        '        if (env) return { credentials: { api_key: env }, source: "user" };\n' +
        "        throw missingKeyError(service, disabled);\n      }",
    },
    tests: ["tests/security/noFallback_test.ts"],
  },
  {
    name: "the update policy on user_credentials open to everyone",
    edit: {
      add: MIGRATION,
      text:
        'drop policy "user_credentials: owners update their rows" on public.user_credentials;\n' +
        'create policy "anyone" on public.user_credentials for update to public using (true) with check (true);\n',
    },
    tests: ["tests/integration/rowLevelSecurity_test.ts", "tests/security/custody_test.ts"],
  },
  {
    name: "a client role may write ciphertext and key versions",
    edit: {
      add: MIGRATION,
      text: "grant insert (ciphertext, key_version), update (ciphertext, key_version)\n" +
        "  on public.user_credentials to authenticated;\n",
    },
    tests: ["tests/security/custody_test.ts"],
  },
  {
    name: "a ciphertext sealed for another row opens",
    edit: {
      file: "supabase/migrations/20261201100000_custody.sql",
      from:
        "  if starts_with(v_plain, v_marker) then\n    return null; -- sealed for another row\n" +
        "  end if;\n",
      to: "",
    },
    tests: ["tests/security/custody_test.ts"],
  },
  {
    name: "sequences writable by the client roles",
    edit: {
      add: MIGRATION,
      text: "grant usage, update on all sequences in schema public to anon, authenticated;\n",
    },
    tests: ["tests/security/custody_test.ts", "tests/integration/schemaRules_test.ts"],
  },
  {
    name: "a share token logged without its shr_ prefix, through the logger",
    edit: {
      file: "supabase/functions/flows/handler.ts",
      from: '    const liveId = which === "publish" ? newLiveId() : null;\n',
      to: '    const liveId = which === "publish" ? newLiveId() : null;\n' +
        '    if (shareToken) (await import("../_shared/core/log.ts")).log.info("published", ' +
        "{ token: shareToken.slice(4) });\n",
    },
    tests: ["tests/security/leaks_test.ts"],
  },
  {
    name: "a share token printed without its shr_ prefix, through console.log",
    edit: {
      file: "supabase/functions/flows/handler.ts",
      from: '    const liveId = which === "publish" ? newLiveId() : null;\n',
      to: '    const liveId = which === "publish" ? newLiveId() : null;\n' +
        '    if (shareToken) console.log("published", shareToken.slice(4));\n',
    },
    tests: ["tests/security/leaks_test.ts"],
  },
  {
    name: "a key a provider echoes is not scrubbed",
    edit: {
      file: `${FUNCTIONS}/upstream/outbound.ts`,
      from:
        "    return key && key.length >= MIN_SCRUBBED_KEY ? scrubbed(response, key) : response;",
      to: "    return response;",
    },
    tests: ["tests/security/echoedKeys_test.ts"],
  },
  {
    name: "upstream redirects followed",
    edit: {
      file: `${FUNCTIONS}/upstream/outbound.ts`,
      from: '      redirect: "manual",',
      to: '      redirect: "follow",',
    },
    tests: ["tests/security/ssrf_test.ts"],
  },
  ...[
    [
      "mapped",
      "  if (zeros(0, 5) && g[5] === 0xffff) return v4(g[6], g[7]); // ::ffff:a.b.c.d, mapped",
    ],
    [
      "translated",
      "  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return v4(g[6], g[7]); // ::ffff:0:a.b.c.d",
    ],
    [
      "NAT64",
      "  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return v4(g[6], g[7]); // NAT64",
    ],
    ["6to4", "  if (g[0] === 0x2002) return v4(g[1], g[2]); // 6to4"],
  ].map(([form, line]) => ({
    name: `the IPv4 inside a ${form} IPv6 address not read`,
    edit: { file: `${FUNCTIONS}/upstream/ipRanges.ts`, from: `${line}\n`, to: "" },
    tests: ["tests/unit/ipRanges_test.ts", "tests/security/ssrf_test.ts"],
  })),
  {
    name: "the local stack's static server leaves the panel",
    edit: {
      file: "local/staticFiles.ts",
      from:
        "    return real.startsWith(realRoot + sep) && (await Deno.stat(real)).isFile ? real : null;",
      to: "    return (await Deno.stat(real)).isFile ? real : null;",
    },
    tests: ["tests/security/localGateway_test.ts"],
  },
  {
    name: "the local stack answers any Host",
    edit: {
      file: "local/gateway.ts",
      from: "    return allowed.has(new URL(host ? `http://${host}` : request.url).hostname);",
      to: "    return true;",
    },
    tests: ["tests/security/localGateway_test.ts"],
  },
  {
    name: "the dev token endpoint answers any Origin",
    edit: {
      file: "local/gateway.ts",
      from: "    return allowed.has(new URL(origin).hostname) ? origin : false;",
      to: "    return origin;",
    },
    tests: ["tests/security/localGateway_test.ts"],
  },
  {
    name: "a token with iat in the future accepted",
    edit: {
      file: `${FUNCTIONS}/http/auth.ts`,
      from: "payload.iat > Date.now() / 1000 + CLOCK_SKEW_SECONDS",
      to: "payload.iat > Infinity",
    },
    tests: ["tests/security/jwtMatrix_test.ts"],
  },
  {
    name: "a run id of any age replayed",
    edit: {
      file: "supabase/migrations/20261201100100_spend_bounds.sql",
      from:
        "    if v_run.executed_at <= v_now - make_interval(secs => v_flow.run_max_age_seconds)\n" +
        "       or v_run.upstream_calls",
      to: "    if v_run.upstream_calls",
    },
    tests: ["tests/security/replay_test.ts"],
  },
  {
    name: "a run id replayed by another collaborator",
    edit: {
      file: "supabase/migrations/20261201100100_spend_bounds.sql",
      from: "    if v_run.actor_id is distinct from p_actor_id then",
      to: "    if false then",
    },
    tests: ["tests/security/replay_test.ts"],
  },
  {
    name: "one batch-embeddings call charged as one upstream call",
    edit: {
      file: "supabase/functions/batch-embeddings/handler.ts",
      from: "      upstreamCalls: planChunks(inputs, limits).length,",
      to: "      upstreamCalls: 1,",
    },
    tests: ["tests/security/amplification_test.ts"],
  },
  {
    name: "token counts not clamped",
    edit: {
      file: `${FUNCTIONS}/upstream/tokenUsage.ts`,
      from: "  return Math.min(Math.floor(number), MAX_TOKENS_PER_CALL);",
      to: "  return number;",
    },
    tests: ["tests/security/poisonedUsage_test.ts"],
  },
  {
    name: "NUL in text not refused in validation",
    edit: {
      file: `${FUNCTIONS}/http/pipeline.ts`,
      from: '    text.includes("\\0")',
      to: "    false",
    },
    tests: ["tests/security/unstorable_test.ts"],
  },
  {
    name: "lone surrogates not refused in validation",
    edit: {
      file: `${FUNCTIONS}/http/pipeline.ts`,
      from: "      : !text.isWellFormed()",
      to: "      : false",
    },
    tests: ["tests/security/unstorable_test.ts"],
  },
  {
    name: "the SQLSTATEs of unstorable input not mapped to 400",
    edit: {
      file: `${FUNCTIONS}/http/pipeline.ts`,
      from: 'const INPUT_SQLSTATES = new Set(["22P05", "22021", "22P02", "54001"]);',
      to: "const INPUT_SQLSTATES = new Set<string>();",
    },
    tests: ["tests/security/unstorable_test.ts"],
  },
  {
    name: "check_and_log_run without for update",
    edit: {
      file: "supabase/migrations/20261201100100_spend_bounds.sql",
      from: "where f.share_token_hash = v_hash for update;",
      to: "where f.share_token_hash = v_hash;",
    },
    tests: ["tests/integration/flows_test.ts"],
    postgres: true,
  },
  {
    name: "use_shared_key without for update",
    edit: {
      file: "supabase/migrations/20261202200000_shared_key_token_limits.sql",
      from: "   where k.account_name = p_account_name and k.provider = p_service\n   for update;",
      to: "   where k.account_name = p_account_name and k.provider = p_service;",
    },
    tests: ["tests/integration/sharing_test.ts"],
    postgres: true,
  },
];

async function run(command: string, args: string[], options: Deno.CommandOptions = {}) {
  const output = await new Deno.Command(command, {
    args,
    stdout: "piped",
    stderr: "piped",
    ...options,
  })
    .output();
  return {
    ok: output.success,
    text: new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr),
  };
}

async function psql(sql: string): Promise<boolean> {
  return (await run("psql", [ADMIN_URL, "-qtAc", sql])).ok;
}

type Outcome = "caught" | "SURVIVED" | "DID NOT APPLY" | "skipped (no PostgreSQL)";

async function apply(copy: string, edit: Mutation["edit"]): Promise<boolean> {
  if ("add" in edit) {
    await Deno.writeTextFile(`${copy}/${edit.add}`, edit.text);
    return true;
  }
  const path = `${copy}/${edit.file}`;
  const text = await Deno.readTextFile(path);
  if (!text.includes(edit.from)) return false;
  await Deno.writeTextFile(path, text.replace(edit.from, edit.to));
  return true;
}

/** The tests the mutations use, run on the unmutated copy: a mutation counts only if they pass. */
async function baseline(copy: string, hasPostgres: boolean): Promise<string | null> {
  for (const postgres of hasPostgres ? [false, true] : [false]) {
    const tests = [
      ...new Set(
        MUTATIONS.filter((m) => (m.postgres ?? false) === postgres).flatMap((m) => m.tests),
      ),
    ];
    const result = await testWith(copy, tests, postgres);
    if (!result.ok) return `on ${postgres ? "PostgreSQL" : "PGlite"}:\n${result.text}`;
  }
  return null;
}

/** Runs `tests` in `copy`, on PGlite or on a fresh PostgreSQL database dropped afterwards. */
async function testWith(copy: string, tests: string[], postgres: boolean) {
  const database = `byok_mutation_${Deno.pid}`;
  const env: Record<string, string> = { DATABASE_URL: "" };
  if (postgres) {
    await psql(`create database ${database}`);
    env.DATABASE_URL = `${ADMIN_URL.slice(0, ADMIN_URL.lastIndexOf("/"))}/${database}`;
  }
  try {
    return await run(Deno.execPath(), ["test", "--no-check", "--allow-all", ...tests], {
      cwd: copy,
      env,
    });
  } finally {
    if (postgres) await psql(`drop database if exists ${database} with (force)`);
  }
}

async function tryMutation(
  copy: string,
  mutation: Mutation,
  hasPostgres: boolean,
): Promise<Outcome> {
  if (mutation.postgres && !hasPostgres) return "skipped (no PostgreSQL)";
  if (!(await apply(copy, mutation.edit))) return "DID NOT APPLY";
  const result = await testWith(copy, mutation.tests, mutation.postgres ?? false);
  return result.ok ? "SURVIVED" : "caught";
}

const root = new URL("..", import.meta.url).pathname;
const scratch = await Deno.makeTempDir({ prefix: "byok-mutations-" });
const copy = `${scratch}/tree`;
const hasPostgres = await psql("select 1");
const outcomes: [string, Outcome][] = [];
try {
  const added = await run("git", ["-C", root, "worktree", "add", "--detach", copy, "HEAD"]);
  if (!added.ok) throw new Error(added.text);
  await Deno.symlink(`${root}node_modules`, `${copy}/node_modules`);
  const broken = await baseline(copy, hasPostgres);
  if (broken) throw new Error(`the tests fail without any mutation, ${broken}`);
  for (const mutation of MUTATIONS) {
    const outcome = await tryMutation(copy, mutation, hasPostgres);
    outcomes.push([mutation.name, outcome]);
    console.log(`${outcome.padEnd(24)} ${mutation.name}`);
    await run("git", ["-C", copy, "checkout", "-q", "--", "."]);
    await run("git", ["-C", copy, "clean", "-qfd", "-e", "node_modules"]);
  }
} finally {
  await run("git", ["-C", root, "worktree", "remove", "--force", copy]);
  await Deno.remove(scratch, { recursive: true });
}
const caught = outcomes.filter(([, o]) => o === "caught").length;
const bad = outcomes.filter(([, o]) => o === "SURVIVED" || o === "DID NOT APPLY").length;
console.log(
  `\n${caught} caught, ${bad} survived or did not apply, ${outcomes.length - caught - bad} skipped`,
);
Deno.exit(bad === 0 ? 0 : 1);
