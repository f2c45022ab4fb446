import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { createHandler } from "../../supabase/functions/credentials-manager/handler.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fakeUpstream.ts";
import { captureLogs, jsonRequest, newUser, signToken, testRuntime } from "../support/runtime.ts";
import { integrationSuite } from "../support/suite.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import type { Runtime } from "../../supabase/functions/_shared/core/runtime.ts";

let db: Database;
let fake: FakeUpstream;
let runtime: Runtime;
let handler: ReturnType<typeof createHandler>;
const suite = integrationSuite("credentials-manager", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
    fake = startFakeUpstream();
    onTeardown(() => fake.close());
    runtime = testRuntime(db, {
      env: { OPENAI_BASE_URL: fake.baseUrl, ANTHROPIC_BASE_URL: fake.baseUrl },
    });
    handler = createHandler(runtime);
  },
});
const URL_ = "http://local/credentials-manager";

async function call(body: unknown, authorization?: string) {
  const response = await handler(jsonRequest(URL_, body, authorization));
  const text = await response.text();
  return { status: response.status, text, json: JSON.parse(text) };
}

const aliceKey = `sk-alice-${crypto.randomUUID()}`;

suite.test(
  `credentials-manager stores a key and reports only its status (${DATABASE_KIND})`,
  async () => {
    const alice = await newUser(db);
    const bob = await newUser(db);
    const { result, lines } = await captureLogs(async () => {
      const set = await call(
        { action: "set", service: "openai", key: "api_key", value: aliceKey },
        alice.authorization,
      );
      const status = await call({ action: "get_status", service: "openai" }, alice.authorization);
      const list = await call({ action: "list" }, alice.authorization);
      return { set, status, list };
    });
    assertEquals(result.set.status, 200);
    assertEquals(result.status.json.status, { api_key: true });
    assertEquals(result.status.json.last_four, aliceKey.slice(-4));
    assertEquals(result.list.json.services.openai.status.api_key, true);
    assertEquals(result.list.json.services.gemini.status.api_key, false);
    for (const text of [result.set.text, result.status.text, result.list.text, ...lines]) {
      assert(!text.includes(aliceKey), "the key leaked");
      assert(!text.includes(aliceKey.slice(0, 12)), "part of the key leaked");
    }
    const bobStatus = await call({ action: "get_status", service: "openai" }, bob.authorization);
    assertEquals(bobStatus.json.status, { api_key: false });
    assertEquals(bobStatus.json.last_four, null);
  },
);

suite.test("credentials-manager never lets Bob delete or overwrite Alice's key", async () => {
  const alice = await newUser(db);
  const bob = await newUser(db);
  await call({ action: "set", service: "openai", value: aliceKey }, alice.authorization);
  const removed = await call(
    { action: "delete", service: "openai", key: "api_key" },
    bob.authorization,
  );
  assertEquals(removed.json.removed, 0);
  await call({ action: "set", service: "openai", value: "sk-bob-0000000000" }, bob.authorization);
  assertEquals((await runtime.vault.lookup(alice.id, "openai")).api_key, aliceKey);
  assertEquals((await runtime.vault.lookup(bob.id, "openai")).api_key, "sk-bob-0000000000");
});

suite.test(
  "credentials-manager delete removes the key and the vault stops using it at once",
  async () => {
    const alice = await newUser(db);
    await call({ action: "set", service: "openai", value: aliceKey }, alice.authorization);
    assertEquals((await runtime.vault.lookup(alice.id, "openai")).api_key, aliceKey);
    const replaced = `sk-replaced-${crypto.randomUUID()}`;
    await call({ action: "set", service: "openai", value: replaced }, alice.authorization);
    assertEquals((await runtime.vault.lookup(alice.id, "openai")).api_key, replaced);
    const deleted = await call(
      { action: "delete", service: "openai", key: "api_key" },
      alice.authorization,
    );
    assertEquals(deleted.json.removed, 1);
    assertEquals(deleted.json.status, { api_key: false });
    assertEquals(await runtime.vault.lookup(alice.id, "openai"), {});
  },
);

suite.test(
  "credentials-manager validate records valid and invalid keys from the provider's answer",
  async () => {
    const alice = await newUser(db);
    const good = `sk-good-${crypto.randomUUID()}`;
    fake.validKeys.add(good);
    await call({ action: "set", service: "openai", value: good }, alice.authorization);
    const valid = await call({ action: "validate", service: "openai" }, alice.authorization);
    assertEquals(valid.json.valid, true);
    assertEquals(valid.json.validation_status, "valid");
    assert(valid.json.last_validated_at);
    const seen = fake.requests.at(-1)!;
    assertEquals(seen.path, "/v1/models");
    assertEquals(fake.keyOf(seen), good);

    await call(
      { action: "set", service: "openai", value: "sk-revoked-123456789" },
      alice.authorization,
    );
    const invalid = await call({ action: "validate", service: "openai" }, alice.authorization);
    assertEquals(invalid.json.valid, false);
    assertEquals(invalid.json.validation_status, "invalid");
    assertEquals(invalid.json.error.code, "OPENAI_INVALID_KEY");
    assert(!invalid.text.includes("sk-revoked"));
  },
);

suite.test("credentials-manager validate sends Anthropic keys in x-api-key", async () => {
  const alice = await newUser(db);
  const key = `sk-ant-${crypto.randomUUID()}`;
  fake.validKeys.add(key);
  await call({ action: "set", service: "anthropic", value: key }, alice.authorization);
  const result = await call({ action: "validate", service: "anthropic" }, alice.authorization);
  assertEquals(result.json.valid, true);
  assertEquals(fake.requests.at(-1)!.headers["x-api-key"], key);
  assertEquals(fake.requests.at(-1)!.headers["authorization"], undefined);
});

suite.test("credentials-manager validate without a key is <SERVICE>_NOT_CONFIGURED", async () => {
  const alice = await newUser(db);
  const result = await call({ action: "validate", service: "gemini" }, alice.authorization);
  assertEquals(result.status, 400);
  assertEquals(result.json.error.code, "GEMINI_NOT_CONFIGURED");
});

suite.test("credentials-manager stores a custom endpoint's base URL and key", async () => {
  const alice = await newUser(db);
  const key = `custom-${crypto.randomUUID()}`;
  fake.validKeys.add(key);
  await call(
    { action: "set", service: "custom", key: "base_url", value: fake.baseUrl },
    alice.authorization,
  );
  const set = await call({ action: "set", service: "custom", value: key }, alice.authorization);
  assertEquals(set.json.status, { api_key: true, base_url: true });
  const result = await call({ action: "validate", service: "custom" }, alice.authorization);
  assertEquals(result.json.valid, true);
});

suite.test(
  "credentials-manager: a new custom base_url resets the key's validation, and validate checks the new one",
  async () => {
    const alice = await newUser(db);
    const key = `custom-${crypto.randomUUID()}`;
    fake.validKeys.add(key);
    const moved = startFakeUpstream();
    try {
      moved.validKeys.add(key);
      await call(
        { action: "set", service: "custom", key: "base_url", value: fake.baseUrl },
        alice.authorization,
      );
      await call({ action: "set", service: "custom", value: key }, alice.authorization);
      const first = await call({ action: "validate", service: "custom" }, alice.authorization);
      assertEquals(first.json.validation_status, "valid");

      const set = await call(
        { action: "set", service: "custom", key: "base_url", value: moved.baseUrl },
        alice.authorization,
      );
      assertEquals([set.json.validation_status, set.json.last_validated_at], [null, null]);
      const status = await call({ action: "get_status", service: "custom" }, alice.authorization);
      assertEquals(status.json.validation_status, null, "valid was said of the old endpoint");

      const second = await call({ action: "validate", service: "custom" }, alice.authorization);
      assertEquals(second.json.validation_status, "valid");
      assertEquals(moved.requests.length, 1, "validate went to the new endpoint");
      assertEquals(moved.keyOf(moved.requests[0]), key);
    } finally {
      await moved.close();
    }
  },
);

suite.test("credentials-manager refuses malformed bodies with INVALID_REQUEST", async () => {
  const alice = await newUser(db);
  const bad: unknown[] = [
    { action: "set", service: "openai", value: "not-a-key" },
    { action: "set", service: "gemini", value: "sk-wrong-prefix-123" },
    { action: "set", service: "anthropic", value: "sk-notant-123456" },
    { action: "set", service: "openai", value: "sk-has space-123" },
    { action: "set", service: "openai", value: "sk-ctrl\u0000char-1234" },
    { action: "set", service: "openai", value: `sk-${"x".repeat(600)}` },
    { action: "set", service: "openai", value: "sk-valid-123456", extra: true },
    { action: "set", service: "OpenAI", value: "sk-valid-123456" },
    {
      action: "set",
      service: "openai'; drop table public.user_credentials; --",
      value: "sk-1234567890",
    },
    { action: "set", service: "custom", key: "base_url", value: "ftp://example.com" },
    { action: "set", service: "openai", key: "base_url", value: "https://example.com" },
    { action: "explode" },
    { service: "openai" },
    [],
    "set",
    null,
  ];
  for (const body of bad) {
    const result = await call(body, alice.authorization);
    assertEquals(result.status, 400, JSON.stringify(body).slice(0, 80));
    assertEquals(result.json.error.code, "INVALID_REQUEST");
    assertEquals(result.json.error.recoverable, false);
  }
  const notJson = await handler(
    new Request(URL_, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: alice.authorization },
      body: "{nope",
    }),
  );
  assertEquals(notJson.status, 400);
  assertEquals((await notJson.json()).error.code, "INVALID_REQUEST");
  assertEquals(await runtime.vault.lookup(alice.id, "openai"), {});
});

suite.test("credentials-manager answers 401 UNAUTHORIZED to bad tokens and deleted users", async () => {
  const ghost = await signToken({ sub: crypto.randomUUID() });
  for (const authorization of [undefined, "Bearer junk", `Bearer ${ghost}`]) {
    const result = await call({ action: "list" }, authorization);
    assertEquals(result.status, 401);
    assertEquals(result.json.error.code, "UNAUTHORIZED");
  }
});

suite.test("credentials-manager answers CORS preflight", async () => {
  const response = await handler(
    new Request(URL_, {
      method: "OPTIONS",
      headers: {
        origin: "http://app.test",
        "access-control-request-headers": "authorization, content-type",
      },
    }),
  );
  assertEquals(response.status, 204);
  assertEquals(response.headers.get("access-control-allow-origin"), "*");
  assertMatch(response.headers.get("access-control-allow-headers")!, /authorization/);
});

suite.test("credentials-manager refuses a body over 1 MB with 413", async () => {
  const alice = await newUser(db);
  const result = await call({
    action: "set",
    service: "openai",
    value: "sk-" + "a".repeat(1_100_000),
  }, alice.authorization);
  assertEquals(result.status, 413);
  assertEquals(result.json.error.code, "PAYLOAD_TOO_LARGE");
});

suite.test(
  "credentials-manager test checks an unsaved key with the provider and stores nothing",
  async () => {
    const alice = await newUser(db);
    const good = `sk-unsaved-good-${crypto.randomUUID()}`;
    fake.validKeys.add(good);
    const { result, lines } = await captureLogs(async () => ({
      accepted: await call({ action: "test", service: "openai", value: good }, alice.authorization),
      rejected: await call(
        { action: "test", service: "openai", value: "sk-unsaved-bad-123456" },
        alice.authorization,
      ),
    }));
    assertEquals(result.accepted.status, 200);
    assertEquals(result.accepted.json.valid, true);
    assertEquals(result.accepted.json.validation_status, "valid");
    assertEquals(fake.keyOf(fake.requests.at(-2)!), good);
    assertEquals(result.rejected.json.valid, false);
    assertEquals(result.rejected.json.validation_status, "invalid");
    assertEquals(result.rejected.json.error.code, "OPENAI_INVALID_KEY");
    for (const text of [result.accepted.text, result.rejected.text, ...lines]) {
      assert(!text.includes(good) && !text.includes("sk-unsaved-bad"), "the key leaked");
    }
    // Nothing was stored, and no validation result was recorded.
    assertEquals(await runtime.vault.lookup(alice.id, "openai"), {});
    const status = await call({ action: "get_status", service: "openai" }, alice.authorization);
    assertEquals(status.json.status, { api_key: false });
    assertEquals(status.json.validation_status, null);
  },
);

suite.test(
  "credentials-manager test refuses a badly formatted key with 400 and sends nothing",
  async () => {
    const alice = await newUser(db);
    const before = fake.requests.length;
    const answer = await call(
      { action: "test", service: "openai", value: "pk-not-openai-123" },
      alice.authorization,
    );
    assertEquals(answer.status, 400);
    assertEquals(answer.json.error.code, "INVALID_REQUEST");
    const wrongService = await call(
      { action: "test", service: "openai", value: "sk-1234567890", base_url: "https://x.example" },
      alice.authorization,
    );
    assertEquals(wrongService.status, 400);
    assertEquals(fake.requests.length, before);
  },
);

suite.test(
  "credentials-manager set_active turns a key off without deleting it; nothing hands it out",
  async () => {
    const alice = await newUser(db);
    await call({ action: "set", service: "openai", value: aliceKey }, alice.authorization);
    const off = await call(
      { action: "set_active", service: "openai", is_active: false },
      alice.authorization,
    );
    assertEquals(off.status, 200);
    assertEquals(off.json.is_active, false);
    assertEquals(off.json.configured, true);
    assertEquals(off.json.last_four, aliceKey.slice(-4));
    assertEquals(await runtime.vault.lookup(alice.id, "openai"), {});
    const validate = await call({ action: "validate", service: "openai" }, alice.authorization);
    assertEquals(validate.status, 400);
    assertEquals(validate.json.error.code, "OPENAI_NOT_CONFIGURED");
    assertMatch(validate.json.error.message, /turned off/);
    const events = await call({ action: "events" }, alice.authorization);
    assertEquals(events.json.events[0].event, "disable");

    const on = await call(
      { action: "set_active", service: "openai", is_active: true },
      alice.authorization,
    );
    assertEquals(on.json.is_active, true);
    assertEquals((await runtime.vault.lookup(alice.id, "openai")).api_key, aliceKey);
    const none = await call(
      { action: "set_active", service: "gemini", is_active: false },
      alice.authorization,
    );
    assertEquals(none.json.error.code, "GEMINI_NOT_CONFIGURED");
  },
);

suite.test(
  "credentials-manager status shows when a key was added, its usage today and over 30 days, and the saved base URL",
  async () => {
    const alice = await newUser(db);
    await call({ action: "set", service: "openai", value: aliceKey }, alice.authorization);
    const today = new Date().toISOString().slice(0, 10);
    const tenDaysAgo = new Date(Date.now() - 10 * 86_400_000).toISOString().slice(0, 10);
    const longAgo = new Date(Date.now() - 40 * 86_400_000).toISOString().slice(0, 10);
    const row = (day: string, requests: number, tokens: number, key_source = "user") => ({
      user_id: alice.id,
      day,
      service: "openai",
      key_source,
      requests,
      prompt_tokens: 0,
      completion_tokens: tokens,
      total_tokens: tokens,
    });
    await db.query("select private.record_usage($1::text::jsonb)", [JSON.stringify([
      row(today, 2, 30),
      row(tenDaysAgo, 5, 100),
      row(longAgo, 50, 1000),
      row(today, 9, 900, "shared"),
    ])]);
    const status = await call({ action: "get_status", service: "openai" }, alice.authorization);
    assertEquals(status.json.usage, {
      today: { requests: 2, tokens: 30 },
      last_30_days: { requests: 7, tokens: 130 },
    });
    assert(Date.now() - Date.parse(status.json.created_at) < 60_000);
    assert(status.json.last_used_at);

    await call(
      { action: "set", service: "custom", key: "base_url", value: `${fake.baseUrl}` },
      alice.authorization,
    );
    const list = await call({ action: "list" }, alice.authorization);
    assertEquals(list.json.services.custom.base_url, fake.baseUrl);
    assertEquals(list.json.services.openai.usage.today.requests, 2);
    assertEquals(list.json.services.gemini.usage.today.requests, 0);
  },
);
