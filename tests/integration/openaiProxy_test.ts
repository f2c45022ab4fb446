import OpenAI from "openai";
import { startLocalStack } from "../../local/stack.ts";
import { concatChunks } from "../../supabase/functions/_shared/core/chunkReader.ts";
import { usageRecorderFor } from "../../supabase/functions/_shared/upstream/usageRecorder.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import {
  chatChunkEvent,
  FAKE_USAGE,
  type FakeUpstream,
  sseChat,
  stallRoute,
  startFakeUpstream,
  statusRoute,
  type StreamRecord,
} from "../support/fakeUpstream.ts";
import { captureLogs } from "../support/runtime.ts";
import { signInDevUser } from "../support/devAuth.ts";
import { expectApiError } from "../support/apiError.ts";
import { collectGarbage } from "../support/gc.ts";
import { integrationSuite } from "../support/suite.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import type { LocalStack } from "../../local/stack.ts";

const GLOBAL_KEY = "sk-global-must-never-be-used";
let db: Database;
let fake: FakeUpstream;
let dataDir: string;
const startStack = (env: Record<string, string>) =>
  startLocalStack({ dataDir, port: 0, db, env: { OPENAI_API_KEY: GLOBAL_KEY, ...env } });
let stack: LocalStack;
let proxyUrl: string;
const suite = integrationSuite("openai-proxy", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
    fake = startFakeUpstream();
    onTeardown(() => fake.close());
    dataDir = await Deno.makeTempDir({ prefix: "byok-test-stack-" });
    onTeardown(() => Deno.remove(dataDir, { recursive: true }));
    stack = await startStack({ OPENAI_BASE_URL: fake.baseUrl });
    onTeardown(() => stack.close());
    proxyUrl = `${stack.functionsUrl}/openai-proxy/v1`;
  },
});

interface ProxyUser {
  id: string;
  token: string;
  key: string | null;
}

const signIn = () => signInDevUser(stack.url);

/** A signed-in user who stored an OpenAI key through credentials-manager (or none). */
async function newProxyUser(withKey = true): Promise<ProxyUser> {
  const { id, token } = await signIn();
  if (!withKey) return { id, token, key: null };
  const key = `sk-user-${crypto.randomUUID()}`;
  const response = await fetch(`${stack.functionsUrl}/credentials-manager`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ action: "set", service: "openai", value: key }),
  });
  assertEquals(response.status, 200, await response.text());
  fake.validKeys.add(key);
  return { id, token, key };
}

const client = (user: ProxyUser) =>
  new OpenAI({ baseURL: proxyUrl, apiKey: user.token, maxRetries: 0 });

function assertNoLeaks(user: ProxyUser): void {
  for (const request of fake.requests) {
    assert(fake.keyOf(request) !== GLOBAL_KEY, "the global key went upstream");
    assert(!JSON.stringify(request.headers).includes(user.token), "the user's JWT went upstream");
  }
}

/** Posts a streaming chat request through the proxy and returns the raw response. */
function postStream(user: ProxyUser, signal?: AbortSignal): Promise<Response> {
  return fetch(`${proxyUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${user.token}` },
    body: JSON.stringify({
      model: "fake-model",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    }),
    signal,
  });
}

const sseEvents = (text: string) =>
  text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));

suite.test(
  `openai-proxy serves the SDK's non-streaming call with the user's own key (${DATABASE_KIND})`,
  async () => {
    const user = await newProxyUser();
    const { data, response } = await client(user).chat.completions.create({
      model: "fake-model",
      messages: [{ role: "user", content: "hello" }],
      user: user.id,
    }).withResponse();
    assertEquals(
      data.choices[0].message.content,
      `echo user=${user.id} key=${user.key!.slice(-6)}`,
    );
    assertEquals(data.usage, FAKE_USAGE);
    assertEquals(response.headers.get("x-key-source"), "user");
    assertEquals(response.headers.get("x-request-id"), "req_fake_ok");
    const seen = fake.requests.at(-1)!;
    assertEquals(seen.path, "/v1/chat/completions");
    assertEquals(fake.keyOf(seen), user.key);
    assertEquals(JSON.parse(seen.body).messages, [{ role: "user", content: "hello" }]);
    assertNoLeaks(user);
  },
);

suite.test(
  "openai-proxy passes on the provider's request id and rate limits, no other header",
  async () => {
    const user = await newProxyUser();
    fake.route(
      "POST /v1/chat/completions",
      () =>
        Response.json({ object: "chat.completion", choices: [], usage: FAKE_USAGE }, {
          headers: {
            "x-request-id": "req_headers",
            "openai-processing-ms": "7",
            "x-ratelimit-remaining-requests": "42",
            "x-ratelimit-reset-tokens": "1s",
            "set-cookie": "__cf_bm=upstream-session",
            "x-internal-route": "pool-7",
          },
        }),
    );
    try {
      const response = await fetch(`${proxyUrl}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${user.token}` },
        body: JSON.stringify({ model: "fake-model", messages: [{ role: "user", content: "hi" }] }),
      });
      assertEquals(response.status, 200);
      await response.body?.cancel();
      const passed = Object.fromEntries(
        [...response.headers].filter(([name]) => !name.startsWith("access-control-")),
      );
      delete passed["date"];
      assertEquals(passed, {
        "content-length": response.headers.get("content-length")!,
        "content-type": "application/json",
        "openai-processing-ms": "7",
        "x-key-source": "user",
        "x-ratelimit-remaining-requests": "42",
        "x-ratelimit-reset-tokens": "1s",
        "x-request-id": "req_headers",
      });
    } finally {
      fake.unroute("POST /v1/chat/completions");
    }
  },
);

suite.test("openai-proxy streams the SDK's streaming call exactly as the fake sent it", async () => {
  const user = await newProxyUser();
  const chunks = ["Hel", "lo", " wor", "ld"];
  fake.route("POST /v1/chat/completions", sseChat({ chunks, usage: FAKE_USAGE }));
  try {
    const stream = await client(user).chat.completions.create({
      model: "fake-model",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const deltas: string[] = [];
    let usage: unknown = null;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) deltas.push(chunk.choices[0].delta.content);
      if (chunk.usage) usage = chunk.usage;
    }
    assertEquals(deltas, chunks);
    assertEquals(usage, FAKE_USAGE);
    assertEquals(fake.keyOf(fake.requests.at(-1)!), user.key);

    const raw = await postStream(user);
    assertEquals(raw.headers.get("content-type"), "text/event-stream");
    assertEquals(raw.headers.get("x-key-source"), "user");
    const expected = chunks.map((c, i) => chatChunkEvent(i, c)).join("");
    assert((await raw.text()).startsWith(expected), "the stream was altered");
    assertNoLeaks(user);
  } finally {
    fake.unroute("POST /v1/chat/completions");
  }
});

suite.test(
  "openai-proxy covers models, model by id, embeddings, completions, responses and moderations",
  async () => {
    const user = await newProxyUser();
    const openai = client(user);
    const models = await openai.models.list();
    assertEquals(models.data[0].id, "fake-model");
    fake.route(
      "GET /v1/models/fake-model",
      () => Response.json({ id: "fake-model", object: "model" }),
    );
    for (const path of ["embeddings", "completions", "responses", "moderations"]) {
      fake.route(
        `POST /v1/${path}`,
        () => Response.json({ object: path, usage: { prompt_tokens: 1, total_tokens: 1 } }),
      );
    }
    try {
      assertEquals((await openai.models.retrieve("fake-model")).id, "fake-model");
      assertEquals(
        (await openai.embeddings.create({ model: "e", input: "x" })).object,
        "embeddings",
      );
      assertEquals(
        ((await openai.completions.create({ model: "c", prompt: "x" })) as { object: string })
          .object,
        "completions",
      );
      assertEquals(
        ((await openai.responses.create({ model: "r", input: "x" })) as { object: string }).object,
        "responses",
      );
      assertEquals(
        ((await openai.moderations.create({ input: "x" })) as unknown as { object: string }).object,
        "moderations",
      );
      const paths = fake.requests.slice(-6).map((r) => `${r.method} ${r.path}`);
      assertEquals(paths, [
        "GET /v1/models",
        "GET /v1/models/fake-model",
        "POST /v1/embeddings",
        "POST /v1/completions",
        "POST /v1/responses",
        "POST /v1/moderations",
      ]);
      for (const request of fake.requests.slice(-6)) assertEquals(fake.keyOf(request), user.key);
      const other = await fetch(`${proxyUrl}/files`, {
        headers: { authorization: `Bearer ${user.token}` },
      });
      assertEquals(other.status, 404);
      await other.body?.cancel();
    } finally {
      for (const path of ["embeddings", "completions", "responses", "moderations"]) {
        fake.unroute(`POST /v1/${path}`);
      }
    }
  },
);

suite.test(
  "openai-proxy gives a user with no key OPENAI_NOT_CONFIGURED, never the global key",
  async () => {
    const user = await newProxyUser(false);
    const before = fake.requests.length;
    const error = await expectApiError(
      client(user).chat.completions.create({
        model: "m",
        messages: [{ role: "user", content: "x" }],
      }),
    );
    assertEquals(error.status, 400);
    assertEquals(error.code, "OPENAI_NOT_CONFIGURED");
    assertEquals(fake.requests.length, before, "a request went upstream without a user key");
  },
);

suite.test("openai-proxy refuses a request without a valid user token", async () => {
  const error = await expectApiError(
    new OpenAI({ baseURL: proxyUrl, apiKey: "not-a-jwt", maxRetries: 0 }).models.list(),
  );
  assertEquals(error.status, 401);
  assertEquals(error.code, "UNAUTHORIZED");
});

suite.test("openai-proxy maps upstream 401, 429 and 500 to the envelope the SDK parses", async () => {
  const user = await newProxyUser();
  const cases: [number, Record<string, string>, number, string, boolean][] = [
    [401, {}, 401, "OPENAI_INVALID_KEY", false],
    [429, { "retry-after": "7" }, 429, "OPENAI_RATE_LIMITED", true],
    [500, {}, 502, "OPENAI_API_ERROR", true],
    [503, {}, 502, "OPENAI_API_ERROR", true],
  ];
  try {
    for (const [upstream, headers, status, code, recoverable] of cases) {
      fake.route("POST /v1/chat/completions", statusRoute(upstream, headers));
      const error = await expectApiError(
        client(user).chat.completions.create({
          model: "m",
          messages: [{ role: "user", content: "x" }],
        }),
      );
      assertEquals([error.status, error.code], [status, code]);
      const body = error.error as Record<string, unknown>;
      assertEquals(body.recoverable, recoverable);
      assertEquals(body.upstream_request_id, `req_fake_${upstream}`);
      assertEquals(error.headers?.get("x-key-source"), "user");
      if (headers["retry-after"]) assertEquals(error.headers?.get("retry-after"), "7");
      assert(!JSON.stringify(body).includes(user.key!), "the key leaked into the error");
    }
    fake.route("POST /v1/chat/completions", statusRoute(400));
    const badRequest = await expectApiError(
      client(user).chat.completions.create({
        model: "m",
        messages: [{ role: "user", content: "x" }],
      }),
    );
    assertEquals(badRequest.status, 400, "a 400 about the request passes through");
  } finally {
    fake.unroute("POST /v1/chat/completions");
  }
});

suite.test(
  "openai-proxy maps an unreachable upstream to OPENAI_UNREACHABLE 502 and logs it",
  async () => {
    const dead = startFakeUpstream();
    await dead.close();
    const other = await startStack({ OPENAI_BASE_URL: dead.baseUrl });
    try {
      const user = await newProxyUser();
      const { result: error, lines } = await captureLogs(() =>
        expectApiError(
          new OpenAI({
            baseURL: `${other.functionsUrl}/openai-proxy/v1`,
            apiKey: user.token,
            maxRetries: 0,
          }).models.list(),
        )
      );
      assertEquals([error.status, error.code], [502, "OPENAI_UNREACHABLE"]);
      assert((error.error as { recoverable?: boolean }).recoverable === true);
      const logged = lines.filter((line) => line.includes("provider unreachable"));
      assertEquals(logged.length, 1, lines.join("\n"));
      assert(logged[0].includes(new URL(dead.url).host), "the log line names the host");
      assert(!logged[0].includes(user.key!), "the log line carries no key");
      assert(!logged[0].includes(user.token), "the log line carries no token");
    } finally {
      await other.close();
    }
  },
);

suite.test("openai-proxy passes chunk i to the client before the fake sends chunk i+1", async () => {
  const user = await newProxyUser();
  const received: number[] = [];
  let heldBack = 0;
  const waiters = new Map<number, () => void>();
  const chunks = Array.from({ length: 6 }, (_, i) => `c${i}`);
  fake.route(
    "POST /v1/chat/completions",
    sseChat({
      chunks,
      // Chunk i waits until the client holds chunk i-1, or gives up after 2 s (buffering).
      beforeChunk: (index) =>
        received.length >= index ? Promise.resolve() : new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            heldBack++;
            resolve();
          }, 2_000);
          waiters.set(index, () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    }),
  );
  try {
    const response = await postStream(user);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      const count = (text.match(/chat\.completion\.chunk/g) ?? []).length;
      while (received.length < count) {
        received.push(performance.now());
        waiters.get(received.length)?.();
      }
    }
    assertEquals(heldBack, 0, "a chunk only reached the client after the next one was sent");
    assertEquals(received.length, chunks.length);
  } finally {
    fake.unroute("POST /v1/chat/completions");
  }
});

suite.test(
  "openai-proxy closes the upstream connection within 100 ms of the client aborting, counting the request once",
  async () => {
    const user = await newProxyUser();
    const streams: StreamRecord[] = [];
    fake.route(
      "POST /v1/chat/completions",
      sseChat({ chunks: Array(200).fill("x"), delayMs: 20, streams }),
    );
    try {
      const controller = new AbortController();
      const response = await postStream(user, controller.signal);
      const reader = response.body!.getReader();
      await reader.read();
      await reader.read();
      const abortedAt = performance.now();
      controller.abort();
      await reader.closed.catch(() => {});
      const deadline = abortedAt + 1_000;
      while (streams[0].closedAt === null && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      assert(streams[0].closedAt !== null, "the upstream never saw the abort");
      const lag = streams[0].closedAt! - abortedAt;
      assert(lag < 100, `upstream closed ${lag.toFixed(1)} ms after the abort`);
      assert(!streams[0].completed);

      // Both the client's cancel and the aborted upstream read end the relay: one usage record.
      await new Promise((r) => setTimeout(r, 50));
      await usageRecorderFor(db).flush();
      const [usage] = await db.query<{ requests: number }>(
        "select coalesce(sum(request_count), 0)::int as requests from public.usage_daily where user_id = $1",
        [user.id],
      );
      assertEquals(usage.requests, 1);
    } finally {
      fake.unroute("POST /v1/chat/completions");
    }
  },
);

suite.test("openai-proxy ends a stream reset mid-way with an error event, then closes", async () => {
  const user = await newProxyUser();
  fake.route("POST /v1/chat/completions", sseChat({ chunks: ["a", "b", "c", "d"], resetAfter: 2 }));
  try {
    const response = await postStream(user);
    assertEquals(response.status, 200);
    const events = sseEvents(await response.text());
    assertEquals(events.length, 3);
    const last = JSON.parse(events[2]);
    assertEquals(last.type, "error");
    assertEquals(last.error.code, "OPENAI_API_ERROR");
    assertEquals(last.error.recoverable, true);
  } finally {
    fake.unroute("POST /v1/chat/completions");
  }
});

suite.test("openai-proxy times out a stalled upstream with OPENAI_TIMEOUT", async () => {
  const user = await newProxyUser();
  const closed: number[] = [];
  const impatient = await startStack({ OPENAI_BASE_URL: fake.baseUrl, UPSTREAM_TIMEOUT_MS: "500" });
  const url = `${impatient.functionsUrl}/openai-proxy/v1`;
  fake.route("POST /v1/chat/completions", stallRoute(closed));
  try {
    const started = performance.now();
    const error = await expectApiError(
      new OpenAI({ baseURL: url, apiKey: user.token, maxRetries: 0 }).chat.completions.create({
        model: "m",
        messages: [{ role: "user", content: "x" }],
      }),
    );
    assertEquals([error.status, error.code], [504, "OPENAI_TIMEOUT"]);
    assert(performance.now() - started < 2_000);
    assertEquals(closed.length, 1, "the stalled upstream request was not closed");

    fake.route("POST /v1/chat/completions", sseChat({ chunks: ["a", "b", "c"], stallAfter: 1 }));
    const response = await fetch(`${url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ model: "m", stream: true, messages: [] }),
    });
    const events = sseEvents(await response.text());
    assertEquals(events.length, 2);
    assertEquals(JSON.parse(events[1]).error.code, "OPENAI_TIMEOUT");
  } finally {
    fake.unroute("POST /v1/chat/completions");
    await impatient.close();
  }
});

suite.test(
  "openai-proxy times out a small answer whose body stalls before its declared end",
  async () => {
    const user = await newProxyUser();
    const impatient = await startStack({
      OPENAI_BASE_URL: fake.baseUrl,
      UPSTREAM_TIMEOUT_MS: "500",
    });
    fake.route("POST /v1/chat/completions", () =>
      new Response(
        new ReadableStream({
          start: (controller) => controller.enqueue(new TextEncoder().encode('{"id":')),
        }),
        { headers: { "content-type": "application/json", "content-length": "100" } },
      ));
    try {
      const started = performance.now();
      const response = await fetch(`${impatient.functionsUrl}/openai-proxy/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${user.token}` },
        body: JSON.stringify({ model: "m", messages: [] }),
        signal: AbortSignal.timeout(8_000),
      });
      const body = await response.json();
      assertEquals([response.status, body.error.code], [504, "OPENAI_TIMEOUT"]);
      assert(performance.now() - started < 3_000);
    } finally {
      fake.unroute("POST /v1/chat/completions");
      await impatient.close();
    }
  },
);

suite.test(
  "openai-proxy closes the upstream of a small answer whose body stalls, even after a garbage collection",
  async () => {
    // The whole-body read used to leave the stalled body to the signal given to fetch, which
    // Deno's fetch holds weakly: after a collection the upstream connection stayed open.
    const user = await newProxyUser();
    const impatient = await startStack({
      OPENAI_BASE_URL: fake.baseUrl,
      UPSTREAM_TIMEOUT_MS: "600",
    });
    let closedAt: number | null = null;
    fake.route("POST /v1/chat/completions", () =>
      new Response(
        new ReadableStream({
          start: (controller) => controller.enqueue(new TextEncoder().encode('{"id":')),
          cancel: () => {
            closedAt = performance.now();
          },
        }),
        { headers: { "content-type": "application/json", "content-length": "100" } },
      ));
    try {
      const pending = fetch(`${impatient.functionsUrl}/openai-proxy/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${user.token}` },
        body: JSON.stringify({ model: "m", messages: [] }),
        signal: AbortSignal.timeout(8_000),
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      collectGarbage();
      const response = await pending;
      const body = await response.json();
      assertEquals([response.status, body.error.code], [504, "OPENAI_TIMEOUT"]);
      const answeredAt = performance.now();
      while (closedAt === null && performance.now() - answeredAt < 2_000) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert(closedAt !== null, "the stalled upstream body was not closed");
    } finally {
      fake.unroute("POST /v1/chat/completions");
      await impatient.close();
    }
  },
);

suite.test(
  "openai-proxy ends a stalled stream on time even after a garbage collection mid-stream",
  async () => {
    // Deno's fetch follows the signal it was given through a weak reference: once a collection
    // dropped it, aborting the signal no longer reached a body being read, and a stalled stream
    // (the first after start, when the most garbage is made) never ended.
    const user = await newProxyUser();
    const impatient = await startStack({
      OPENAI_BASE_URL: fake.baseUrl,
      UPSTREAM_TIMEOUT_MS: "600",
    });
    const streams: StreamRecord[] = [];
    fake.route(
      "POST /v1/chat/completions",
      sseChat({ chunks: ["a", "b", "c"], stallAfter: 1, streams }),
    );
    const gaveUp = AbortSignal.timeout(8_000);
    try {
      const started = performance.now();
      const response = await fetch(`${impatient.functionsUrl}/openai-proxy/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${user.token}` },
        body: JSON.stringify({ model: "m", stream: true, messages: [] }),
        signal: gaveUp,
      });
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = (await reader.read()).value ?? "";
      collectGarbage();
      for (let part = await reader.read(); !part.done; part = await reader.read()) {
        text += part.value;
      }
      const elapsed = performance.now() - started;
      const events = sseEvents(text);
      assertEquals(JSON.parse(events.at(-1)!).error.code, "OPENAI_TIMEOUT");
      assert(elapsed < 3_000, `the stalled stream ended after ${Math.round(elapsed)} ms`);
      assert(streams[0].closedAt !== null, "the stalled upstream stream was not closed");
    } finally {
      fake.unroute("POST /v1/chat/completions");
      await impatient.close();
    }
  },
);

suite.test(
  "openai-proxy sends 100 users' 20 concurrent requests each with their own keys",
  async () => {
    const users = await Promise.all(Array.from({ length: 100 }, () => newProxyUser()));
    const first = fake.requests.length;
    const results = await Promise.all(
      users.flatMap((user) =>
        Array.from({ length: 20 }, async () => {
          const response = await fetch(`${proxyUrl}/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${user.token}` },
            body: JSON.stringify({
              model: "m",
              messages: [{ role: "user", content: "x" }],
              user: user.id,
            }),
          });
          const body = await response.json();
          return { user, status: response.status, content: body.choices?.[0]?.message?.content };
        })
      ),
    );
    let mixUps = 0;
    for (const { user, status, content } of results) {
      assertEquals(status, 200);
      if (content !== `echo user=${user.id} key=${user.key!.slice(-6)}`) {
        mixUps++;
      }
    }
    const keyOf = new Map(users.map((u) => [u.id, u.key]));
    const seen = fake.requests.slice(first);
    assertEquals(seen.length, 2_000);
    for (const request of seen) {
      if (keyOf.get(JSON.parse(request.body).user) !== fake.keyOf(request)) mixUps++;
    }
    assertEquals(mixUps, 0);
  },
);

suite.test("openai-proxy records usage per user per day after a flush", async () => {
  const user = await newProxyUser();
  const openai = client(user);
  await openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] });
  const stream = await openai.chat.completions.create({
    model: "m",
    messages: [{ role: "user", content: "x" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const _ of stream) { /* drain */ }
  await usageRecorderFor(db).flush();
  const rows = await db.query<Record<string, unknown>>(
    `select day::text, service, key_source, request_count::int, prompt_tokens::int,
            completion_tokens::int, total_tokens::int
       from public.usage_daily where user_id = $1`,
    [user.id],
  );
  assertEquals([...rows], [{
    day: new Date().toISOString().slice(0, 10),
    service: "openai",
    key_source: "user",
    request_count: 2,
    prompt_tokens: 2 * FAKE_USAGE.prompt_tokens,
    completion_tokens: 2 * FAKE_USAGE.completion_tokens,
    total_tokens: 2 * FAKE_USAGE.total_tokens,
  }]);
  const [credential] = await db.query<{ used: boolean }>(
    `select last_used_at is not null as used from public.user_credentials
      where user_id = $1 and service = 'openai' and credential_key = 'api_key'`,
    [user.id],
  );
  assertEquals(credential.used, true);
});

/** `size` random bytes ending in a usage object, as the chunks a fake upstream sends them in. */
function longBody(size: number, usage: string): Uint8Array[] {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65_536) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65_536)));
  }
  bytes.set(new TextEncoder().encode(usage), size - usage.length);
  // Chunk sizes from 1 byte to past the proxy's 64 KiB read buffer.
  const chunks: Uint8Array[] = [];
  for (let at = 0, n = 1; at < size; n = (n * 7919) % 100_003 + 1) {
    chunks.push(bytes.slice(at, at + n));
    at += n;
  }
  return chunks;
}

const sha256 = async (bytes: Uint8Array<ArrayBuffer>) =>
  new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)).toString();

suite.test(
  "openai-proxy relays a long body byte for byte, streamed or not, and still reads its usage",
  async () => {
    // The relay releases each chunk's memory once the next is asked for (proxyStream.ts): what
    // the client gets must still be every byte the fake sent, and the usage at the very end.
    const user = await newProxyUser();
    const usage = '{"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}';
    for (const contentType of ["text/event-stream", "application/json"]) {
      const chunks = longBody(6 * 1024 * 1024, usage);
      fake.route(
        "POST /v1/chat/completions",
        () =>
          new Response(ReadableStream.from(chunks.map((c) => c.slice())), {
            headers: { "content-type": contentType },
          }),
      );
      try {
        const response = await postStream(user);
        assertEquals(response.headers.get("content-type"), contentType);
        const received = await response.bytes();
        assertEquals(received.byteLength, 6 * 1024 * 1024, contentType);
        assertEquals(await sha256(received), await sha256(concatChunks(chunks)), contentType);
      } finally {
        fake.unroute("POST /v1/chat/completions");
      }
    }
    await usageRecorderFor(db).flush();
    const [row] = await db.query<{ requests: number; total: number }>(
      `select request_count::int as requests, total_tokens::int as total
         from public.usage_daily where user_id = $1`,
      [user.id],
    );
    assertEquals(row, { requests: 2, total: 22 });
  },
);

suite.test(
  "openai-proxy never uses a key its owner turned off, and says it is off (OPENAI_NOT_CONFIGURED)",
  async () => {
    const user = await newProxyUser();
    const manage = (body: Record<string, unknown>) =>
      fetch(`${stack.functionsUrl}/credentials-manager`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${user.token}` },
        body: JSON.stringify(body),
      }).then((r) => r.json());
    const off = await manage({ action: "set_active", service: "openai", is_active: false });
    assertEquals(off.is_active, false);
    const before = fake.requests.length;
    const error = await expectApiError(
      client(user).chat.completions.create({
        model: "m",
        messages: [{ role: "user", content: "x" }],
      }),
    );
    assertEquals(error.status, 400);
    assertEquals((error.error as { code: string }).code, "OPENAI_NOT_CONFIGURED");
    assert(/turned off/.test(error.message), error.message);
    assertEquals(fake.requests.length, before, "a request went upstream with a disabled key");

    await manage({ action: "set_active", service: "openai", is_active: true });
    const { response } = await client(user).chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "x" }],
    }).withResponse();
    assertEquals(response.headers.get("x-key-source"), "user");
    assertEquals(fake.keyOf(fake.requests.at(-1)!), user.key);
  },
);
