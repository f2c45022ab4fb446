/**
 * docs/proxy.md's client table, tested line by line: each row's client, pointed at the row's
 * base URL with the access token in the row's field, gets its answer from the user's own key,
 * and the fake saw that key (and not the token) in the provider's own header.
 */
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createGoogleGenerativeAI } from "@ai-sdk/google";
import { createOpenAI } from "@ai-sdk/openai";
import { GoogleGenAI } from "@google/genai";
import { generateText } from "ai";
import type { Service } from "../../supabase/functions/_shared/contract/providers.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import {
  type FakeNativeProviders,
  startFakeNativeProviders,
} from "../support/fakeNativeProviders.ts";
import {
  type FakeUpstream,
  type RecordedRequest,
  startFakeUpstream,
} from "../support/fakeUpstream.ts";
import { signInDevUser } from "../support/devAuth.ts";
import { integrationSuite } from "../support/suite.ts";
import { openLocalStack } from "../support/localStack.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import type { LocalStack } from "../../local/stack.ts";

const docs = await Deno.readTextFile(new URL("../../docs/proxy.md", import.meta.url));
const table = docs.slice(
  docs.indexOf("<!-- clients:start -->"),
  docs.indexOf("<!-- clients:end -->"),
);
/** [client, base URL, token field] per row, as the docs print them. */
const ROWS = table.split("\n").filter((line) => line.startsWith("| ") && !line.startsWith("| ---"))
  .slice(1).map((line) => line.split("|").slice(1, -1).map((cell) => cell.trim()));

let openaiFake: FakeUpstream;
let native: FakeNativeProviders;
let db: Database;
let stack: LocalStack;
const suite = integrationSuite("proxyClients", {
  async setup(onTeardown) {
    openaiFake = startFakeUpstream();
    onTeardown(() => openaiFake.close());
    native = startFakeNativeProviders();
    onTeardown(() => native.close());
    db = await openTestDatabase();
    onTeardown(() => db.close());
    stack = await openLocalStack(onTeardown, {
      db,
      env: {
        OPENAI_BASE_URL: `${openaiFake.url}/openai/v1`,
        PERPLEXITY_BASE_URL: `${openaiFake.url}/perplexity`,
        OPENROUTER_BASE_URL: `${openaiFake.url}/openrouter/api/v1`,
        ANTHROPIC_BASE_URL: native.anthropicBaseUrl,
        GEMINI_BASE_URL: native.geminiBaseUrl,
      },
    });
  },
});

const PREFIX: Record<string, string> = {
  openai: "sk-",
  gemini: "AIza",
  anthropic: "sk-ant-",
  perplexity: "pplx-",
  openrouter: "sk-or-",
  custom: "ck-",
};
const PROVIDERS = ["openai", "gemini", "anthropic", "perplexity", "openrouter", "custom"] as const;

async function set(token: string, service: string, value: string, key = "api_key") {
  const response = await fetch(`${stack.functionsUrl}/credentials-manager`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ action: "set", service, key, value }),
  });
  assertEquals(response.status, 200, await response.text());
}

/** A user with a key for every provider (the custom endpoint on the OpenAI fake). */
async function newUser() {
  const { token } = await signInDevUser(stack.url);
  const keys = {} as Record<(typeof PROVIDERS)[number], string>;
  for (const service of PROVIDERS) {
    keys[service] = `${PREFIX[service]}${crypto.randomUUID()}`;
    openaiFake.validKeys.add(keys[service]);
    native.validKeys.add(keys[service]);
  }
  await set(token, "custom", `${openaiFake.url}/custom/v1`, "base_url");
  for (const service of PROVIDERS) await set(token, service, keys[service]);
  return { token, keys };
}

type User = Awaited<ReturnType<typeof newUser>>;
/** One call through a client; resolves to the text it got back. */
type Run = (base: string, token: string) => Promise<string>;
const prompt = [{ role: "user" as const, content: "hi" }];

const chatText = async (openai: OpenAI) =>
  (await openai.chat.completions.create({ model: "m", messages: prompt })).choices[0].message
    .content ?? "";

const RUNNERS: Record<string, { service: Service; header: string; run: Run }> = {
  "`openai`": {
    service: "openai",
    header: "authorization",
    run: (base, token) => chatText(new OpenAI({ baseURL: base, apiKey: token, maxRetries: 0 })),
  },
  "`@ai-sdk/openai`": {
    service: "openai",
    header: "authorization",
    run: async (base, token) =>
      (await generateText({
        model: createOpenAI({ baseURL: base, apiKey: token }).chat("m"),
        prompt: "hi",
        maxRetries: 0,
      })).text,
  },
  "`@anthropic-ai/sdk`": {
    service: "anthropic",
    header: "x-api-key",
    run: async (base, token) => {
      const client = new Anthropic({ baseURL: base, apiKey: token, maxRetries: 0 });
      const message = await client.messages.create({ model: "c", max_tokens: 8, messages: prompt });
      return message.content.map((block) => block.type === "text" ? block.text : "").join("");
    },
  },
  "`@anthropic-ai/sdk` (bearer)": {
    service: "anthropic",
    header: "x-api-key",
    run: async (base, token) => {
      const client = new Anthropic({
        baseURL: base,
        authToken: token,
        apiKey: null,
        maxRetries: 0,
      });
      const message = await client.messages.create({ model: "c", max_tokens: 8, messages: prompt });
      return message.content.map((block) => block.type === "text" ? block.text : "").join("");
    },
  },
  "`@ai-sdk/anthropic`": {
    service: "anthropic",
    header: "x-api-key",
    run: async (base, token) =>
      (await generateText({
        model: createAnthropic({ baseURL: base, apiKey: token })("c"),
        prompt: "hi",
        maxRetries: 0,
      })).text,
  },
  "`@ai-sdk/anthropic` (bearer)": {
    service: "anthropic",
    header: "x-api-key",
    run: async (base, token) =>
      (await generateText({
        model: createAnthropic({ baseURL: base, authToken: token })("c"),
        prompt: "hi",
        maxRetries: 0,
      })).text,
  },
  "`@google/genai`": {
    service: "gemini",
    header: "x-goog-api-key",
    run: async (base, token) =>
      (await new GoogleGenAI({ apiKey: token, httpOptions: { baseUrl: base } }).models
        .generateContent({ model: "gemini-fake", contents: "hi" })).text ?? "",
  },
  "`@ai-sdk/google`": {
    service: "gemini",
    header: "x-goog-api-key",
    run: async (base, token) =>
      (await generateText({
        model: createGoogleGenerativeAI({ baseURL: base, apiKey: token })("gemini-fake"),
        prompt: "hi",
        maxRetries: 0,
      })).text,
  },
  "Gemini REST (`fetch`, `curl`)": {
    service: "gemini",
    header: "x-goog-api-key",
    run: async (base, token) => {
      const response = await fetch(`${base}/models/gemini-fake:generateContent?key=${token}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ contents: [{ parts: [{ text: "hi" }] }] }),
      });
      const body = await response.json();
      return body.candidates?.[0]?.content?.parts?.[0]?.text ?? JSON.stringify(body);
    },
  },
};

function lastRequest(): RecordedRequest {
  const all = [...openaiFake.requests, ...native.requests];
  return all.reduce((a, b) => (b.receivedAt > a.receivedAt ? b : a));
}

/** The key header value a request carried, bearer prefix removed. */
function keyIn(request: RecordedRequest, header: string): string | undefined {
  return request.headers[header]?.replace(/^Bearer /, "");
}

async function check(
  user: User,
  label: string,
  service: Service,
  header: string,
  run: Run,
  base: string,
) {
  const text = await run(base, user.token);
  assert(text.includes(user.keys[service as keyof User["keys"]].slice(-6)), `${label}: ${text}`);
  const seen = lastRequest();
  assertEquals(keyIn(seen, header), user.keys[service as keyof User["keys"]], label);
  assert(!JSON.stringify(seen).includes(user.token), `${label}: the token went upstream`);
}

suite.test(`docs/proxy.md's client table has a runner for each row (${DATABASE_KIND})`, () => {
  assert(ROWS.length >= 10, `only ${ROWS.length} rows`);
  for (const [client] of ROWS) {
    assert(client === "`openai` (any provider)" || client in RUNNERS, `no runner for ${client}`);
  }
  return Promise.resolve();
});

for (const [client, baseCell, field] of ROWS) {
  suite.test(`docs/proxy.md: ${client} at ${baseCell} with the token in ${field}`, async () => {
    const user = await newUser();
    const base = baseCell.match(/`([^`]+)`/)![1].replace("<functions>", stack.functionsUrl);
    if (client === "`openai` (any provider)") {
      for (const provider of PROVIDERS) {
        const header = provider === "anthropic" ? "x-api-key" : "authorization";
        await check(
          user,
          provider,
          provider,
          header,
          RUNNERS["`openai`"].run,
          base.replace("<provider>", provider),
        );
      }
      return;
    }
    const runner = RUNNERS[client];
    await check(user, client, runner.service, runner.header, runner.run, base);
  });
}
