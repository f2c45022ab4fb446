/**
 * Faults between the functions and the database: Postgres hangs, answers slowly, or goes away.
 * A request then gets 503 CREDENTIALS_UNAVAILABLE in bounded time, never a key from the
 * environment, and the service recovers by itself when the database is back. A TCP forwarder
 * stands in front of the real Postgres, so this needs DATABASE_URL: on PGlite (in-process,
 * nothing to cut) the file is reported as ignored, not passed. Its cases are steps of one
 * sanitized test, and the stacks it opens are closed in `finally` even when a case fails.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_URL, openTestDatabase } from "../support/database.ts";
import {
  ENCRYPTION_KEY,
  jsonRequest,
  JWT_SECRET,
  newUser,
  testRuntime,
  type TestUser,
} from "../support/runtime.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fakeUpstream.ts";
import { connectPostgres, type Database } from "../../supabase/functions/_shared/core/db.ts";
import { storeCredential } from "../../supabase/functions/_shared/vault/keyWriter.ts";
import { createHandler as proxyHandler } from "../../supabase/functions/openai-proxy/handler.ts";
import { createHandler as managerHandler } from "../../supabase/functions/credentials-manager/handler.ts";
import { type LocalStack, startLocalStack } from "../../local/stack.ts";
import { declaredFunctions } from "../../local/functionRegistry.ts";
import { integrationSuite } from "../support/suite.ts";
import { recordCases } from "./figures.ts";
import { createLeakScanner } from "./leakScanner.ts";
import { startTcpForwarder, type TcpForwarder } from "./tcpForwarder.ts";

const LOOKUP_TIMEOUT_MS = 700;
/** How late an answer may come after the timeout: scheduling on a busy 2-core machine. */
const SLACK_MS = 1_000;
/** With every setting at its default, each function answers within this during an outage. */
const OUTAGE_ANSWER_MS = 6_000;

/** A Postgres pool reached through a forwarder that the test can pause, slow down and kill. */
function faultyPostgres(options: { max?: number } = {}): {
  forwarder: TcpForwarder;
  db: Database;
} {
  const target = new URL(DATABASE_URL!);
  const forwarder = startTcpForwarder({
    hostname: target.hostname === "localhost" ? "127.0.0.1" : target.hostname,
    port: Number(target.port || 5432),
  });
  const viaForwarder = new URL(DATABASE_URL!);
  viaForwarder.hostname = "127.0.0.1";
  viaForwarder.port = String(forwarder.port);
  return { forwarder, db: connectPostgres(viaForwarder.href, { max: options.max }) };
}

/** The fake answers chat, embeddings and models for any key it was told is valid. */
function fakeWithEmbeddings(): FakeUpstream {
  const fake = startFakeUpstream();
  fake.route("POST /v1/embeddings", (_request, recorded) => {
    const body = JSON.parse(recorded.body);
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    return Response.json({
      object: "list",
      data: inputs.map((_: unknown, index: number) => ({
        object: "embedding",
        index,
        embedding: [0.1],
      })),
      model: "text-embedding-3-small",
      usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
    });
  });
  return fake;
}

// --- The proxy and credentials-manager with cold caches: hung, slow, dropped ---------------

function openCold() {
  const { forwarder, db: faultyDb } = faultyPostgres({ max: 2 });
  const fake = startFakeUpstream();
  const runtime = testRuntime(faultyDb, {
    env: {
      CREDENTIALS_LOOKUP_TIMEOUT_MS: String(LOOKUP_TIMEOUT_MS),
      CREDENTIALS_CACHE_TTL_MS: "1",
      OPENAI_BASE_URL: fake.baseUrl,
    },
  });
  return {
    forwarder,
    faultyDb,
    fake,
    runtime,
    proxy: proxyHandler(runtime),
    manager: managerHandler(runtime),
  };
}
let db: Database;
let scanner: ReturnType<typeof createLeakScanner>;
let cold: ReturnType<typeof openCold> | null = null;
let warm: Awaited<ReturnType<typeof openWarm>> | null = null;
/** Closes both faulty stacks (once), so the last case can scan what their closing logged. */
let closeStacks: () => Promise<void> = () => Promise.resolve();

/** `close`, run at most once: from the last case, or from the suite's finally. */
function closeOnce(close: () => Promise<void>): () => Promise<void> {
  let closing: Promise<void> | null = null;
  return () => closing ??= close();
}

const steps = integrationSuite("faults", {
  // A TCP forwarder needs a Postgres to stand in front of; PGlite runs in-process.
  ignore: !DATABASE_URL,
  async setup(onTeardown) {
    scanner = createLeakScanner();
    onTeardown(scanner.captureLogs());
    db = await openTestDatabase();
    onTeardown(() => db.close());
    const c = cold = openCold();
    const closeCold = closeOnce(async () => {
      await c.faultyDb.close();
      c.forwarder.close();
      await c.fake.close();
    });
    onTeardown(closeCold);
    const w = warm = await openWarm();
    const closeWarm = closeOnce(async () => {
      await w.stack.close();
      await w.faultyDb.close();
      w.forwarder.close();
      await w.fake.close();
      await Deno.remove(w.dataDir, { recursive: true });
    });
    onTeardown(closeWarm);
    closeStacks = async () => {
      await closeWarm();
      await closeCold();
    };
  },
});

const globalKey = `sk-global-${crypto.randomUUID()}`;
let user: TestUser;
let userKey = "";
let cases = 0;
let serverErrors = 0;

const chat = async () => {
  const started = performance.now();
  const response = await cold!.proxy(
    jsonRequest("http://local/openai-proxy/v1/chat/completions", {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
    }, user.authorization),
  );
  const text = await response.text();
  scanner.capture("response openai-proxy", text);
  cases++;
  if (response.status >= 500 && response.status !== 503) serverErrors++;
  return { status: response.status, text, ms: performance.now() - started };
};
const status = async () => {
  const started = performance.now();
  const response = await cold!.manager(
    jsonRequest("http://local/credentials-manager", { action: "list" }, user.authorization),
  );
  const text = await response.text();
  scanner.capture("response credentials-manager", text);
  cases++;
  if (response.status >= 500 && response.status !== 503) serverErrors++;
  return { status: response.status, text, ms: performance.now() - started };
};

/** Both functions answer 503 CREDENTIALS_UNAVAILABLE within the timeout, using no key. */
const assertUnavailable = async (what: string) => {
  const before = cold!.fake.requests.length;
  for (const answer of [await chat(), await status()]) {
    assertEquals(answer.status, 503, `${what}: ${answer.text}`);
    assertEquals(JSON.parse(answer.text).error.code, "CREDENTIALS_UNAVAILABLE");
    assert(answer.ms < LOOKUP_TIMEOUT_MS + SLACK_MS, `${what}: answered after ${answer.ms} ms`);
  }
  assertEquals(cold!.fake.requests.length, before, `${what}: a request went upstream`);
};

/** Waits until the proxy works again; returns how long recovery took. */
const assertRecovers = async (what: string): Promise<number> => {
  const started = performance.now();
  while (performance.now() - started < 15_000) {
    const answer = await chat();
    if (answer.status === 200) {
      assertEquals((await status()).status, 200);
      return performance.now() - started;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${what}: the service did not recover within 15 s`);
};

steps.test(
  "faults: a healthy database through the forwarder serves the user's own key",
  async () => {
    Deno.env.set("OPENAI_API_KEY", globalKey);
    user = await newUser(db);
    userKey = `sk-fault-${crypto.randomUUID()}`;
    for (
      const [label, value] of [["user key", userKey], ["global key", globalKey], [
        "encryption passphrase",
        ENCRYPTION_KEY,
      ], ["user token", user.token]]
    ) scanner.addSecret(label, value);
    cold!.fake.validKeys.add(userKey);
    cold!.fake.validKeys.add(globalKey);
    await storeCredential(
      db,
      { id: user.id, claims: { sub: user.id } },
      cold!.runtime.config,
      "openai",
      "api_key",
      userKey,
    );
    const answer = await chat();
    assertEquals(answer.status, 200, answer.text);
    assertEquals(cold!.fake.keyOf(cold!.fake.requests.at(-1)!), userKey);
  },
);

steps.test(
  "faults: a hung database gives CREDENTIALS_UNAVAILABLE in time and recovers",
  async () => {
    cold!.forwarder.pause();
    await assertUnavailable("paused");
    cold!.forwarder.resume();
    await assertRecovers("after the pause");
  },
);

steps.test(
  "faults: a slow database gives CREDENTIALS_UNAVAILABLE in time and recovers",
  async () => {
    cold!.forwarder.delay(LOOKUP_TIMEOUT_MS * 3);
    await assertUnavailable("slow");
    cold!.forwarder.resume();
    await assertRecovers("after the slow period");
  },
);

steps.test(
  "faults: a database that goes away gives CREDENTIALS_UNAVAILABLE and comes back",
  async () => {
    cold!.forwarder.kill();
    await assertUnavailable("killed");
    cold!.forwarder.restart();
    const ms = await assertRecovers("after the restart");
    console.log(`  recovered ${Math.round(ms)} ms after the database came back`);
  },
);

// --- Every function, caches warm, settings at their defaults: dropped and hung -------------

interface Probe {
  fn: string;
  method: "GET" | "POST";
  sub: string;
  body?: unknown;
}

/** One request per declared function that reaches the database when its caches are cold. */
function probes(functions: string[], chatBody: Record<string, unknown>): Probe[] {
  const known: Record<string, Omit<Probe, "fn">> = {
    "batch-embeddings": { method: "POST", sub: "", body: { inputs: ["a", "b"] } },
    "conversation-cancel": { method: "POST", sub: "", body: { run_id: crypto.randomUUID() } },
    "conversation-manager": { method: "POST", sub: "", body: { action: "list" } },
    "conversation-run": { method: "POST", sub: "", body: chatBody },
    "credentials-manager": { method: "POST", sub: "", body: { action: "list" } },
    execute: {
      method: "POST",
      sub: "",
      body: { shareToken: `shr_${"A".repeat(43)}`, runId: crypto.randomUUID(), request: chatBody },
    },
    "fetch-provider-models": { method: "POST", sub: "", body: { provider: "openai" } },
    flows: { method: "POST", sub: "", body: { action: "list" } },
    "generate-embedding": { method: "POST", sub: "", body: { input: "hello" } },
    "llm-config": { method: "GET", sub: "/me" },
    "llm-proxy": { method: "POST", sub: "/openai/v1/chat/completions", body: chatBody },
    "manus-key-validate": { method: "POST", sub: "", body: {} },
    "openai-proxy": { method: "POST", sub: "/v1/chat/completions", body: chatBody },
  };
  return functions.map((fn) => {
    if (!known[fn]) throw new Error(`no fault probe for the function ${fn}: add one`);
    return { fn, ...known[fn] };
  });
}

interface Outcome {
  fn: string;
  status: number;
  code: string | null;
  ms: number;
  text: string;
}

async function openWarm() {
  const { forwarder, db: faultyDb } = faultyPostgres();
  const fake = fakeWithEmbeddings();
  const dataDir = await Deno.makeTempDir({ prefix: "byok-faults-" });
  const stack: LocalStack = await startLocalStack({
    dataDir,
    port: 0,
    db: faultyDb,
    env: {
      OPENAI_BASE_URL: fake.baseUrl,
      JWT_SECRET,
      CREDENTIALS_ENCRYPTION_KEY: ENCRYPTION_KEY,
    },
  });
  const functions = (await declaredFunctions()).map((f) => f.name);
  return { forwarder, faultyDb, fake, stack, dataDir, functions };
}

async function callAll(owner: TestUser): Promise<Outcome[]> {
  const chatBody = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };
  return await Promise.all(
    probes(warm!.functions, chatBody).map(async (probe) => {
      const started = performance.now();
      const response = await fetch(`${warm!.stack.functionsUrl}/${probe.fn}${probe.sub}`, {
        method: probe.method,
        headers: { authorization: owner.authorization, "content-type": "application/json" },
        body: probe.body === undefined ? undefined : JSON.stringify(probe.body),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      const ms = performance.now() - started;
      scanner.capture(`response ${probe.fn}`, text);
      let code: string | null = null;
      try {
        code = JSON.parse(text)?.error?.code ?? null;
      } catch {
        // A stream or another non-JSON body.
      }
      return { fn: probe.fn, status: response.status, code, ms, text };
    }),
  );
}

function printOutcomes(what: string, outcomes: Outcome[]): void {
  console.log(`  ${what}:`);
  for (const o of outcomes) {
    console.log(`    ${o.fn.padEnd(22)} ${o.status} ${o.code ?? ""} in ${Math.round(o.ms)} ms`);
  }
}

/**
 * Every function answers within the bound: 503 with the envelope, or what it answered healthy
 * when it could answer from its caches alone (the proxies with a cached key).
 */
function assertOutageAnswers(what: string, outcomes: Outcome[], healthy: Outcome[]): void {
  outcomes.forEach((o, i) => {
    cases++;
    if (o.status >= 500 && o.status !== 503) serverErrors++;
    assert(o.ms < OUTAGE_ANSWER_MS, `${what}: ${o.fn} answered after ${Math.round(o.ms)} ms`);
    if (o.status === healthy[i].status && o.code === healthy[i].code) return;
    assertEquals([o.fn, o.status, o.code], [o.fn, 503, "CREDENTIALS_UNAVAILABLE"], o.text);
  });
  assert(
    outcomes.filter((o) => o.status === 503).length >= outcomes.length / 2,
    `${what}: most functions need the database and must say it is unavailable`,
  );
}

async function warmedOwner(): Promise<TestUser> {
  const owner = await newUser(db);
  scanner.addSecret("owner token", owner.token);
  const key = `sk-warm-${crypto.randomUUID()}`;
  scanner.addSecret("owner key", key);
  warm!.fake.validKeys.add(key);
  const stored = await fetch(`${warm!.stack.functionsUrl}/credentials-manager`, {
    method: "POST",
    headers: { authorization: owner.authorization, "content-type": "application/json" },
    body: JSON.stringify({ action: "set", service: "openai", value: key }),
  });
  assertEquals(stored.status, 200, await stored.text());
  return owner;
}

/** Warms every cache, cuts the database with `fault`, checks every answer, then heals it. */
async function outage(what: string, fault: () => void, heal: () => void): Promise<void> {
  const owner = await warmedOwner();
  const healthy = await callAll(owner);
  for (const o of healthy) assert(o.status < 500, `healthy: ${o.fn} answered ${o.text}`);
  fault();
  let during: Outcome[];
  try {
    during = await callAll(owner);
  } finally {
    heal();
  }
  printOutcomes(`${what}, caches warm`, during);
  assertOutageAnswers(what, during, healthy);

  // Back without a restart: every function answers as it did before the outage.
  const started = performance.now();
  let after: Outcome[] = [];
  while (performance.now() - started < 20_000) {
    after = await callAll(owner);
    if (after.every((o, i) => o.status === healthy[i].status)) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assertEquals(after.map((o) => [o.fn, o.status]), healthy.map((o) => [o.fn, o.status]));
  console.log(
    `  every function answered as before ${Math.round(performance.now() - started)} ms after`,
  );
}

steps.test(
  "faults: with the database dropped, every function answers 503 within 6 s, caches warm",
  async () => {
    await outage("dropped", () => warm!.forwarder.kill(), () => warm!.forwarder.restart());
  },
);

steps.test(
  "faults: with the database hung, every function answers 503 within 6 s, caches warm",
  async () => {
    await outage("hung", () => warm!.forwarder.pause(), () => warm!.forwarder.resume());
  },
);

steps.test("faults: no request ever used the environment's key, and nothing leaked", async () => {
  Deno.env.delete("OPENAI_API_KEY");
  try {
    assertEquals(cold!.fake.requests.filter((r) => cold!.fake.keyOf(r) === globalKey).length, 0);
    assert(cold!.fake.requests.every((r) => cold!.fake.keyOf(r) === userKey));
    recordCases("every function (db faults)", cases, serverErrors);
    assertEquals(serverErrors, 0);
  } finally {
    await closeStacks();
  }
  scanner.record();
  assertEquals(scanner.leaks(), []);
});
