/**
 * Every answer a browser can receive carries the CORS headers: preflights, errors, JSON, proxied
 * bodies (bytes and streams) and SSE. The builders add them at construction, so this pins each
 * kind of answer of every declared function.
 */
import { mountFunctions } from "../../local/functionRegistry.ts";
import { createHandler as createCredentialsHandler } from "../../supabase/functions/credentials-manager/handler.ts";
import { createHandler as createProxyHandler } from "../../supabase/functions/openai-proxy/handler.ts";
import { createHandler as createRunHandler } from "../../supabase/functions/conversation-run/handler.ts";
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { type FakeUpstream, sseChat, startFakeUpstream } from "../support/fakeUpstream.ts";
import { jsonRequest, newUser, testRuntime } from "../support/runtime.ts";
import { integrationSuite } from "../support/suite.ts";
import { usageRecorderFor } from "../../supabase/functions/_shared/upstream/usageRecorder.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import type { Runtime } from "../../supabase/functions/_shared/core/runtime.ts";

let db: Database;
let fake: FakeUpstream;
let runtime: Runtime;
let functions: Awaited<ReturnType<typeof mountFunctions>>;
const suite = integrationSuite("cors", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
    // What the stack's close does: write the usage the proxied answers recorded.
    onTeardown(() => usageRecorderFor(db).flush());
    fake = startFakeUpstream();
    onTeardown(() => fake.close());
    runtime = testRuntime(db, { env: { OPENAI_BASE_URL: fake.baseUrl } });
    functions = await mountFunctions(runtime);
  },
});

function assertCors(response: Response, what: string): void {
  assertEquals(response.headers.get("access-control-allow-origin"), "*", what);
  assertMatch(response.headers.get("access-control-expose-headers") ?? "", /x-key-source/, what);
  assertMatch(response.headers.get("access-control-expose-headers") ?? "", /retry-after/, what);
}

async function userWithKey() {
  const user = await newUser(db);
  const key = `sk-user-${crypto.randomUUID()}`;
  const stored = await createCredentialsHandler(runtime)(
    jsonRequest(
      "http://local/credentials-manager",
      { action: "set", service: "openai", value: key },
      user.authorization,
    ),
  );
  assertEquals(stored.status, 200, await stored.text());
  assertCors(stored, "credentials-manager set");
  fake.validKeys.add(key);
  return user;
}

suite.test(`every function answers a preflight with the full CORS set (${DATABASE_KIND})`, async () => {
  assert(functions.size >= 10, `only ${functions.size} functions were mounted`);
  for (const { name, handler } of functions.values()) {
    const response = await handler(
      new Request(`http://local/${name}`, {
        method: "OPTIONS",
        headers: { "access-control-request-headers": "authorization, x-stainless-os" },
      }),
    );
    assertEquals(response.status, 204, name);
    assertCors(response, name);
    assertEquals(
      response.headers.get("access-control-allow-headers"),
      "authorization, x-stainless-os",
      name,
    );
    assertMatch(response.headers.get("access-control-allow-methods") ?? "", /POST/, name);
  }
});

suite.test(`every function's error answer carries the CORS headers (${DATABASE_KIND})`, async () => {
  for (const { name, handler } of functions.values()) {
    const response = await handler(jsonRequest(`http://local/${name}`, {}, "Bearer not-a-jwt"));
    assert(response.status >= 400, `${name} answered ${response.status}`);
    assertCors(response, name);
    assertEquals((await response.json()).error.code !== undefined, true, name);
  }
});

suite.test(
  `proxied answers carry the CORS headers, bytes and streams alike (${DATABASE_KIND})`,
  async () => {
    const user = await userWithKey();
    const ask = (handler: (request: Request) => Promise<Response>, path: string, extra = {}) =>
      handler(
        jsonRequest(
          `http://local/${path}`,
          { model: "gpt-fake", messages: [{ role: "user", content: "hi" }], ...extra },
          user.authorization,
        ),
      );
    const proxy = createProxyHandler(runtime);
    const complete = await ask(proxy, "openai-proxy/v1/chat/completions");
    assertEquals(complete.status, 200);
    assertCors(complete, "non-streamed proxy answer");
    assertEquals(complete.headers.get("x-key-source"), "user");
    await complete.body?.cancel();

    fake.route("POST /v1/chat/completions", sseChat({ chunks: ["a", "b"] }));
    try {
      const streamed = await ask(proxy, "openai-proxy/v1/chat/completions", { stream: true });
      assertEquals(streamed.status, 200);
      assertCors(streamed, "streamed proxy answer");
      assertEquals(streamed.headers.get("cache-control"), "no-cache");
      // The relay releases each chunk once the next is asked for: decode as it is read.
      let text = "";
      for await (const part of streamed.body!.pipeThrough(new TextDecoderStream())) text += part;
      assertMatch(text, /\[DONE\]/);

      const run = await ask(createRunHandler(runtime), "conversation-run");
      assertEquals(run.status, 200);
      assertCors(run, "conversation-run SSE");
      await run.text();
    } finally {
      fake.unroute("POST /v1/chat/completions");
    }
  },
);
