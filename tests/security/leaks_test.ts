/**
 * The leak scanner's own proof, then a run through every path that handles a secret (storing,
 * validating and using keys, publishing and using share tokens, error paths that see a key) with
 * every log line and response body scanned. Ends by checking the leaks the earlier security
 * files recorded: the suite's total must be 0.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND } from "../support/database.ts";
import { integrationSuite } from "../support/suite.ts";
import { log } from "../../supabase/functions/_shared/core/log.ts";
import { readFigures } from "./figures.ts";
import { createLeakScanner } from "./leakScanner.ts";
import {
  isEnvelope,
  jsonHeaders,
  type SecurityStack,
  type SecurityUser,
  startSecurityStack,
} from "./securityStack.ts";

let suite: SecurityStack;
const steps = integrationSuite("leaks", {
  // The stack captures console output for the leak scanner, and its last case closes it before
  // scanning; the closer here makes sure it is closed when a case fails first.
  async setup(onTeardown) {
    suite = await startSecurityStack();
    onTeardown(() => suite.close());
  },
});

steps.test(
  "leak scanner finds an exact secret, an 8-character run of it, and ignores public prefixes",
  () => {
    const scanner = createLeakScanner();
    const secret = "sk-proj-Zq81xWv3Lm0PaaR7";
    scanner.addSecret("key", secret, "sk-proj-");
    scanner.capture("clean", `{"last_four":"aaR7","prefix":"sk-proj-"}`);
    assertEquals(scanner.leaks(), []);
    scanner.capture("exact", `key=${secret}`);
    scanner.capture("run", `..."xWv3Lm0P"...`);
    assertEquals(scanner.leaks().map((l) => [l.where, l.match]), [["exact", "exact"], [
      "run",
      "run at 12",
    ]]);
    assertEquals(scanner.scanned(), 3);
    // A secret registered late (a share token minted by the call that logged it) is still found
    // in what was captured before, without its public prefix.
    const token = "shr_Vb8rT2qLxZ0mN4kP7sW1yE6uH3jD9cF5gA0bC2dE4fG";
    scanner.capture("early log", `flow shared t=${token.slice(4)}`);
    scanner.addSecret("share token", token, "shr_");
    assertEquals(scanner.leaks().at(-1)?.where, "early log");
    return Promise.resolve();
  },
);

steps.test("log redaction masks keys, tokens and credential fields before a line is written", () => {
  const scanner = createLeakScanner();
  const key = `sk-live-${crypto.randomUUID()}`;
  const custom = `custom-secret-${crypto.randomUUID()}`;
  scanner.addSecret("key", key, "sk-live-");
  scanner.addSecret("custom", custom);
  const restore = scanner.captureLogs();
  try {
    log.error("upstream said", { message: `Incorrect API key provided: ${key}` });
    log.warn("request", { headers: { authorization: `Bearer ${key}` } });
    log.info("body", { api_key: custom, "x-api-key": custom });
  } finally {
    restore();
  }
  assertEquals(scanner.leaks(), []);
  assertEquals(scanner.scanned(), 3);
  return Promise.resolve();
});

steps.test("a secret printed with console.* instead of the logger is found too", () => {
  const scanner = createLeakScanner();
  const token = `shr_${crypto.randomUUID().replaceAll("-", "")}`;
  scanner.addSecret("share token", token, "shr_");
  // What the capture passes the lines on to: nothing here, so the test prints no token.
  const { log: printLine, error: printError } = console;
  console.log = console.error = () => {};
  const restore = scanner.captureLogs();
  try {
    console.log("published", token.slice(4));
    console.error({ flow: { token: token.slice(4, 20) } });
  } finally {
    restore();
    console.log = printLine;
    console.error = printError;
  }
  assertEquals(scanner.leaks().map((l) => l.where), ["console.log", "console.error"]);
  return Promise.resolve();
});

let alice: SecurityUser;
let bob: SecurityUser;

const post = (fn: string, body: unknown, user: SecurityUser) =>
  suite.send(`/functions/v1/${fn}`, {
    method: "POST",
    headers: jsonHeaders(user.authorization),
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

steps.test(
  `keys stored, validated and used never appear in a response or a log (${DATABASE_KIND})`,
  async () => {
    alice = await suite.newUser({ providerKey: true });
    bob = await suite.newUser({ providerKey: true });
    const key = alice.providerKey!;
    // A provider that echoes the key it refused, as some do in their error messages.
    suite.fake.route("GET /v1/models", (_request, recorded) => {
      const sent = suite.fake.keyOf(recorded) ?? "";
      if (suite.fake.validKeys.has(sent) && sent !== key) {
        return Response.json({ object: "list", data: [] });
      }
      return Response.json({ error: { message: `Incorrect API key provided: ${sent}` } }, {
        status: 401,
      });
    });
    const answers = [
      await post("credentials-manager", { action: "list" }, alice),
      await post("credentials-manager", { action: "get_status", service: "openai" }, alice),
      await post("credentials-manager", { action: "validate", service: "openai" }, alice),
      await suite.send("/functions/v1/openai-proxy/v1/models", {
        headers: { authorization: alice.authorization },
      }),
      await post("openai-proxy/v1/chat/completions", {
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "hello" }],
      }, alice),
      // The key in places it should never be: unknown fields, wrong service, broken JSON.
      await post("credentials-manager", { action: "list", api_key: key }, alice),
      await post("credentials-manager", {
        action: "set",
        service: "gemini",
        key: "base_url",
        value: key,
      }, alice),
      await post(
        "credentials-manager",
        `{"action":"set","service":"openai","value":"${key}"`,
        alice,
      ),
      await post("generate-embedding", { input: key }, alice),
      await post("conversation-run", {
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "hi" }],
        key,
      }, alice),
    ];
    suite.fake.unroute("GET /v1/models");
    assert(answers.every((a) => a.status < 500), JSON.stringify(answers.map((a) => a.status)));
    assertEquals(answers[2].status, 200);
    assertEquals(isEnvelope(answers[3].json) && answers[3].json.error.code, "OPENAI_INVALID_KEY");
    assertEquals(suite.scanner.leaks(), []);
  },
);

steps.test(
  "share tokens are shown once at publish and never again in a response or a log",
  async () => {
    const created = await post("flows", {
      action: "create",
      name: "leak check",
      use_owner_keys: true,
    }, alice);
    if (created.status === 404 || !(created.json as { flow?: unknown })?.flow) {
      console.log(`  flows not available (${created.status}); share tokens not exercised`);
      return;
    }
    const flowId = (created.json as { flow: { id: string } }).flow.id;
    // The publish answer carries the token by design, so it is read without the scanner.
    const published = await (await fetch(`${suite.stack.url}/functions/v1/flows`, {
      method: "POST",
      headers: jsonHeaders(alice.authorization),
      body: JSON.stringify({ action: "publish", flow_id: flowId }),
    })).json() as { live_id: string; share_token: string };
    assert(published.share_token?.startsWith("shr_"), JSON.stringify(published).slice(0, 80));
    suite.scanner.addSecret("share token", published.share_token, "shr_");
    const answers = [
      await post("flows", { action: "list" }, alice),
      await post("flows", {
        action: "load_live",
        live_id: published.live_id,
        share_token: published.share_token,
      }, bob),
      await post("flows", {
        action: "load_live",
        live_id: published.live_id,
        share_token: published.share_token.slice(0, -2) + "xx",
      }, bob),
      await post("execute", {
        shareToken: published.share_token,
        runId: crypto.randomUUID(),
        provider: "openai",
        request: { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] },
      }, bob),
      await post("execute", {
        shareToken: published.share_token,
        runId: crypto.randomUUID(),
        request: { model: "gpt-4o-mini", messages: [], api_key: bob.providerKey },
      }, bob),
    ];
    assert(
      answers.every((a) => a.status < 500),
      JSON.stringify(answers.map((a) => [a.status, a.text.slice(0, 80)])),
    );
    assertEquals(suite.scanner.leaks(), []);
  },
);

steps.test("no secret leaked in this file or any earlier security file", async () => {
  await suite.close();
  suite.scanner.record();
  assertEquals(suite.scanner.leaks(), []);
  const figures = readFigures();
  assert(figures.scanned >= suite.scanner.scanned());
  assertEquals(figures.leaks, 0);
});
