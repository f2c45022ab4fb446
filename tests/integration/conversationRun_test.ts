import { assert, assertEquals } from "../support/assert.ts";
import { createHandler as createRunHandler } from "../../supabase/functions/conversation-run/handler.ts";
import { createHandler as createCancelHandler } from "../../supabase/functions/conversation-cancel/handler.ts";
import { createHandler as createManagerHandler } from "../../supabase/functions/conversation-manager/handler.ts";
import { createHandler as createCredentialsHandler } from "../../supabase/functions/credentials-manager/handler.ts";
import type { Runtime } from "../../supabase/functions/_shared/core/runtime.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { type FakeChatUpstream, startFakeChatUpstream } from "../support/fakeChatUpstream.ts";
import { PROVIDER_ERRORS, type ProviderErrorAnswer } from "../support/providerErrors.ts";
import { sseClient } from "../support/sseClient.ts";
import { collectGarbage } from "../support/gc.ts";
import {
  captureLogs,
  jsonRequest,
  newUser,
  testConfig,
  testRuntime,
  type TestUser,
} from "../support/runtime.ts";
import { createRuntime } from "../../supabase/functions/_shared/core/runtime.ts";
import { integrationSuite } from "../support/suite.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import { usageRecorderFor } from "../../supabase/functions/_shared/upstream/usageRecorder.ts";

let db: Database;
let fake: FakeChatUpstream;
let env: Record<string, string>;
let runtime: Runtime;
let runHandler: ReturnType<typeof createRunHandler>;
const suite = integrationSuite("conversationRun", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
    // What the stack's close does: write the usage the proxied answers recorded.
    onTeardown(() => usageRecorderFor(db).flush());
    fake = startFakeChatUpstream();
    onTeardown(() => fake.close());
    env = {
      OPENAI_BASE_URL: fake.baseUrl,
      GEMINI_BASE_URL: fake.baseUrl,
      RUN_CANCEL_POLL_MS: "50",
    };
    runtime = testRuntime(db, { env });
    runHandler = createRunHandler(runtime);
  },
});
const messages = [{ role: "user", content: "Say hello" }];

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

function startRun(body: unknown, user: TestUser, handler = runHandler) {
  return handler(jsonRequest("http://local/conversation-run", body, user.authorization));
}

async function managerGet(user: TestUser, conversationId: string) {
  const response = await createManagerHandler(runtime)(
    jsonRequest("http://local/conversation-manager", {
      action: "get",
      conversation_id: conversationId,
    }, user.authorization),
  );
  return await response.json();
}

const newKey = () => `sk-user-${crypto.randomUUID()}`;

suite.test(
  `conversation-run streams deltas to an eventsource-parser client as they arrive (${DATABASE_KIND})`,
  async () => {
    const alice = await newUser(db);
    const key = newKey();
    await giveKey(runtime, alice, "openai", key);
    fake.chat = { kind: "gated", chunks: ["Hel", "lo", " there"] };
    const before = fake.requests.length;

    const response = await startRun({ messages, model: "gpt-fake-1" }, alice);
    assertEquals(response.status, 200);
    assertEquals(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
    assertEquals(response.headers.get("cache-control"), "no-cache");
    const client = sseClient(response);

    const started = await client.next();
    assertEquals(started?.type, "run.started");
    assert(started?.run_id && started?.conversation_id);
    assertEquals(await client.next(), { type: "delta", content: "Hel" });
    assertEquals(
      fake.chunkSentAt.length,
      1,
      "the first delta arrived before upstream sent its second chunk",
    );
    fake.release();
    assertEquals(await client.next(), { type: "delta", content: "lo" });
    assertEquals(fake.chunkSentAt.length, 2);
    fake.release();
    const rest = await client.rest();
    assertEquals(rest, [
      { type: "delta", content: " there" },
      { type: "usage", usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } },
      {
        type: "done",
        run_id: started.run_id,
        conversation_id: started.conversation_id,
        key_source: "user",
      },
    ]);

    const seen = fake.requests.slice(before).find((r) => r.path === "/v1/chat/completions")!;
    assertEquals(fake.keyOf(seen), key);
    const sent = JSON.parse(seen.body);
    assertEquals(sent.stream, true);
    assertEquals(sent.stream_options, { include_usage: true });
    assertEquals(sent.model, "gpt-fake-1");
    assertEquals(sent.messages, messages);

    const { conversation } = await managerGet(alice, started.conversation_id);
    assertEquals(
      conversation.messages.map((m: { role: string; content: string }) => [m.role, m.content]),
      [
        ["user", "Say hello"],
        ["assistant", "Hello there"],
      ],
    );
    assertEquals(conversation.runs[0].status, "done");
    assertEquals(conversation.runs[0].total_tokens, 10);
  },
);

suite.test(
  "conversation-run without a key sends the error event first after run.started, then closes",
  async () => {
    const alice = await newUser(db);
    const before = fake.requests.length;
    const events = await sseClient(await startRun({ messages, model: "gpt-fake-1" }, alice)).rest();
    assertEquals(events.length, 2);
    assertEquals(events[0].type, "run.started");
    assertEquals(events[1].type, "error");
    assertEquals(events[1].error.code, "OPENAI_NOT_CONFIGURED");
    assertEquals(events[1].error.recoverable, false);
    assertEquals(fake.requests.length, before, "nothing went upstream");
  },
);

suite.test(
  "conversation-run turns a reset mid-stream into an error event, closes, and keeps the partial output",
  async () => {
    const alice = await newUser(db);
    await giveKey(runtime, alice, "openai", newKey());
    fake.chat = { kind: "reset", chunks: ["par", "tial"] };
    const events = await sseClient(await startRun({ messages, model: "m" }, alice)).rest();
    assertEquals(events.map((e) => e.type), ["run.started", "delta", "delta", "error"]);
    assertEquals(events[3].error.code, "OPENAI_API_ERROR");
    assertEquals(events[3].error.recoverable, true);
    const { conversation } = await managerGet(alice, events[0].conversation_id);
    assertEquals(conversation.runs[0].status, "error");
    assertEquals(conversation.runs[0].error_code, "OPENAI_API_ERROR");
    assertEquals(conversation.messages.at(-1).content, "partial");
  },
);

suite.test(
  "conversation-run times out a stalled upstream with the provider's timeout code",
  async () => {
    const stallRuntime = testRuntime(db, { env: { ...env, UPSTREAM_TIMEOUT_MS: "300" } });
    const alice = await newUser(db);
    await giveKey(stallRuntime, alice, "openai", newKey());
    fake.chat = { kind: "stall", chunks: ["slow"] };
    const startedAt = performance.now();
    const events = await sseClient(
      await startRun({ messages, model: "m" }, alice, createRunHandler(stallRuntime)),
    )
      .rest();
    const elapsed = performance.now() - startedAt;
    assertEquals(events.map((e) => e.type), ["run.started", "delta", "error"]);
    assertEquals(events[2].error.code, "OPENAI_TIMEOUT");
    assert(elapsed >= 300 && elapsed < 3_000, `timed out after ${elapsed} ms`);
    await fake.streamClosed();
  },
);

suite.test(
  "conversation-run times out a stalled upstream even after a garbage collection mid-stream",
  async () => {
    // See openai-proxy's test of the same name: fetch may lose track of its signal in a collection.
    const stallRuntime = testRuntime(db, { env: { ...env, UPSTREAM_TIMEOUT_MS: "500" } });
    const alice = await newUser(db);
    await giveKey(stallRuntime, alice, "openai", newKey());
    fake.chat = { kind: "stall", chunks: ["slow"] };
    const startedAt = performance.now();
    const client = sseClient(
      await startRun({ messages, model: "m" }, alice, createRunHandler(stallRuntime)),
    );
    assertEquals((await client.next())?.type, "run.started");
    assertEquals((await client.next())?.type, "delta");
    collectGarbage();
    let deadline: ReturnType<typeof setTimeout> | undefined;
    const ended = await Promise.race([
      client.rest(),
      new Promise<null>((resolve) => (deadline = setTimeout(() => resolve(null), 6_000))),
    ]);
    clearTimeout(deadline);
    const elapsed = performance.now() - startedAt;
    if (ended === null) {
      await client.cancel();
      throw new Error("the stalled run did not end within 6 s");
    }
    assertEquals(ended.map((e) => e.type), ["error"]);
    assertEquals(ended[0].error.code, "OPENAI_TIMEOUT");
    assert(elapsed < 3_000, `timed out after ${elapsed} ms`);
    await fake.streamClosed();
  },
);

suite.test(
  "conversation-run ends a stream past STREAM_TIME_LIMIT_MS with STREAM_TIME_LIMIT, keeping the partial reply",
  async () => {
    const limited = testRuntime(db, { env: { ...env, STREAM_TIME_LIMIT_MS: "600" } });
    const alice = await newUser(db);
    await giveKey(limited, alice, "openai", newKey());
    fake.chat = { kind: "stream", chunks: Array.from({ length: 40 }, () => "word "), delayMs: 100 };
    const startedAt = performance.now();
    const events = await sseClient(
      await startRun({ messages, model: "m" }, alice, createRunHandler(limited)),
    ).rest();
    const elapsed = performance.now() - startedAt;
    assertEquals(events.at(-1)?.type, "error");
    assertEquals(events.at(-1)?.error.code, "STREAM_TIME_LIMIT");
    assert(elapsed >= 600 && elapsed < 2_500, `ended after ${elapsed} ms`);
    const deltas = events.filter((e) => e.type === "delta").length;
    assert(deltas > 0 && deltas < 40, `${deltas} deltas`);
    await fake.streamClosed();
    const { conversation } = await managerGet(alice, events[0].conversation_id);
    assertEquals(conversation.runs[0].status, "error");
    assertEquals(conversation.runs[0].error_code, "STREAM_TIME_LIMIT");
    assertEquals(conversation.messages.at(-1).content, "word ".repeat(deltas));
  },
);

suite.test(
  "conversation-run ends with SERVER_SHUTTING_DOWN when the server stops mid-stream, keeping the partial reply",
  async () => {
    const stopping = new AbortController();
    const stoppable = createRuntime({ config: testConfig(env), db, stopping: stopping.signal });
    const alice = await newUser(db);
    await giveKey(stoppable, alice, "openai", newKey());
    fake.chat = { kind: "gated", chunks: ["first", "never sent"] };
    const client = sseClient(
      await startRun({ messages, model: "m" }, alice, createRunHandler(stoppable)),
    );
    const started = (await client.next())!;
    assertEquals(await client.next(), { type: "delta", content: "first" });
    stopping.abort();
    const rest = await client.rest();
    assertEquals(rest.map((e) => e.type), ["error"]);
    assertEquals(rest[0].error.code, "SERVER_SHUTTING_DOWN");
    await fake.streamClosed();
    const { conversation } = await managerGet(alice, started.conversation_id);
    assertEquals(conversation.runs[0].error_code, "SERVER_SHUTTING_DOWN");
    assertEquals(conversation.messages.at(-1).content, "first");
  },
);

suite.test("conversation-run maps upstream 401, 429 and 500 to the provider's codes", async () => {
  const alice = await newUser(db);
  await giveKey(runtime, alice, "gemini", `AIza-${crypto.randomUUID()}`);
  const cases: [number, string, boolean][] = [
    [401, "GEMINI_INVALID_KEY", false],
    [429, "GEMINI_RATE_LIMITED", true],
    [500, "GEMINI_API_ERROR", true],
  ];
  for (const [status, code, recoverable] of cases) {
    fake.chat = { kind: "status", status };
    const events = await sseClient(
      await startRun({ messages, model: "m", provider: "gemini" }, alice),
    ).rest();
    assertEquals(events.map((e) => e.type), ["run.started", "error"]);
    assertEquals(events[1].error.code, code);
    assertEquals(events[1].error.recoverable, recoverable);
    assertEquals(events[1].error.upstream_status, status);
  }
});

suite.test(
  "conversation-run maps what the provider said: a bad Gemini key, an OpenAI key without credit",
  async () => {
    const alice = await newUser(db);
    await giveKey(runtime, alice, "gemini", `AIza-${crypto.randomUUID()}`);
    await giveKey(runtime, alice, "openai", newKey());
    const cases: [string, ProviderErrorAnswer, string][] = [
      ["gemini", PROVIDER_ERRORS.geminiInvalidKeyArray, "GEMINI_INVALID_KEY"],
      ["openai", PROVIDER_ERRORS.openaiInsufficientQuota, "OPENAI_QUOTA_EXCEEDED"],
    ];
    for (const [provider, answer, code] of cases) {
      fake.chat = { kind: "status", status: answer.status, body: answer.body };
      const events = await sseClient(await startRun({ messages, model: "m", provider }, alice))
        .rest();
      assertEquals(events.map((e) => e.type), ["run.started", "error"]);
      assertEquals([events[1].error.code, events[1].error.recoverable], [code, false]);
    }
  },
);

suite.test("conversation-cancel from another request and runtime stops a running stream", async () => {
  const alice = await newUser(db);
  await giveKey(runtime, alice, "openai", newKey());
  fake.chat = { kind: "gated", chunks: ["first", "never sent"] };
  const client = sseClient(await startRun({ messages, model: "m" }, alice));
  const started = (await client.next())!;
  assertEquals(await client.next(), { type: "delta", content: "first" });

  // A second runtime stands in for another isolate: they share nothing but the database.
  const otherIsolate = createCancelHandler(testRuntime(db, { env }));
  const cancelledAt = performance.now();
  const response = await otherIsolate(
    jsonRequest(
      "http://local/conversation-cancel",
      { run_id: started.run_id },
      alice.authorization,
    ),
  );
  assertEquals(response.status, 200);
  assertEquals(await response.json(), {
    run_id: started.run_id,
    status: "running",
    cancel_requested: true,
  });

  const rest = await client.rest();
  const stoppedAfter = performance.now() - cancelledAt;
  assertEquals(rest, [{ type: "cancelled", run_id: started.run_id }]);
  const upstreamClosedAt = await fake.streamClosed();
  assert(upstreamClosedAt - cancelledAt < 1_000, "the upstream connection closed");
  assert(stoppedAfter < 1_000, `cancel took ${stoppedAfter} ms`);
  fake.release();

  const { conversation } = await managerGet(alice, started.conversation_id);
  assertEquals(conversation.runs[0].status, "cancelled");
  assertEquals(conversation.messages.at(-1).content, "first");
});

suite.test("conversation-cancel never lets Bob cancel Alice's run", async () => {
  const alice = await newUser(db);
  const bob = await newUser(db);
  await giveKey(runtime, alice, "openai", newKey());
  fake.chat = { kind: "gated", chunks: ["one", "two"] };
  const client = sseClient(await startRun({ messages, model: "m" }, alice));
  const started = (await client.next())!;
  await client.next();

  const cancel = createCancelHandler(runtime);
  const byBob = await cancel(
    jsonRequest("http://local/conversation-cancel", { run_id: started.run_id }, bob.authorization),
  );
  assertEquals(byBob.status, 404);
  assertEquals((await byBob.json()).error.code, "RUN_NOT_FOUND");
  const unknown = await cancel(
    jsonRequest(
      "http://local/conversation-cancel",
      { run_id: crypto.randomUUID() },
      alice.authorization,
    ),
  );
  assertEquals(unknown.status, 404);

  fake.release();
  const rest = await client.rest();
  assertEquals(rest.at(-1)?.type, "done", "Alice's run finished normally");
});

suite.test("conversation-run aborts the upstream request when the client disconnects", async () => {
  const alice = await newUser(db);
  await giveKey(runtime, alice, "openai", newKey());
  fake.chat = { kind: "gated", chunks: ["a", "b"] };
  const client = sseClient(await startRun({ messages, model: "m" }, alice));
  const started = (await client.next())!;
  await client.next();
  const disconnectedAt = performance.now();
  await client.cancel();
  const closedAt = await fake.streamClosed();
  assert(
    closedAt - disconnectedAt < 100,
    `upstream closed ${closedAt - disconnectedAt} ms after the client left`,
  );
  fake.release();
  // The run records the cancellation once its loop has unwound.
  for (let i = 0; i < 50; i++) {
    const { conversation } = await managerGet(alice, started.conversation_id);
    if (conversation.runs[0].status !== "running") {
      assertEquals(conversation.runs[0].status, "cancelled");
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("the run never recorded the disconnect");
});

suite.test("conversation-run sends comment heartbeats while upstream is quiet", async () => {
  const beatRuntime = testRuntime(db, { env: { ...env, SSE_HEARTBEAT_MS: "40" } });
  const alice = await newUser(db);
  await giveKey(beatRuntime, alice, "openai", newKey());
  fake.chat = { kind: "gated", chunks: ["x", "y"] };
  const client = sseClient(
    await startRun({ messages, model: "m" }, alice, createRunHandler(beatRuntime)),
  );
  await client.next();
  await client.next();
  await new Promise((resolve) => setTimeout(resolve, 200));
  fake.release();
  await client.rest();
  assert(
    client.comments.filter((c) => c.trim() === "ping").length >= 2,
    `comments: ${client.comments}`,
  );
});

suite.test(
  "conversation-run continues the user's own conversation and refuses someone else's",
  async () => {
    const alice = await newUser(db);
    const bob = await newUser(db);
    await giveKey(runtime, alice, "openai", newKey());
    await giveKey(runtime, bob, "openai", newKey());
    fake.chat = { kind: "stream", chunks: ["ok"] };
    const first = await sseClient(await startRun({ messages, model: "m" }, alice)).rest();
    const conversationId = first[0].conversation_id;
    const second = await sseClient(
      await startRun({
        conversation_id: conversationId,
        messages: [...messages, { role: "assistant", content: "ok" }, {
          role: "user",
          content: "Again",
        }],
        model: "m",
      }, alice),
    ).rest();
    assertEquals(second.at(-1)?.type, "done");
    const { conversation } = await managerGet(alice, conversationId);
    assertEquals(conversation.messages.map((m: { content: string }) => m.content), [
      "Say hello",
      "ok",
      "Again",
      "ok",
    ]);

    const intruder = await startRun({ conversation_id: conversationId, messages, model: "m" }, bob);
    assertEquals(intruder.status, 404);
    assertEquals(intruder.headers.get("content-type"), "application/json; charset=utf-8");
    assertEquals((await intruder.json()).error.code, "NOT_FOUND");
  },
);

suite.test(
  "conversation-run answers auth and body problems as plain JSON before any stream",
  async () => {
    const alice = await newUser(db);
    const noAuth = await runHandler(
      jsonRequest("http://local/conversation-run", { messages, model: "m" }),
    );
    assertEquals(noAuth.status, 401);
    assertEquals((await noAuth.json()).error.code, "UNAUTHORIZED");
    for (
      const body of [{ messages: [], model: "m" }, { messages, model: "m", provider: "manus" }, {
        messages,
      }, {
        messages,
        model: "m",
        extra: 1,
      }]
    ) {
      const response = await startRun(body, alice);
      assertEquals(response.status, 400);
      assertEquals((await response.json()).error.code, "INVALID_REQUEST");
    }
  },
);

suite.test("conversation-run never puts the key in an event or a log line", async () => {
  const alice = await newUser(db);
  const key = newKey();
  await giveKey(runtime, alice, "openai", key);
  fake.chat = { kind: "status", status: 401 };
  const { result, lines } = await captureLogs(async () => {
    const response = await startRun({ messages, model: "m" }, alice);
    return await response.text();
  });
  for (const text of [result, ...lines]) assert(!text.includes(key.slice(3, 20)), "the key leaked");
});
