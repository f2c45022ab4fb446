/**
 * What every security test file starts from: the whole local stack in this process (gateway and
 * every function declared in supabase/config.toml) on one test database, a fake upstream for
 * every provider, a leak scanner that sees every log line and response body, and helpers to
 * sign tokens with the stack's own project secret.
 */
import { declaredFunctions } from "../../local/functionRegistry.ts";
import { type LocalStack, startLocalStack } from "../../local/stack.ts";
import { PROVIDERS, SERVICES } from "../../supabase/functions/_shared/contract/providers.ts";
import { openTestDatabase } from "../support/database.ts";
import { type FakeUpstream, sseChat, startFakeUpstream } from "../support/fakeUpstream.ts";
import { signToken } from "../support/runtime.ts";
import { createLeakScanner, type LeakScanner } from "./leakScanner.ts";

/** SECURITY_FULL=1 (npm run test:security) runs the full counts; npm test runs small ones. */
export const FULL = Deno.env.get("SECURITY_FULL") === "1";

export interface SecurityStack {
  stack: LocalStack;
  fake: FakeUpstream;
  scanner: LeakScanner;
  functions: { name: string; verifyJwt: boolean }[];
  /** A signed-in user with a valid token; `providerKey` is their stored OpenAI key. */
  newUser(options?: { providerKey?: boolean }): Promise<SecurityUser>;
  /** Signs a token with the stack's project secret (claims override user defaults). */
  sign(claims: Record<string, unknown>, options?: Parameters<typeof signToken>[1]): Promise<string>;
  /** Sends a request through the gateway; the body is scanned for leaks. */
  send(path: string, init?: RequestInit): Promise<Answer>;
  close(): Promise<void>;
}

export interface SecurityUser {
  id: string;
  token: string;
  authorization: string;
  providerKey: string | null;
}

export interface Answer {
  status: number;
  text: string;
  json: unknown;
  headers: Headers;
}

/** A fake upstream that answers like a strict provider: 400 for a body that is not JSON. */
function strictFake(): FakeUpstream {
  const fake = startFakeUpstream();
  const badRequest = (message: string) =>
    Response.json({ error: { message, type: "invalid_request_error" } }, { status: 400 });
  const parse = (text: string): Record<string, unknown> | null => {
    try {
      const body = JSON.parse(text);
      return body && typeof body === "object" && !Array.isArray(body) ? body : null;
    } catch {
      return null;
    }
  };
  fake.route("POST /v1/chat/completions", (request, recorded) => {
    const body = parse(recorded.body);
    if (!body) return badRequest("We could not parse the JSON body of your request.");
    if (!fake.validKeys.has(fake.keyOf(recorded) ?? "")) {
      return Response.json({ error: { message: "Incorrect API key provided." } }, { status: 401 });
    }
    if (body.stream) return sseChat({ chunks: ["fuzz", " ok"] })(request, recorded);
    return Response.json({
      id: "chatcmpl-fake",
      object: "chat.completion",
      created: 1,
      model: "fake-model",
      choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    });
  });
  fake.route("POST /v1/embeddings", (_request, recorded) => {
    const body = parse(recorded.body);
    if (!body) return badRequest("We could not parse the JSON body of your request.");
    if (!fake.validKeys.has(fake.keyOf(recorded) ?? "")) {
      return Response.json({ error: { message: "Incorrect API key provided." } }, { status: 401 });
    }
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    return Response.json({
      object: "list",
      data: inputs.map((_, index) => ({ object: "embedding", index, embedding: [0.1, 0.2, 0.3] })),
      model: "text-embedding-3-small",
      usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
    });
  });
  return fake;
}

/** Starts the stack; call `close()` in the file's last test. */
export async function startSecurityStack(): Promise<SecurityStack> {
  const scanner = createLeakScanner();
  const restoreLogs = scanner.captureLogs();
  let closed = false;
  const db = await openTestDatabase();
  const fake = strictFake();
  const dataDir = await Deno.makeTempDir({ prefix: "byok-security-" });
  const env: Record<string, string> = { ALLOW_PRIVATE_BASE_URLS: "true" };
  for (const service of SERVICES) {
    const variable = PROVIDERS[service].baseUrlEnv;
    if (variable) env[variable] = fake.baseUrl;
  }
  const stack = await startLocalStack({ dataDir, port: 0, db, env });
  scanner.addSecret("project JWT secret", stack.jwtSecret);
  scanner.addSecret("encryption passphrase", stack.runtime.config.encryptionKey);
  scanner.addSecret("anon key", stack.anonKey, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.");
  scanner.addSecret(
    "service role key",
    stack.serviceRoleKey,
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.",
  );

  const sign: SecurityStack["sign"] = async (claims, options = {}) => {
    const token = await signToken(claims, { secret: stack.jwtSecret, ...options });
    return token;
  };

  const send: SecurityStack["send"] = async (path, init = {}) => {
    const response = await fetch(`${stack.url}${path}`, init);
    const text = await response.text();
    scanner.capture(`response ${init.method ?? "GET"} ${path}`, text);
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      // Streams and empty bodies are not JSON.
    }
    return { status: response.status, text, json, headers: response.headers };
  };

  return {
    stack,
    fake,
    scanner,
    functions: await declaredFunctions(),
    async newUser(options = {}) {
      const [user] = await db.query<{ id: string }>(
        "insert into auth.users (id, email) values (gen_random_uuid(), $1) returning id",
        [`security-${crypto.randomUUID()}@test.local`],
      );
      const token = await sign({ sub: user.id, email: `${user.id}@test.local` });
      scanner.addSecret(`user token ${user.id.slice(0, 8)}`, token, token.split(".")[0] + ".");
      let providerKey: string | null = null;
      if (options.providerKey) {
        providerKey = `sk-sec-${crypto.randomUUID().replaceAll("-", "")}`;
        scanner.addSecret(`provider key of ${user.id.slice(0, 8)}`, providerKey, "sk-sec-");
        fake.validKeys.add(providerKey);
        const stored = await send("/functions/v1/credentials-manager", {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ action: "set", service: "openai", value: providerKey }),
        });
        if (stored.status !== 200) throw new Error(`storing a key failed: ${stored.text}`);
      }
      return { id: user.id, token, authorization: `Bearer ${token}`, providerKey };
    },
    sign,
    send,
    async close() {
      if (closed) return;
      closed = true;
      restoreLogs();
      await stack.close();
      await fake.close();
      await db.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** A plausible, valid request body for each function the suite knows; `{action: "list"}` otherwise. */
export function plausibleBody(fn: string): Record<string, unknown> {
  const chat = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] };
  const known: Record<string, Record<string, unknown>> = {
    "credentials-manager": { action: "list" },
    "conversation-manager": { action: "list" },
    "conversation-cancel": { run_id: crypto.randomUUID() },
    "conversation-run": chat,
    "generate-embedding": { input: "hello" },
    "batch-embeddings": { inputs: ["hello", "world"] },
    "fetch-provider-models": { provider: "openai" },
    "manus-key-validate": {},
    "openai-proxy": chat,
    "llm-proxy": chat,
  };
  return known[fn] ?? { action: "list" };
}

export interface ProbeRequest {
  method: "GET" | "POST";
  /** Path after `/functions/v1/<fn>`. */
  sub: string;
  body?: string;
}

/** Routes of functions that dispatch on the path rather than on a body `action`. */
const PATH_ROUTES: Record<string, ProbeRequest[]> = {
  "llm-config": [
    { method: "GET", sub: "/me" },
    { method: "POST", sub: "/save", body: '{"provider":"openai","model":"gpt-4o-mini"}' },
    { method: "GET", sub: "/shared-keys" },
  ],
};

/**
 * Requests to try against a function: a POST of its plausible body to the bare path and to the
 * OpenAI-style sub-paths of the proxies (a function that does not route by path ignores them),
 * plus the path routes listed above.
 */
export function probeRequests(fn: string): ProbeRequest[] {
  const body = JSON.stringify(plausibleBody(fn));
  return [
    ...["", "/v1/chat/completions", "/openai/v1/chat/completions"].map((sub) => ({
      method: "POST" as const,
      sub,
      body,
    })),
    ...(PATH_ROUTES[fn] ?? []),
  ];
}

/** Headers for a JSON POST with an optional Authorization value. */
export function jsonHeaders(authorization?: string): Record<string, string> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (authorization) headers.authorization = authorization;
  return headers;
}

/** True for the `{"error": {"code", "message", "recoverable"}}` envelope. */
export function isEnvelope(json: unknown): json is { error: { code: string; message: string } } {
  const error = (json as { error?: Record<string, unknown> } | null)?.error;
  return !!error && typeof error.code === "string" && typeof error.message === "string" &&
    typeof error.recoverable === "boolean";
}

/** Stack frames and source paths: never in any response. */
export const STACK_TRACE = /\bat [\w$.<>]+ \(|file:\/\/|\/work\/|\.ts:\d+|node_modules/;

/** Text an error response must never contain: stack frames, file paths, SQL. */
export const INTERNALS =
  /\bat [\w$.<>]+ \(|file:\/\/|\/work\/|\.ts:\d+|node_modules|\bselect\b[^"]{0,80}\bfrom\b|\binsert into\b|\bpgp_sym_|\bsyntax error at or near\b|\brelation "|\bcolumn "/i;
