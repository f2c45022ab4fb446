/**
 * Faults between the functions and the database: Postgres hangs, answers slowly, or goes away.
 * A request then gets 503 CREDENTIALS_UNAVAILABLE within the lookup timeout, never a key from
 * the environment, and the service recovers by itself when the database is back. A TCP
 * forwarder stands in front of the real Postgres, so this needs DATABASE_URL (PGlite runs
 * in-process and cannot be cut off).
 */
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_URL, openTestDatabase } from "../support/database.ts";
import {
  dbTest,
  ENCRYPTION_KEY,
  jsonRequest,
  newUser,
  testRuntime,
  type TestUser,
} from "../support/runtime.ts";
import { startFakeUpstream } from "../support/fakeUpstream.ts";
import { connectPostgres, type Database } from "../../supabase/functions/_shared/db.ts";
import { storeCredential } from "../../supabase/functions/_shared/credentialStore.ts";
import { createHandler as proxyHandler } from "../../supabase/functions/openai-proxy/handler.ts";
import { createHandler as managerHandler } from "../../supabase/functions/credentials-manager/handler.ts";
import { recordCases } from "./figures.ts";
import { createLeakScanner } from "./leakScanner.ts";
import { startTcpForwarder, type TcpForwarder } from "./tcpForwarder.ts";

const LOOKUP_TIMEOUT_MS = 700;
/** How late an answer may come after the timeout: scheduling on a busy 2-core machine. */
const SLACK_MS = 1_000;

if (!DATABASE_URL) {
  dbTest(
    "database faults are skipped: set DATABASE_URL (PGlite is in-process, nothing to cut)",
    () => {
      console.log("  skipped: the fault tests need a real Postgres in DATABASE_URL");
      return Promise.resolve();
    },
  );
} else {
  const scanner = createLeakScanner();
  const restoreLogs = scanner.captureLogs();
  const db = await openTestDatabase();
  const target = new URL(DATABASE_URL);
  const forwarder: TcpForwarder = startTcpForwarder({
    hostname: target.hostname === "localhost" ? "127.0.0.1" : target.hostname,
    port: Number(target.port || 5432),
  });
  const viaForwarder = new URL(DATABASE_URL);
  viaForwarder.hostname = "127.0.0.1";
  viaForwarder.port = String(forwarder.port);
  const faultyDb: Database = connectPostgres(viaForwarder.href, {
    max: 2,
    connectTimeoutSeconds: 2,
  });
  const fake = startFakeUpstream();
  const runtime = testRuntime(faultyDb, {
    env: {
      CREDENTIALS_LOOKUP_TIMEOUT_MS: String(LOOKUP_TIMEOUT_MS),
      CREDENTIALS_CACHE_TTL_MS: "1",
      OPENAI_BASE_URL: fake.baseUrl,
    },
  });
  const proxy = proxyHandler(runtime);
  const manager = managerHandler(runtime);
  const globalKey = `sk-global-${crypto.randomUUID()}`;
  let user: TestUser;
  let userKey = "";
  let cases = 0;
  let serverErrors = 0;

  const chat = async () => {
    const started = performance.now();
    const response = await proxy(
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
    const response = await manager(
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
    const before = fake.requests.length;
    for (const answer of [await chat(), await status()]) {
      assertEquals(answer.status, 503, `${what}: ${answer.text}`);
      assertEquals(JSON.parse(answer.text).error.code, "CREDENTIALS_UNAVAILABLE");
      assert(answer.ms < LOOKUP_TIMEOUT_MS + SLACK_MS, `${what}: answered after ${answer.ms} ms`);
    }
    assertEquals(fake.requests.length, before, `${what}: a request went upstream`);
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

  dbTest("faults: a healthy database through the forwarder serves the user's own key", async () => {
    Deno.env.set("OPENAI_API_KEY", globalKey);
    user = await newUser(db);
    userKey = `sk-fault-${crypto.randomUUID()}`;
    for (
      const [label, value] of [["user key", userKey], ["global key", globalKey], [
        "encryption passphrase",
        ENCRYPTION_KEY,
      ], ["user token", user.token]]
    ) scanner.addSecret(label, value);
    fake.validKeys.add(userKey);
    fake.validKeys.add(globalKey);
    await storeCredential(
      db,
      { id: user.id, claims: { sub: user.id } },
      runtime.config,
      "openai",
      "api_key",
      userKey,
    );
    const answer = await chat();
    assertEquals(answer.status, 200, answer.text);
    assertEquals(fake.keyOf(fake.requests.at(-1)!), userKey);
  });

  dbTest("faults: a hung database gives CREDENTIALS_UNAVAILABLE in time and recovers", async () => {
    forwarder.pause();
    await assertUnavailable("paused");
    forwarder.resume();
    await assertRecovers("after the pause");
  });

  dbTest("faults: a slow database gives CREDENTIALS_UNAVAILABLE in time and recovers", async () => {
    forwarder.delay(LOOKUP_TIMEOUT_MS * 3);
    await assertUnavailable("slow");
    forwarder.resume();
    await assertRecovers("after the slow period");
  });

  dbTest(
    "faults: a database that goes away gives CREDENTIALS_UNAVAILABLE and comes back",
    async () => {
      forwarder.kill();
      await assertUnavailable("killed");
      forwarder.restart();
      const ms = await assertRecovers("after the restart");
      console.log(`  recovered ${Math.round(ms)} ms after the database came back`);
    },
  );

  dbTest("faults: no request ever used the environment's key, and nothing leaked", async () => {
    Deno.env.delete("OPENAI_API_KEY");
    assertEquals(fake.requests.filter((r) => fake.keyOf(r) === globalKey).length, 0);
    assert(fake.requests.every((r) => fake.keyOf(r) === userKey));
    recordCases("openai-proxy + credentials-manager (db faults)", cases, serverErrors);
    assertEquals(serverErrors, 0);
    restoreLogs();
    await faultyDb.close();
    forwarder.close();
    await fake.close();
    await db.close();
    scanner.record();
    assertEquals(scanner.leaks(), []);
  });
}
