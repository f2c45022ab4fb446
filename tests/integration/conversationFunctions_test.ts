import { createClient, FunctionsHttpError } from "@supabase/supabase-js";
import { signInDevUser } from "../support/devAuth.ts";
import { collectGarbage } from "../support/gc.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { createHandler as createManagerHandler } from "../../supabase/functions/conversation-manager/handler.ts";
import { createHandler as createRunHandler } from "../../supabase/functions/conversation-run/handler.ts";
import { createHandler as createModelsHandler } from "../../supabase/functions/fetch-provider-models/handler.ts";
import { createHandler as createEmbeddingHandler } from "../../supabase/functions/generate-embedding/handler.ts";
import { createHandler as createBatchHandler } from "../../supabase/functions/batch-embeddings/handler.ts";
import { createHandler as createManusHandler } from "../../supabase/functions/manus-key-validate/handler.ts";
import { createHandler as createCredentialsHandler } from "../../supabase/functions/credentials-manager/handler.ts";
import type { Runtime } from "../../supabase/functions/_shared/core/runtime.ts";
import { startLocalStack } from "../../local/stack.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import {
  type FakeChatUpstream,
  fakeVector,
  startFakeChatUpstream,
} from "../support/fakeChatUpstream.ts";
import { sseClient } from "../support/sseClient.ts";
import { jsonRequest, newUser, testRuntime, type TestUser } from "../support/runtime.ts";
import { integrationSuite } from "../support/suite.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import { usageRecorderFor } from "../../supabase/functions/_shared/upstream/usageRecorder.ts";

let db: Database;
let fake: FakeChatUpstream;
let env: Record<string, string>;
let runtime: Runtime;
const suite = integrationSuite("conversationFunctions", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
    // What the stack's close does: write the usage the proxied answers recorded.
    onTeardown(() => usageRecorderFor(db).flush());
    fake = startFakeChatUpstream();
    onTeardown(() => fake.close());
    env = {
      OPENAI_BASE_URL: fake.baseUrl,
      OPENROUTER_BASE_URL: fake.baseUrl,
      MANUS_BASE_URL: fake.url,
      VALIDATION_TIMEOUT_MS: "300",
    };
    runtime = testRuntime(db, { env });
  },
});

async function giveKey(rt: Runtime, user: TestUser, service: string, value: string) {
  const response = await createCredentialsHandler(rt)(
    jsonRequest(
      "http://local/credentials-manager",
      { action: "set", service, value },
      user.authorization,
    ),
  );
  assertEquals(response.status, 200, await response.text());
}

async function call(
  create: (rt: Runtime) => (request: Request) => Promise<Response>,
  name: string,
  body: unknown,
  user?: TestUser,
) {
  const response = await create(runtime)(
    jsonRequest(`http://local/${name}`, body, user?.authorization),
  );
  return { status: response.status, headers: response.headers, json: await response.json() };
}

const newKey = () => `sk-user-${crypto.randomUUID()}`;

suite.test(
  `conversation-manager lists, gets and deletes only the caller's conversations (${DATABASE_KIND})`,
  async () => {
    const alice = await newUser(db);
    const bob = await newUser(db);
    await giveKey(runtime, alice, "openai", newKey());
    fake.chat = { kind: "stream", chunks: ["Hi"] };
    const run = createRunHandler(runtime);
    const events = await sseClient(
      await run(jsonRequest("http://local/conversation-run", {
        messages: [{ role: "user", content: "Tell me a joke" }],
        model: "m",
      }, alice.authorization)),
    ).rest();
    const conversationId = events[0].conversation_id;

    const list = await call(
      createManagerHandler,
      "conversation-manager",
      { action: "list" },
      alice,
    );
    assertEquals(list.status, 200);
    assertEquals(list.json.conversations.length, 1);
    assertEquals(list.json.conversations[0].id, conversationId);
    assertEquals(list.json.conversations[0].title, "Tell me a joke");
    assertEquals(list.json.conversations[0].message_count, 2);

    const bobList = await call(
      createManagerHandler,
      "conversation-manager",
      { action: "list" },
      bob,
    );
    assertEquals(bobList.json.conversations, []);
    for (const action of ["get", "delete"]) {
      const denied = await call(createManagerHandler, "conversation-manager", {
        action,
        conversation_id: conversationId,
      }, bob);
      assertEquals(denied.status, 404);
      assertEquals(denied.json.error.code, "NOT_FOUND");
    }

    const got = await call(createManagerHandler, "conversation-manager", {
      action: "get",
      conversation_id: conversationId,
    }, alice);
    assertEquals(got.json.conversation.messages.map((m: { content: string }) => m.content), [
      "Tell me a joke",
      "Hi",
    ]);
    const deleted = await call(createManagerHandler, "conversation-manager", {
      action: "delete",
      conversation_id: conversationId,
    }, alice);
    assertEquals(deleted.json, { ok: true, deleted: conversationId });
    const [left] = await db.query<{ n: number }>(
      "select count(*)::int as n from public.conversation_messages where conversation_id = $1",
      [conversationId],
    );
    assertEquals(left.n, 0);
    const bad = await call(
      createManagerHandler,
      "conversation-manager",
      { action: "rename" },
      alice,
    );
    assertEquals(bad.status, 400);
  },
);

suite.test("fetch-provider-models lists models with the user's own key", async () => {
  const alice = await newUser(db);
  const key = newKey();
  await giveKey(runtime, alice, "openai", key);
  fake.models = "list";
  const result = await call(
    createModelsHandler,
    "fetch-provider-models",
    { provider: "openai" },
    alice,
  );
  assertEquals(result.status, 200);
  assertEquals(result.json.keySource, "user");
  assertEquals(result.headers.get("x-key-source"), "user");
  assertEquals(result.json.models.map((m: { id: string }) => m.id), ["gpt-fake-1", "gpt-fake-2"]);
  const seen = fake.requests.at(-1)!;
  assertEquals(seen.path, "/v1/models");
  assertEquals(fake.keyOf(seen), key);
});

suite.test(
  "fetch-provider-models maps a missing key, a bad key and a stalled provider to codes",
  async () => {
    const alice = await newUser(db);
    const missing = await call(createModelsHandler, "fetch-provider-models", {
      provider: "openrouter",
    }, alice);
    assertEquals(missing.status, 400);
    assertEquals(missing.json.error.code, "OPENROUTER_NOT_CONFIGURED");

    await giveKey(runtime, alice, "openrouter", `sk-or-invalid-${crypto.randomUUID()}`);
    const invalid = await call(createModelsHandler, "fetch-provider-models", {
      provider: "openrouter",
    }, alice);
    assertEquals(invalid.status, 401);
    assertEquals(invalid.json.error.code, "OPENROUTER_INVALID_KEY");

    await giveKey(runtime, alice, "openai", newKey());
    fake.models = "stall";
    const startedAt = performance.now();
    const stalled = await call(
      createModelsHandler,
      "fetch-provider-models",
      { provider: "openai" },
      alice,
    );
    const elapsed = performance.now() - startedAt;
    fake.models = "list";
    assertEquals(stalled.status, 504);
    assertEquals(stalled.json.error.code, "OPENAI_TIMEOUT");
    assertEquals(stalled.json.error.recoverable, true);
    assert(elapsed >= 300 && elapsed < 3_000, `timed out after ${elapsed} ms`);

    // A body that stalls after its headers, with a garbage collection while it waits.
    fake.models = "stall-body";
    const bodyStartedAt = performance.now();
    const pending = call(
      createModelsHandler,
      "fetch-provider-models",
      { provider: "openai" },
      alice,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    collectGarbage();
    const bodyStalled = await pending;
    const bodyElapsed = performance.now() - bodyStartedAt;
    fake.models = "list";
    assertEquals([bodyStalled.status, bodyStalled.json.error.code], [504, "OPENAI_TIMEOUT"]);
    assert(bodyElapsed < 3_000, `timed out after ${bodyElapsed} ms`);

    fake.models = 500;
    const outage = await call(
      createModelsHandler,
      "fetch-provider-models",
      { provider: "openai" },
      alice,
    );
    fake.models = "list";
    assertEquals(outage.status, 502);
    assertEquals(outage.json.error.code, "OPENAI_API_ERROR");
  },
);

suite.test("generate-embedding embeds one input with the user's key", async () => {
  const alice = await newUser(db);
  const key = newKey();
  await giveKey(runtime, alice, "openai", key);
  const result = await call(
    createEmbeddingHandler,
    "generate-embedding",
    { input: "hello" },
    alice,
  );
  assertEquals(result.status, 200);
  assertEquals(result.json.embedding, fakeVector("hello"));
  assertEquals(result.json.model, "text-embedding-3-small");
  assertEquals(result.json.keySource, "user");
  const seen = fake.requests.at(-1)!;
  assertEquals(fake.keyOf(seen), key);
  assertEquals(JSON.parse(seen.body), { model: "text-embedding-3-small", input: ["hello"] });

  const bob = await newUser(db);
  const missing = await call(createEmbeddingHandler, "generate-embedding", { input: "hello" }, bob);
  assertEquals(missing.json.error.code, "OPENAI_NOT_CONFIGURED");
});

suite.test("batch-embeddings splits into chunks and runs at most four at once", async () => {
  const alice = await newUser(db);
  await giveKey(runtime, alice, "openai", newKey());
  const inputs = Array.from({ length: 20 }, (_, i) => `text ${i}`);
  const before = fake.requests.length;
  fake.embeddingsDelayMs = 60;
  fake.maxEmbeddingsInFlight = 0;
  const result = await call(
    createBatchHandler,
    "batch-embeddings",
    { inputs, chunk_size: 2 },
    alice,
  );
  fake.embeddingsDelayMs = 0;
  assertEquals(result.status, 200);
  assertEquals(result.json.chunks, 10);
  assertEquals(result.json.failures, []);
  assertEquals(result.json.embeddings, inputs.map(fakeVector));
  assertEquals(result.json.usage, { prompt_tokens: 20, total_tokens: 20 });
  const sent = fake.requests.slice(before).filter((r) => r.path === "/v1/embeddings");
  assertEquals(sent.length, 10);
  assert(sent.every((r) => JSON.parse(r.body).input.length === 2));
  assertEquals(fake.maxEmbeddingsInFlight, 4);
});

suite.test(
  "batch-embeddings reports failures per item and keeps the successful embeddings",
  async () => {
    const alice = await newUser(db);
    await giveKey(runtime, alice, "openai", newKey());
    const inputs = ["a1", "a2 REJECT", "a3", "b1", "b2", "b3", "c1 OUTAGE", "c2"];
    const result = await call(
      createBatchHandler,
      "batch-embeddings",
      { inputs, chunk_size: 3 },
      alice,
    );
    assertEquals(result.status, 200);
    assertEquals(result.json.chunks, 3);
    // Chunk 1 was refused for one input's content, so it was retried item by item; chunk 3 met an
    // outage, which fails its items together.
    assertEquals(result.json.failures.map((f: { index: number }) => f.index), [1, 6, 7]);
    const byIndex = Object.fromEntries(
      result.json.failures.map((
        f: { index: number; error: { code: string; upstream_status: number } },
      ) => [
        f.index,
        [f.error.code, f.error.upstream_status],
      ]),
    );
    assertEquals(byIndex, {
      1: ["OPENAI_API_ERROR", 400],
      6: ["OPENAI_API_ERROR", 503],
      7: ["OPENAI_API_ERROR", 503],
    });
    assertEquals(result.json.embeddings, [
      fakeVector("a1"),
      null,
      fakeVector("a3"),
      fakeVector("b1"),
      fakeVector("b2"),
      fakeVector("b3"),
      null,
      null,
    ]);
  },
);

suite.test("batch-embeddings answers with the error itself when no input succeeded", async () => {
  const alice = await newUser(db);
  await giveKey(runtime, alice, "openai", `sk-invalid-${crypto.randomUUID()}`);
  const result = await call(createBatchHandler, "batch-embeddings", { inputs: ["x", "y"] }, alice);
  assertEquals(result.status, 401);
  assertEquals(result.json.error.code, "OPENAI_INVALID_KEY");
  const tooBig = await call(createBatchHandler, "batch-embeddings", {
    inputs: ["x"],
    chunk_size: 4096,
  }, alice);
  assertEquals(tooBig.status, 400);
});

suite.test(
  "manus-key-validate checks the user's Manus key and always reports keySource user",
  async () => {
    const alice = await newUser(db);
    const handler = createManusHandler(runtime);
    const empty = (user: TestUser) =>
      handler(
        new Request("http://local/manus-key-validate", {
          method: "POST",
          headers: { authorization: user.authorization },
        }),
      );

    const missing = await empty(alice);
    assertEquals(missing.status, 400);
    const missingBody = await missing.json();
    assertEquals(missingBody.error.code, "MANUS_NOT_CONFIGURED");
    assertEquals(missingBody.keySource, "user");

    const key = `manus-${crypto.randomUUID()}`;
    await giveKey(runtime, alice, "manus", key);
    const valid = await call(createManusHandler, "manus-key-validate", {}, alice);
    assertEquals(valid.status, 200);
    assertEquals(valid.json.keySource, "user");
    assertEquals(valid.json.valid, true);
    assertEquals(valid.json.validation_status, "valid");
    const seen = fake.requests.at(-1)!;
    assertEquals(seen.path, "/v1/tasks?limit=1");
    assertEquals(seen.headers["api_key"], key);

    await giveKey(runtime, alice, "manus", `manus-invalid-${crypto.randomUUID()}`);
    const invalid = await (await empty(alice)).json();
    assertEquals(invalid.keySource, "user");
    assertEquals(invalid.valid, false);
    assertEquals(invalid.error.code, "MANUS_INVALID_KEY");

    const extra = await call(
      createManusHandler,
      "manus-key-validate",
      { service: "openai" },
      alice,
    );
    assertEquals(extra.status, 400);
  },
);

suite.test(
  "manus-key-validate refuses a 50 MB body without a content type with 413, unread past the limit",
  async () => {
    const alice = await newUser(db);
    const total = 50 * 1024 * 1024;
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled >= total) return controller.close();
        pulled += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    const started = performance.now();
    const response = await createManusHandler(runtime)(
      new Request("http://local/manus-key-validate", {
        method: "POST",
        headers: { authorization: alice.authorization },
        body,
        duplex: "half",
      } as RequestInit),
    );
    const elapsed = performance.now() - started;
    assertEquals(response.status, 413);
    const json = await response.json();
    assertEquals(json.error.code, "PAYLOAD_TOO_LARGE");
    assertEquals(typeof json.error.message, "string");
    assert(pulled < 4 * 1024 * 1024, `read ${pulled} bytes of a 50 MB body`);
    assert(elapsed < 5_000, `took ${elapsed} ms`);
  },
);

suite.test(
  "supabase-js functions.invoke works against the local stack for the non-streaming functions",
  async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "conversation-functions-" });
    const stack = await startLocalStack({ dataDir, port: 0, db, env });
    try {
      const { token } = await signInDevUser(stack.url);
      // No token refresh timer: it would outlive the test (the token is set for functions only).
      const supabase = createClient(stack.url, stack.anonKey, {
        auth: { persistSession: false, autoRefreshToken: false },
      });
      supabase.functions.setAuth(token);

      const key = newKey();
      const set = await supabase.functions.invoke("credentials-manager", {
        body: { action: "set", service: "openai", value: key },
      });
      assertEquals(set.error, null);
      await supabase.functions.invoke("credentials-manager", {
        body: { action: "set", service: "manus", value: `manus-${crypto.randomUUID()}` },
      });

      const models = await supabase.functions.invoke("fetch-provider-models", {
        body: { provider: "openai" },
      });
      assertEquals(models.error, null);
      assertEquals(models.data.models[0].id, "gpt-fake-1");
      assertEquals(fake.keyOf(fake.requests.at(-1)!), key);

      const one = await supabase.functions.invoke("generate-embedding", { body: { input: "hey" } });
      assertEquals(one.data.embedding, fakeVector("hey"));

      const batch = await supabase.functions.invoke("batch-embeddings", {
        body: { inputs: ["a", "bb"] },
      });
      assertEquals(batch.data.embeddings, [fakeVector("a"), fakeVector("bb")]);

      const manus = await supabase.functions.invoke("manus-key-validate");
      assertEquals(manus.error, null);
      assertEquals(manus.data.keySource, "user");
      assertEquals(manus.data.valid, true);

      const list = await supabase.functions.invoke("conversation-manager", {
        body: { action: "list" },
      });
      assertEquals(list.data, { conversations: [] });

      const missing = await supabase.functions.invoke("conversation-manager", {
        body: { action: "get", conversation_id: crypto.randomUUID() },
      });
      assert(missing.error instanceof FunctionsHttpError);
      assertEquals(missing.error.context.status, 404);
      assertEquals((await missing.error.context.json()).error.code, "NOT_FOUND");
    } finally {
      await stack.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
);
