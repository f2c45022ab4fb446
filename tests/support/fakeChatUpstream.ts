/**
 * A real HTTP fake of an OpenAI-compatible provider for conversations, models, embeddings and
 * Manus, on 127.0.0.1:0. It records every request, streams chat chunks with delays (or holds
 * each chunk until the test releases it), and can answer 401/429/500, stall, or reset mid-stream.
 * It also records when a streaming response's connection closed.
 */
import { FakeReset, quietOnReset } from "./fakeUpstream.ts";

export interface ChatRecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

export type ChatBehaviour =
  | { kind: "stream"; chunks: string[]; delayMs?: number; usage?: boolean }
  /** Sends chunk 0, then waits for `release()` before each next chunk. */
  | { kind: "gated"; chunks: string[] }
  /** An error answer; `body` replaces the default OpenAI-style error body. */
  | { kind: "status"; status: number; headers?: Record<string, string>; body?: unknown }
  /** Sends `chunks` then never sends anything again. */
  | { kind: "stall"; chunks: string[] }
  /** Sends `chunks` then breaks the connection. */
  | { kind: "reset"; chunks: string[] };

export interface FakeChatUpstream {
  url: string;
  baseUrl: string;
  requests: ChatRecordedRequest[];
  /** How the next chat completions are answered. */
  chat: ChatBehaviour;
  /** How GET /v1/models is answered: a list, a status, or never. */
  /** `stall-body`: headers and the start of the body, then nothing. */
  models: "list" | "stall" | "stall-body" | number;
  /** Delay before each embeddings answer, to observe concurrency. */
  embeddingsDelayMs: number;
  /** Most embeddings requests the fake has held at once. */
  maxEmbeddingsInFlight: number;
  /** Lets a `gated` stream send its next chunk. */
  release(): void;
  /** Resolves when a streaming response's connection has closed (finished, aborted or reset). */
  streamClosed(): Promise<number>;
  /** performance.now() when each chunk was written, for the current stream. */
  chunkSentAt: number[];
  keyOf(request: ChatRecordedRequest): string | null;
  close(): Promise<void>;
}

const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function chunkEvent(content: string): Uint8Array {
  const json = {
    id: "chatcmpl-fake",
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta: { content } }],
  };
  return encoder.encode(`data: ${JSON.stringify(json)}\n\n`);
}

const USAGE_EVENT = encoder.encode(
  `data: ${
    JSON.stringify({
      id: "chatcmpl-fake",
      choices: [],
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    })
  }\n\n`,
);

function keyFrom(headers: Record<string, string>): string | null {
  return headers["authorization"]?.match(/^Bearer\s+(.+)$/i)?.[1] ?? headers["x-api-key"] ??
    headers["api_key"] ??
    null;
}

/** Deterministic vector for an input: [length, first char code, 1]. */
export function fakeVector(input: string): number[] {
  return [input.length, input.charCodeAt(0), 1];
}

export function startFakeChatUpstream(): FakeChatUpstream {
  const requests: ChatRecordedRequest[] = [];
  let gate: (() => void) | null = null;
  let gateOpened = 0;
  let closedWaiters: ((at: number) => void)[] = [];
  let lastClosedAt: number | null = null;
  let inFlight = 0;

  const waitGate = () =>
    new Promise<void>((resolve) => {
      if (gateOpened > 0) {
        gateOpened--;
        resolve();
      } else gate = resolve;
    });

  const streamed = (behaviour: ChatBehaviour): ReadableStream<Uint8Array> => {
    lastClosedAt = null;
    fake.chunkSentAt = [];
    let finished = false;
    const markClosed = () => {
      if (finished) return;
      finished = true;
      lastClosedAt = performance.now();
      for (const waiter of closedWaiters) waiter(lastClosedAt);
      closedWaiters = [];
    };
    return new ReadableStream<Uint8Array>({
      async start(controller) {
        const send = (bytes: Uint8Array) => {
          if (finished) return false;
          controller.enqueue(bytes);
          fake.chunkSentAt.push(performance.now());
          return true;
        };
        if (behaviour.kind === "status") return;
        for (const [i, content] of behaviour.chunks.entries()) {
          if (i > 0 && behaviour.kind === "gated") await waitGate();
          if (i > 0 && behaviour.kind === "stream" && behaviour.delayMs) {
            await sleep(behaviour.delayMs);
          }
          if (!send(chunkEvent(content))) return;
        }
        if (behaviour.kind === "stall") return;
        if (behaviour.kind === "reset") {
          await sleep(20);
          controller.error(new FakeReset());
          markClosed();
          return;
        }
        if (behaviour.kind === "gated" || behaviour.usage !== false) send(USAGE_EVENT);
        send(encoder.encode("data: [DONE]\n\n"));
        controller.close();
        markClosed();
      },
      cancel() {
        markClosed();
      },
    });
  };

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {}, onError: quietOnReset },
    async (request) => {
      const url = new URL(request.url);
      const recorded: ChatRecordedRequest = {
        method: request.method,
        path: url.pathname + url.search,
        headers: Object.fromEntries(request.headers),
        body: request.body ? await request.text() : "",
      };
      requests.push(recorded);
      const key = keyFrom(recorded.headers);
      if (!key || key.includes("invalid")) {
        return Response.json({
          error: { message: "Incorrect API key provided.", type: "invalid_request_error" },
        }, {
          status: 401,
          headers: { "x-request-id": "req_fake_401" },
        });
      }

      if (request.method === "POST" && url.pathname === "/v1/chat/completions") {
        const behaviour = fake.chat;
        if (behaviour.kind === "status") {
          return Response.json(
            behaviour.body ?? { error: { message: "fake failure", type: "fake" } },
            {
              status: behaviour.status,
              headers: { "x-request-id": `req_fake_${behaviour.status}`, ...behaviour.headers },
            },
          );
        }
        return new Response(streamed(behaviour), {
          headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
        });
      }
      if (request.method === "GET" && url.pathname === "/v1/models") {
        if (fake.models === "stall") {
          await new Promise((resolve) =>
            request.signal.addEventListener("abort", resolve, { once: true })
          );
          return new Response(null, { status: 499 });
        }
        if (fake.models === "stall-body") {
          const body = new ReadableStream({
            start: (controller) => controller.enqueue(new TextEncoder().encode('{"object":')),
          });
          return new Response(body, { headers: { "content-type": "application/json" } });
        }
        if (typeof fake.models === "number") {
          return Response.json({ error: { message: "fake failure" } }, { status: fake.models });
        }
        return Response.json({
          object: "list",
          data: [{ id: "gpt-fake-1", object: "model", owned_by: "fake" }, {
            id: "gpt-fake-2",
            object: "model",
          }],
        });
      }
      if (request.method === "POST" && url.pathname === "/v1/embeddings") {
        const body = JSON.parse(recorded.body) as { input: string[] | string; model: string };
        const inputs = Array.isArray(body.input) ? body.input : [body.input];
        inFlight++;
        fake.maxEmbeddingsInFlight = Math.max(fake.maxEmbeddingsInFlight, inFlight);
        await sleep(fake.embeddingsDelayMs);
        inFlight--;
        if (inputs.some((input) => input.includes("REJECT"))) {
          return Response.json({ error: { message: "input rejected" } }, { status: 400 });
        }
        if (inputs.some((input) => input.includes("OUTAGE"))) {
          return Response.json({ error: { message: "outage" } }, { status: 503 });
        }
        return Response.json({
          object: "list",
          model: body.model,
          data: inputs.map((input, index) => ({
            object: "embedding",
            index,
            embedding: fakeVector(input),
          })),
          usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
        });
      }
      if (request.method === "GET" && url.pathname === "/v1/tasks") {
        return Response.json({ data: [] });
      }
      return Response.json({ error: { message: "no route" } }, { status: 404 });
    },
  );

  const url = `http://127.0.0.1:${server.addr.port}`;
  const fake: FakeChatUpstream = {
    url,
    baseUrl: `${url}/v1`,
    requests,
    chat: { kind: "stream", chunks: ["Hello", " world"] },
    models: "list",
    embeddingsDelayMs: 0,
    maxEmbeddingsInFlight: 0,
    chunkSentAt: [],
    release() {
      if (gate) {
        const open = gate;
        gate = null;
        open();
      } else gateOpened++;
    },
    streamClosed: () =>
      lastClosedAt !== null
        ? Promise.resolve(lastClosedAt)
        : new Promise((resolve) => closedWaiters.push(resolve)),
    keyOf: (request) => keyFrom(request.headers),
    close: () => server.shutdown(),
  };
  return fake;
}
