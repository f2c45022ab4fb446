/**
 * The rest of the OpenAI surface through the proxy with the real `openai` SDK (audio, images,
 * files, stored responses, conversations, batches, vector stores), on `openai-proxy`,
 * `llm-proxy/openai` and `llm-proxy/custom`; forwarded request and response headers; and a
 * Responses-API stream that breaks mid-way, as the openai SDK and the AI SDK see it.
 */
import OpenAI, { toFile } from "openai";
import { createOpenAI } from "@ai-sdk/openai";
import { streamText } from "ai";
import { CORS_RESPONSE_HEADERS } from "../../supabase/functions/_shared/http/pipeline.ts";
import { MAX_UPLOAD_BYTES } from "../../supabase/functions/_shared/upstream/proxyInbound.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import type { RecordedRequest } from "../support/fakeUpstream.ts";
import { signInDevUser } from "../support/devAuth.ts";
import { expectApiError } from "../support/apiError.ts";
import { integrationSuite } from "../support/suite.ts";
import { openLocalStack } from "../support/localStack.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import type { LocalStack } from "../../local/stack.ts";

/** Random bytes that are not valid UTF-8 text, so any re-encoding on the way shows. */
function binary(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65_536) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65_536)));
  }
  bytes[0] = 0xff;
  return bytes;
}

const SPEECH = binary(300 * 1024);
const FILE_CONTENT = binary(1024);

/** A fake of OpenAI's REST surface: records raw bodies, answers JSON (or bytes) for each path. */
function startSurfaceFake() {
  const requests: (RecordedRequest & { bytes: Uint8Array })[] = [];
  let responsesStream: (() => Response) | null = null;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const url = new URL(request.url);
      const bytes = new Uint8Array(await request.arrayBuffer());
      requests.push({
        method: request.method,
        path: url.pathname,
        search: url.search,
        headers: Object.fromEntries(request.headers),
        body: "",
        bytes,
        receivedAt: performance.now(),
      });
      const path = url.pathname.replace(/^\/[a-z]+\/v1/, "");
      const headers = {
        "x-request-id": "req_surface",
        "openai-processing-ms": "12",
        "x-ratelimit-remaining-requests": "99",
        "x-ratelimit-remaining-tokens": "9000",
        "openai-organization": "org-fake",
      };
      if (path === "/responses" && responsesStream) return responsesStream();
      if (path === "/audio/speech") {
        return new Response(SPEECH, { headers: { ...headers, "content-type": "audio/mpeg" } });
      }
      if (/^\/files\/[\w-]+\/content$/.test(path)) {
        return new Response(FILE_CONTENT, {
          headers: { ...headers, "content-type": "application/octet-stream" },
        });
      }
      if (path.startsWith("/audio/")) return Response.json({ text: "transcribed" }, { headers });
      return Response.json(
        { id: "obj_1", object: "echo", method: request.method, path, data: [], has_more: false },
        { headers },
      );
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  return {
    url,
    requests,
    setResponsesStream(make: (() => Response) | null) {
      responsesStream = make;
    },
    close: () => server.shutdown(),
  };
}

let fake: ReturnType<typeof startSurfaceFake>;
let db: Database;
let stack: LocalStack;
const suite = integrationSuite("openaiSurface", {
  async setup(onTeardown) {
    fake = startSurfaceFake();
    onTeardown(() => fake.close());
    db = await openTestDatabase();
    onTeardown(() => db.close());
    stack = await openLocalStack(onTeardown, {
      db,
      env: {
        OPENAI_BASE_URL: `${fake.url}/openai/v1`,
        OPENROUTER_BASE_URL: `${fake.url}/openrouter/v1`,
      },
    });
  },
});

async function setCredential(token: string, service: string, value: string, key = "api_key") {
  const response = await fetch(`${stack.functionsUrl}/credentials-manager`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ action: "set", service, key, value }),
  });
  assertEquals(response.status, 200, await response.text());
}

/** A user with an OpenAI key, a custom endpoint (the same fake) and an OpenRouter key. */
async function newUser() {
  const { token } = await signInDevUser(stack.url);
  const keys = {
    openai: `sk-${crypto.randomUUID()}`,
    custom: `ck-${crypto.randomUUID()}`,
    openrouter: `sk-or-${crypto.randomUUID()}`,
  };
  await setCredential(token, "openai", keys.openai);
  await setCredential(token, "custom", `${fake.url}/custom/v1`, "base_url");
  await setCredential(token, "custom", keys.custom);
  await setCredential(token, "openrouter", keys.openrouter);
  return { token, keys };
}

const ROUTES = [
  { name: "openai-proxy", base: "openai-proxy/v1", key: "openai", upstream: "/openai/v1" },
  { name: "llm-proxy/openai", base: "llm-proxy/openai/v1", key: "openai", upstream: "/openai/v1" },
  { name: "llm-proxy/custom", base: "llm-proxy/custom/v1", key: "custom", upstream: "/custom/v1" },
] as const;

/** Every request since `from` carried `key` as its bearer and nothing of the caller's token. */
function assertOwnKey(from: number, key: string, token: string) {
  const seen = fake.requests.slice(from);
  for (const request of seen) {
    assertEquals(request.headers.authorization, `Bearer ${key}`, request.path);
    assert(!JSON.stringify(request.headers).includes(token), "the access token went upstream");
  }
  return seen;
}

for (const route of ROUTES) {
  suite.test(
    `${route.name} serves audio, images, files, stored responses, conversations, batches and vector stores (${DATABASE_KIND})`,
    async () => {
      const user = await newUser();
      const openai = new OpenAI({
        baseURL: `${stack.functionsUrl}/${route.base}`,
        apiKey: user.token,
        maxRetries: 0,
      });
      const from = fake.requests.length;
      const audio = binary(12 * 1024 * 1024); // over the 10 MiB JSON bound, under the upload bound
      const file = await toFile(audio, "speech.wav", { type: "audio/wav" });
      const transcript = await openai.audio.transcriptions.create({ file, model: "whisper-1" });
      assertEquals(transcript.text, "transcribed");
      const upload = fake.requests.at(-1)!;
      assert(upload.headers["content-type"].startsWith("multipart/form-data; boundary="));
      assert(
        indexOf(upload.bytes, audio.subarray(0, 4096)) > 0,
        "the file's bytes went up as sent",
      );
      assertEquals(upload.bytes.byteLength > audio.byteLength, true);

      await openai.audio.translations.create({
        file: await toFile(binary(1000), "a.mp3"),
        model: "whisper-1",
      });
      const speech = await openai.audio.speech.create({
        model: "tts-1",
        voice: "alloy",
        input: "hi",
      });
      assertEquals(speech.headers.get("content-type"), "audio/mpeg");
      assertEquals(
        new Uint8Array(await speech.arrayBuffer()),
        SPEECH,
        "speech relayed byte for byte",
      );

      await openai.images.generate({ model: "gpt-image-1", prompt: "a cat" });
      await openai.images.edit({
        model: "gpt-image-1",
        image: await toFile(binary(2000), "cat.png", { type: "image/png" }),
        prompt: "a hat",
      });

      await openai.files.create({
        file: await toFile(FILE_CONTENT, "batch.jsonl"),
        purpose: "batch",
      });
      await openai.files.list();
      await openai.files.retrieve("file-1");
      const content = await openai.files.content("file-1");
      assertEquals(new Uint8Array(await content.arrayBuffer()), FILE_CONTENT);
      await openai.files.delete("file-1");

      await openai.responses.retrieve("resp_1");
      await openai.responses.delete("resp_1");
      await openai.responses.inputItems.list("resp_1");

      const conversation = await openai.conversations.create({});
      assertEquals(conversation.id, "obj_1");
      await openai.conversations.retrieve("conv_1");
      await openai.conversations.update("conv_1", { metadata: { a: "b" } });
      await openai.conversations.items.create("conv_1", {
        items: [{ type: "message", role: "user", content: "hi" }],
      });
      await openai.conversations.items.list("conv_1");
      await openai.conversations.items.retrieve("item_1", { conversation_id: "conv_1" });
      await openai.conversations.items.delete("item_1", { conversation_id: "conv_1" });
      await openai.conversations.delete("conv_1");

      await openai.batches.create({
        input_file_id: "file-1",
        endpoint: "/v1/responses",
        completion_window: "24h",
      });
      await openai.batches.retrieve("batch_1");
      await openai.batches.list();
      await openai.batches.cancel("batch_1");

      await openai.vectorStores.create({ name: "docs" });
      await openai.vectorStores.list();
      await openai.vectorStores.retrieve("vs_1");
      await openai.vectorStores.update("vs_1", { name: "docs2" });
      await openai.vectorStores.search("vs_1", { query: "q" });
      await openai.vectorStores.files.create("vs_1", { file_id: "file-1" });
      await openai.vectorStores.files.list("vs_1");
      await openai.vectorStores.files.retrieve("file-1", { vector_store_id: "vs_1" });
      await openai.vectorStores.files.delete("file-1", { vector_store_id: "vs_1" });
      await openai.vectorStores.fileBatches.create("vs_1", { file_ids: ["file-1"] });
      await openai.vectorStores.fileBatches.retrieve("vsfb_1", { vector_store_id: "vs_1" });
      await openai.vectorStores.fileBatches.cancel("vsfb_1", { vector_store_id: "vs_1" });
      await openai.vectorStores.fileBatches.listFiles("vsfb_1", { vector_store_id: "vs_1" });
      await openai.vectorStores.delete("vs_1");

      const seen = assertOwnKey(from, user.keys[route.key], user.token);
      assertEquals(seen.length, 39);
      for (const request of seen) assert(request.path.startsWith(route.upstream), request.path);
      const paths = new Set(seen.map((r) => `${r.method} ${r.path.slice(route.upstream.length)}`));
      for (
        const expected of [
          "POST /audio/transcriptions",
          "POST /audio/translations",
          "POST /audio/speech",
          "POST /images/edits",
          "DELETE /responses/resp_1",
          "GET /responses/resp_1/input_items",
          "DELETE /conversations/conv_1/items/item_1",
          "POST /batches/batch_1/cancel",
          "GET /vector_stores/vs_1/file_batches/vsfb_1/files",
        ]
      ) {
        assert(paths.has(expected), `${expected} not among ${[...paths].join(", ")}`);
      }
    },
  );
}

suite.test(
  "openai-proxy refuses an upload past the upload bound before anything goes upstream",
  async () => {
    const user = await newUser();
    const from = fake.requests.length;
    const response = await fetch(`${stack.functionsUrl}/openai-proxy/v1/audio/transcriptions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${user.token}`,
        "content-type": "multipart/form-data; boundary=x",
      },
      body: new Uint8Array(MAX_UPLOAD_BYTES + 1),
    });
    assertEquals(response.status, 413);
    assertEquals((await response.json()).error.code, "PAYLOAD_TOO_LARGE");
    // A JSON endpoint keeps the 10 MiB bound.
    const json = await fetch(`${stack.functionsUrl}/openai-proxy/v1/images/generations`, {
      method: "POST",
      headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" },
      body: new Uint8Array(11 * 1024 * 1024),
    });
    assertEquals(json.status, 413);
    await json.body?.cancel();
    assertEquals(fake.requests.length, from, "nothing went upstream");

    // A chunked upload declares no length: it is counted as it streams through, and cut off.
    let sent = 0;
    const chunk = new Uint8Array(1024 * 1024);
    const chunked = await fetch(`${stack.functionsUrl}/openai-proxy/v1/files`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${user.token}`,
        "content-type": "multipart/form-data; boundary=x",
      },
      body: new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent > MAX_UPLOAD_BYTES + chunk.byteLength) return controller.close();
          sent += chunk.byteLength;
          controller.enqueue(chunk);
        },
      }),
      duplex: "half",
    } as RequestInit);
    assertEquals(chunked.status, 413);
    assertEquals((await chunked.json()).error.code, "PAYLOAD_TOO_LARGE");
  },
);

suite.test(
  "the proxy forwards OpenAI's and OpenRouter's client headers and exposes the provider's",
  async () => {
    const user = await newUser();
    const openai = new OpenAI({
      baseURL: `${stack.functionsUrl}/openai-proxy/v1`,
      apiKey: user.token,
      organization: "org-client",
      project: "proj_client",
      maxRetries: 0,
    });
    const { response } = await openai.images.generate({ model: "m", prompt: "p" }).withResponse();
    const seen = fake.requests.at(-1)!;
    assertEquals(seen.headers["openai-organization"], "org-client");
    assertEquals(seen.headers["openai-project"], "proj_client");

    const exposed = new Set(
      response.headers.get("access-control-expose-headers")!.split(",").map((h) => h.trim()),
    );
    for (
      const name of [
        "x-request-id",
        "openai-processing-ms",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-remaining-tokens",
        "openai-organization",
      ]
    ) {
      assert(response.headers.get(name), `${name} was not passed back`);
      assert(exposed.has(name), `${name} is not exposed to browsers`);
    }
    assertEquals(
      response.headers.get("access-control-expose-headers"),
      CORS_RESPONSE_HEADERS["access-control-expose-headers"],
    );

    const openrouter = new OpenAI({
      baseURL: `${stack.functionsUrl}/llm-proxy/openrouter/v1`,
      apiKey: user.token,
      defaultHeaders: { "HTTP-Referer": "https://app.example", "X-Title": "Example App" },
      maxRetries: 0,
    });
    await openrouter.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "x" }],
    });
    const routed = fake.requests.at(-1)!;
    assertEquals(routed.path, "/openrouter/v1/chat/completions");
    assertEquals(routed.headers["http-referer"], "https://app.example");
    assertEquals(routed.headers["x-title"], "Example App");
    assertEquals(routed.headers.authorization, `Bearer ${user.keys.openrouter}`);
  },
);

/** A Responses-API stream that sends a few events, then breaks the connection. */
function brokenResponsesStream(): Response {
  const encoder = new TextEncoder();
  const events = [
    {
      type: "response.created",
      sequence_number: 0,
      response: {
        id: "resp_1",
        object: "response",
        created_at: 1,
        model: "m",
        status: "in_progress",
        output: [],
      },
    },
    {
      type: "response.output_item.added",
      sequence_number: 1,
      output_index: 0,
      item: { id: "msg_1", type: "message", status: "in_progress", role: "assistant", content: [] },
    },
    {
      type: "response.output_text.delta",
      sequence_number: 2,
      item_id: "msg_1",
      output_index: 0,
      content_index: 0,
      delta: "Hel",
      logprobs: [],
    },
  ];
  let index = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (index === events.length) {
        controller.error(new Error("fake reset"));
        return;
      }
      const event = events[index++];
      controller.enqueue(
        encoder.encode(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`),
      );
    },
  }, { highWaterMark: 0 });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

suite.test(
  "a Responses stream that breaks ends with a Responses error event the SDKs read",
  async () => {
    const user = await newUser();
    fake.setResponsesStream(brokenResponsesStream);
    try {
      const openai = new OpenAI({
        baseURL: `${stack.functionsUrl}/openai-proxy/v1`,
        apiKey: user.token,
        maxRetries: 0,
      });
      const types: string[] = [];
      const error = await expectApiError((async () => {
        const stream = await openai.responses.create({ model: "m", input: "hi", stream: true });
        for await (const event of stream) types.push(event.type);
      })());
      assertEquals(types, [
        "response.created",
        "response.output_item.added",
        "response.output_text.delta",
      ]);
      assertEquals(error.code, "OPENAI_API_ERROR");

      // The raw event: the Responses API's own error fields, and our envelope.
      const raw = await fetch(`${stack.functionsUrl}/openai-proxy/v1/responses`, {
        method: "POST",
        headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "m", input: "hi", stream: true }),
      });
      const last = (await raw.text()).trim().split("\n\n").at(-1)!;
      assert(last.startsWith("event: error\n"), last);
      const event = JSON.parse(last.split("\ndata: ")[1]);
      assertEquals(
        [event.type, event.sequence_number, event.code, event.param],
        ["error", 3, "OPENAI_API_ERROR", null],
      );
      assertEquals(event.error.code, "OPENAI_API_ERROR");
      assertEquals(event.error.recoverable, true);

      // The AI SDK's default OpenAI model speaks the Responses API.
      const provider = createOpenAI({
        baseURL: `${stack.functionsUrl}/openai-proxy/v1`,
        apiKey: user.token,
      });
      const errors: unknown[] = [];
      const result = streamText({
        model: provider("m"),
        prompt: "hi",
        maxRetries: 0,
        onError: ({ error }) => void errors.push(error),
      });
      let text = "";
      for await (const part of result.fullStream) {
        if (part.type === "text-delta") text += part.text;
        if (part.type === "error") errors.push(part.error);
      }
      assertEquals(text, "Hel");
      assert(errors.length > 0, "the AI SDK saw no error");
      const described = JSON.stringify(
        errors.map((e) => ({ ...(e as object), message: (e as Error).message })),
      );
      assert(described.includes("OPENAI_API_ERROR"), described);
      assert(!described.includes("TypeValidationError"), described);
    } finally {
      fake.setResponsesStream(null);
    }
  },
);

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i <= haystack.byteLength - needle.byteLength; i++) {
    for (let j = 0; j < needle.byteLength; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
