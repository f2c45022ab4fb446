/**
 * Fuzzes every declared function through the gateway with a valid user token: arbitrary JSON and
 * near-valid bodies built from the fields and actions the functions know. For every case: never
 * a 5xx, the error envelope on every non-2xx, no stack trace or SQL text, and the user's stored
 * rows unchanged by a rejected call. Then hostile inputs: oversized and deeply nested bodies,
 * control characters, SQL-looking and look-alike service names, and a header smuggling attempt.
 */
import fc from "fast-check";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND } from "../support/database.ts";
import { integrationSuite } from "../support/suite.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import { SERVICES } from "../../supabase/functions/_shared/contract/providers.ts";
import { recordCases, recordMixUps } from "./figures.ts";
import {
  type Answer,
  FULL,
  INTERNALS,
  isEnvelope,
  jsonHeaders,
  probeRequests,
  type SecurityStack,
  type SecurityUser,
  STACK_TRACE,
  startSecurityStack,
} from "./securityStack.ts";

let suite: SecurityStack;
const steps = integrationSuite("fuzz", {
  // The stack captures console output for the leak scanner, and its last case closes it before
  // scanning; the closer here makes sure it is closed when a case fails first.
  async setup(onTeardown) {
    suite = await startSecurityStack();
    onTeardown(() => suite.close());
    db = suite.stack.db;
  },
});
let db: Database;
const CASES_PER_FUNCTION = Number(Deno.env.get("SECURITY_FUZZ_CASES") ?? (FULL ? 2000 : 60));
const SEED = Number(Deno.env.get("SECURITY_FUZZ_SEED") ?? Date.now() % 1_000_000);

/** Service names that look like real ones, or like SQL, or like paths. */
const HOSTILE_SERVICES = [
  "\u043epenai", // Cyrillic о
  "open\u0430i", // Cyrillic а
  "ＯＰＥＮＡＩ",
  "openai\u0000",
  "openai ",
  "OpenAI",
  "openai' or '1'='1",
  "openai'; drop table public.user_credentials; --",
  "../openai",
  "__proto__",
  "constructor",
  "",
];
const HOSTILE_STRINGS = [
  "' or 1=1 --",
  "'; select pg_sleep(5); --",
  "$1",
  "\u0000\u0001\u0002\u001b[31m\u007f",
  "\ud800",
  "a".repeat(5000),
  "${jndi:ldap://x}",
  "<script>alert(1)</script>",
  "null",
];
const ACTIONS = [
  "list",
  "get",
  "set",
  "delete",
  "get_status",
  "validate",
  "create",
  "update",
  "publish",
  "rotate_token",
  "revoke_token",
  "unpublish",
  "execute",
  "save",
];

const hostileString = fc.oneof(
  fc.constantFrom(...HOSTILE_STRINGS, ...HOSTILE_SERVICES),
  fc.string({ unit: "binary", maxLength: 64 }),
);
const service = fc.oneof(fc.constantFrom(...SERVICES), fc.constantFrom(...HOSTILE_SERVICES));
const idLike = fc.oneof(fc.uuid(), hostileString);
const anyJson = fc.jsonValue({ maxDepth: 4 });

/** Objects with a random subset of the fields the functions read, valid or hostile values. */
const nearValid = fc.record({
  action: fc.oneof(fc.constantFrom(...ACTIONS), hostileString),
  service,
  provider: service,
  key: fc.constantFrom("api_key", "base_url", "ciphertext", "key_version", "' or 1=1 --"),
  value: fc.oneof(hostileString, fc.constant("sk-fuzz-0000000000000000"), anyJson),
  run_id: idLike,
  conversation_id: idLike,
  flow_id: idLike,
  model: fc.oneof(fc.constant("gpt-4o-mini"), hostileString, anyJson),
  input: fc.oneof(hostileString, anyJson),
  inputs: fc.oneof(fc.array(hostileString, { maxLength: 5 }), anyJson),
  chunk_size: fc.oneof(fc.integer(), fc.double(), hostileString),
  messages: fc.oneof(
    fc.array(
      fc.record({ role: fc.constantFrom("user", "system", "tool", "x"), content: hostileString }),
      {
        maxLength: 3,
      },
    ),
    anyJson,
  ),
  stream: fc.oneof(fc.boolean(), anyJson),
  name: hostileString,
  api_key: hostileString,
  base_url: fc.oneof(fc.constant("http://169.254.169.254/latest"), hostileString),
  account_name: hostileString,
  extra: anyJson,
}, { requiredKeys: [] });

const bodies = fc.oneof(
  { weight: 3, arbitrary: nearValid.map((body) => JSON.stringify(body)) },
  { weight: 2, arbitrary: anyJson.map((body) => JSON.stringify(body)) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
);

/**
 * Every public table with a user_id column, read as one digest per table for `userId`. Usage
 * bookkeeping is left out: the proxy records usage in memory and writes it (usage tables,
 * `last_used_at`) after earlier successful calls, at a moment no single request controls.
 */
async function snapshotQuery(): Promise<string> {
  const tables = await db.query<{ table_name: string }>(
    `select table_name from information_schema.columns
      where table_schema = 'public' and column_name = 'user_id' and table_name not like 'usage%'
      order by table_name`,
    [],
  );
  return tables.map(({ table_name }) =>
    `select '${table_name}' as t,
            md5(coalesce(string_agg((to_jsonb(x) - 'last_used_at')::text, '|'
                                    order by (to_jsonb(x) - 'last_used_at')::text), '')) as d
       from public."${table_name}" as x where x.user_id = $1::uuid`
  ).join(" union all ");
}

let user: SecurityUser;
let victim: SecurityUser;
let snapshotSql = "";
const snapshot = async (id: string) => JSON.stringify(await db.query(snapshotSql, [id]));

/**
 * The proxies pass a provider's 4xx about the request itself through as the provider wrote it
 * (docs/proxy.md); the fake upstream writes OpenAI's format. Only that shape is let through.
 */
function isProviderPassThrough(answer: Answer): boolean {
  const error = (answer.json as { error?: { message?: unknown; type?: unknown } } | null)?.error;
  return answer.status >= 400 && answer.status < 500 &&
    ![401, 403, 408, 429].includes(answer.status) &&
    typeof error?.message === "string" && error.type === "invalid_request_error";
}

function changedTables(before: string, after: string): string {
  const old = new Map((JSON.parse(before) as { t: string; d: string }[]).map((r) => [r.t, r.d]));
  return (JSON.parse(after) as { t: string; d: string }[]).filter((r) => old.get(r.t) !== r.d)
    .map((r) => r.t).join(", ");
}

/** The checks every answer must pass; returns what was wrong, or null. */
function problem(answer: Answer, proxy = false): string | null {
  if (answer.status >= 500) return "5xx";
  if (STACK_TRACE.test(answer.text)) return "stack trace";
  if (answer.status >= 400) {
    if (!isEnvelope(answer.json) && !(proxy && isProviderPassThrough(answer))) {
      return "no error envelope";
    }
    if (INTERNALS.test(answer.text)) return "internal details";
  }
  return null;
}

/** The first probe of `fn` a valid user reaches (not 404 NOT_FOUND), where the fuzz aims. */
async function fuzzTarget(fn: string) {
  for (const probe of probeRequests(fn).filter((p) => p.method === "POST")) {
    const path = `/functions/v1/${fn}${probe.sub}`;
    const answer = await suite.send(path, {
      method: "POST",
      headers: jsonHeaders(user.authorization),
      body: probe.body,
    });
    const notFound = answer.status === 404 && isEnvelope(answer.json) &&
      answer.json.error.code === "NOT_FOUND";
    if (!notFound) return { path, proxy: probe.sub.includes("/v1/") };
  }
  return null;
}

steps.test(`fuzz sets up a user with a stored key and a bystander (${DATABASE_KIND})`, async () => {
  user = await suite.newUser({ providerKey: true });
  victim = await suite.newUser({ providerKey: true });
  snapshotSql = await snapshotQuery();
  assert(snapshotSql.includes("user_credentials"));
});

steps.test(
  "every function survives fuzzed bodies: no 5xx, envelope, no internals, rows kept",
  async () => {
    const victimBefore = await snapshot(victim.id);
    const failures: string[] = [];
    for (const fn of suite.functions) {
      const target = await fuzzTarget(fn.name);
      if (!target) {
        failures.push(`${fn.name}: no POST route found to fuzz`);
        continue;
      }
      const samples = fc.sample(bodies, { numRuns: CASES_PER_FUNCTION, seed: SEED });
      let current = await snapshot(user.id);
      let serverErrors = 0;
      for (const [index, body] of samples.entries()) {
        const answer = await suite.send(target.path, {
          method: "POST",
          headers: jsonHeaders(user.authorization),
          body,
        });
        if (answer.status >= 500) serverErrors++;
        const wrong = problem(answer, target.proxy);
        const after = await snapshot(user.id);
        const changed = answer.status >= 400 && after !== current
          ? changedTables(current, after)
          : null;
        current = after;
        if ((wrong || changed) && failures.length < 20) {
          failures.push(
            `${fn.name} case ${index} (seed ${SEED}): ${
              wrong ?? `rejected call changed ${changed}`
            } -> ` +
              `${answer.status} ${answer.text.slice(0, 160)} <- ${body.slice(0, 160)}`,
          );
        }
      }
      recordCases(fn.name, samples.length, serverErrors);
    }
    assertEquals(await snapshot(victim.id), victimBefore);
    assertEquals(failures, []);
  },
);

steps.test("a body over the size limit gets 413 from every function, streamed or not", async () => {
  const failures: string[] = [];
  for (const fn of suite.functions) {
    const target = await fuzzTarget(fn.name);
    if (!target) continue;
    // The proxies accept up to 10 MB (chat requests with images); every other function 1 MB.
    const limit = target.proxy ? 10 * 1024 * 1024 : 1024 * 1024;
    const big = JSON.stringify({ action: "list", pad: "x".repeat(limit) });
    const sized = await suite.send(target.path, {
      method: "POST",
      headers: jsonHeaders(user.authorization),
      body: big,
    });
    const bytes = new TextEncoder().encode(big);
    const streamed = await suite.send(target.path, {
      method: "POST",
      headers: jsonHeaders(user.authorization),
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 65_536) {
            controller.enqueue(bytes.slice(i, i + 65_536));
          }
          controller.close();
        },
      }),
    });
    for (const [how, answer] of [["content-length", sized], ["chunked", streamed]] as const) {
      const code = isEnvelope(answer.json) ? answer.json.error.code : null;
      if (answer.status !== 413 || code !== "PAYLOAD_TOO_LARGE") {
        failures.push(`${fn.name} (${how}): ${answer.status} ${answer.text.slice(0, 120)}`);
      }
    }
    recordCases(fn.name, 2, [sized, streamed].filter((a) => a.status >= 500).length);
  }
  assertEquals(failures, []);
});

steps.test("deep nesting, control characters and look-alike services never get a 5xx", async () => {
  const depth = 50_000;
  const hostileBodies = [
    "[".repeat(depth) + "]".repeat(depth),
    '{"a":'.repeat(depth) + "1" + "}".repeat(depth),
    JSON.stringify({
      action: "set",
      service: "openai",
      value: "sk-\u0000\u0001\u0002\u0003\u001f",
    }),
    JSON.stringify({ action: "set", service: "\u043epenai", value: "sk-lookalike-00000000000" }),
    JSON.stringify({ action: "get_status", service: "openai' or '1'='1" }),
    JSON.stringify({ provider: "\u043epenai", input: "x", model: "gpt-4o-mini" }),
    '{"action":"set","service":"openai","value":"' + "\\u0000".repeat(1000) + '"}',
    '{"action":"list","__proto__":{"admin":true}}',
    "\u0000\u0000\u0000",
  ];
  const failures: string[] = [];
  for (const fn of suite.functions) {
    const target = await fuzzTarget(fn.name);
    if (!target) continue;
    let serverErrors = 0;
    let current = await snapshot(user.id);
    for (const body of hostileBodies) {
      const answer = await suite.send(target.path, {
        method: "POST",
        headers: jsonHeaders(user.authorization),
        body,
      });
      if (answer.status >= 500) serverErrors++;
      const wrong = problem(answer, target.proxy);
      const after = await snapshot(user.id);
      if (answer.status >= 400 && after !== current) {
        failures.push(
          `${fn.name}: rows changed by a rejected call ${answer.status} <- ${body.slice(0, 80)}`,
        );
      }
      current = after;
      if (wrong) failures.push(`${fn.name}: ${wrong} -> ${answer.status} <- ${body.slice(0, 60)}`);
    }
    recordCases(fn.name, hostileBodies.length, serverErrors);
  }
  // Look-alike and SQL-looking provider names in proxy paths are unknown routes, not openai.
  for (const name of ["%D0%BEpenai", "openai'--", "OPENAI", "openai%00", "..%2Fopenai"]) {
    const answer = await suite.send(`/functions/v1/llm-proxy/${name}/v1/chat/completions`, {
      method: "POST",
      headers: jsonHeaders(user.authorization),
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
    });
    if (answer.status !== 404) {
      failures.push(`llm-proxy/${name}: ${answer.status} ${answer.text.slice(0, 80)}`);
    }
  }
  assertEquals(failures, []);
});

/** Sends raw bytes to the stack and returns every status line it answered with. */
async function rawExchange(bytes: string): Promise<number[]> {
  const url = new URL(suite.stack.url);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  try {
    const chunks: string[] = [];
    const buffer = new Uint8Array(65_536);
    const deadline = Date.now() + 3_000;
    try {
      await conn.write(new TextEncoder().encode(bytes));
      while (Date.now() < deadline) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const read = await Promise.race([
          conn.read(buffer),
          new Promise<"idle">((resolve) => timer = setTimeout(() => resolve("idle"), 500)),
        ]).finally(() => clearTimeout(timer));
        if (read === "idle" || read === null) break;
        chunks.push(new TextDecoder().decode(buffer.subarray(0, read)));
      }
    } catch (error) {
      // The server closing or resetting the connection is a fine way to refuse.
      if (
        !(error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe)
      ) {
        throw error;
      }
    }
    const text = chunks.join("");
    suite.scanner.capture("raw response", text);
    return [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed by the server.
    }
  }
}

steps.test("header smuggling attempts never get a 5xx and the server keeps serving", async () => {
  const path = "/functions/v1/credentials-manager";
  const smuggled = `GET /functions/v1/credentials-manager HTTP/1.1\r\nHost: x\r\n\r\n`;
  const head = (extra: string) =>
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${user.authorization}\r\n` +
    `Content-Type: application/json\r\n${extra}\r\n`;
  const attempts = [
    // CL.TE: the front end trusts Content-Length, the back end Transfer-Encoding.
    head("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n" + smuggled,
    // TE.CL
    head("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n") +
    `${(smuggled.length + 2).toString(16)}\r\n{}${smuggled}\r\n0\r\n\r\n`,
    // Two different Content-Length values.
    head("Content-Length: 2\r\nContent-Length: 40\r\n") + "{}" + smuggled,
    // An obfuscated Transfer-Encoding.
    head("Content-Length: 2\r\nTransfer-Encoding : chunked\r\n") + "{}" + smuggled,
    head("Transfer-Encoding: xchunked\r\n") + "{}",
  ];
  const statuses: number[][] = [];
  for (const attempt of attempts) statuses.push(await rawExchange(attempt));
  recordCases(
    "credentials-manager",
    attempts.length,
    statuses.flat().filter((s) => s >= 500).length,
  );
  assertEquals(statuses.flat().filter((s) => s >= 500), [], JSON.stringify(statuses));
  const health = await suite.send("/health");
  assertEquals(health.status, 200);
});

steps.test("fuzzing leaks no secret, mixes up no key and loses no stored credential", async () => {
  // The bystander never called anything: a request carrying their key would be a mix-up.
  const upstream = suite.fake.requests.filter((r) => suite.fake.keyOf(r) !== null);
  const mixUps = upstream.filter((r) => suite.fake.keyOf(r) === victim.providerKey).length;
  recordMixUps(upstream.length, mixUps);
  assertEquals(mixUps, 0);
  const stored = await suite.stack.runtime.vault.lookup(victim.id, "openai");
  assertEquals(stored.api_key, victim.providerKey);
  await suite.close();
  suite.scanner.record();
  assertEquals(suite.scanner.leaks(), []);
});
