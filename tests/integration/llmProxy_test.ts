import OpenAI from "openai";
import type { Service } from "../../supabase/functions/_shared/contract/providers.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { sseChat, startFakeUpstream, statusRoute } from "../support/fakeUpstream.ts";
import { signInDevUser } from "../support/devAuth.ts";
import { expectApiError } from "../support/apiError.ts";
import { integrationSuite } from "../support/suite.ts";
import { openLocalStack } from "../support/localStack.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import type { LocalStack } from "../../local/stack.ts";
import type { FakeUpstream } from "../support/fakeUpstream.ts";

let db: Database;
let fake: FakeUpstream;
/** Each provider's base URL points at its own prefix on the fake, as on-premise gateways would. */
let BASES: Record<Exclude<Service, "custom" | "manus">, string>;
let CUSTOM_BASE: string;
let stack: LocalStack;
const suite = integrationSuite("llm-proxy", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
    fake = startFakeUpstream();
    onTeardown(() => fake.close());
    BASES = {
      openai: `${fake.url}/openai/v1`,
      gemini: `${fake.url}/gemini/v1beta/openai`,
      anthropic: `${fake.url}/anthropic/v1`,
      perplexity: `${fake.url}/perplexity`,
      openrouter: `${fake.url}/openrouter/api/v1`,
    };
    CUSTOM_BASE = `${fake.url}/custom/v1`;
    stack = await openLocalStack(onTeardown, {
      db,
      env: {
        OPENAI_BASE_URL: BASES.openai,
        GEMINI_BASE_URL: BASES.gemini,
        ANTHROPIC_BASE_URL: BASES.anthropic,
        PERPLEXITY_BASE_URL: BASES.perplexity,
        OPENROUTER_BASE_URL: BASES.openrouter,
        OPENAI_API_KEY: "sk-global-must-never-be-used",
        ANTHROPIC_API_KEY: "sk-ant-global-must-never-be-used",
      },
    });
  },
});

const KEY_PREFIX: Record<Service, string> = {
  openai: "sk-",
  gemini: "AIza",
  anthropic: "sk-ant-",
  perplexity: "pplx-",
  openrouter: "sk-or-",
  custom: "ck-",
  manus: "",
};

const signIn = async () => (await signInDevUser(stack.url)).token;

async function store(
  token: string,
  service: Service,
  value: string,
  key = "api_key",
): Promise<void> {
  const response = await fetch(`${stack.functionsUrl}/credentials-manager`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ action: "set", service, key, value }),
  });
  assertEquals(response.status, 200, await response.text());
}

const clientFor = (token: string, provider: string) =>
  new OpenAI({
    baseURL: `${stack.functionsUrl}/llm-proxy/${provider}/v1`,
    apiKey: token,
    maxRetries: 0,
  });

const chat = (openai: OpenAI) =>
  openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });

suite.test(
  `llm-proxy sends each provider's key in its own header to its own base URL (${DATABASE_KIND})`,
  async () => {
    const token = await signIn();
    for (const [service, base] of Object.entries(BASES) as [Service, string][]) {
      const key = `${KEY_PREFIX[service]}${crypto.randomUUID()}`;
      await store(token, service, key);
      fake.validKeys.add(key);
      const { data, response } = await chat(clientFor(token, service)).withResponse();
      assertEquals(data.choices[0].message.content, `echo user= key=${key.slice(-6)}`);
      assertEquals(response.headers.get("x-key-source"), "user");
      const seen = fake.requests.at(-1)!;
      assertEquals(`${fake.url}${seen.path}`, `${base}/chat/completions`);
      if (service === "anthropic") {
        assertEquals(seen.headers["x-api-key"], key);
        assertEquals(seen.headers["authorization"], undefined);
      } else {
        assertEquals(seen.headers["authorization"], `Bearer ${key}`);
      }
      assert(!JSON.stringify(seen.headers).includes(token), "the user's JWT went upstream");
      assert(
        !JSON.stringify(seen.headers).includes("global-must-never"),
        "a global key went upstream",
      );
    }
  },
);

suite.test("llm-proxy sends the custom endpoint's requests to the user's own base URL", async () => {
  const token = await signIn();
  const key = `ck-${crypto.randomUUID()}`;
  await store(token, "custom", key);
  const missingBase = await expectApiError(chat(clientFor(token, "custom")));
  assertEquals([missingBase.status, missingBase.code], [400, "CUSTOM_NOT_CONFIGURED"]);

  await store(token, "custom", CUSTOM_BASE, "base_url");
  fake.validKeys.add(key);
  const models = await clientFor(token, "custom").models.list();
  assertEquals(models.data[0].id, "fake-model");
  const seen = fake.requests.at(-1)!;
  assertEquals(`${fake.url}${seen.path}`, `${CUSTOM_BASE}/models`);
  assertEquals(fake.keyOf(seen), key);
});

suite.test("llm-proxy gives each provider its own NOT_CONFIGURED code", async () => {
  const token = await signIn();
  const before = fake.requests.length;
  for (
    const service of [
      "openai",
      "gemini",
      "anthropic",
      "perplexity",
      "openrouter",
      "custom",
    ] as const
  ) {
    const error = await expectApiError(chat(clientFor(token, service)));
    assertEquals([error.status, error.code], [400, `${service.toUpperCase()}_NOT_CONFIGURED`]);
  }
  assertEquals(fake.requests.length, before);
});

suite.test("llm-proxy maps upstream failures to the provider's own codes", async () => {
  const token = await signIn();
  const key = `AIza${crypto.randomUUID()}`;
  await store(token, "gemini", key);
  const route = "POST /gemini/v1beta/openai/chat/completions";
  try {
    fake.route(route, statusRoute(401));
    const invalid = await expectApiError(chat(clientFor(token, "gemini")));
    assertEquals([invalid.status, invalid.code], [401, "GEMINI_INVALID_KEY"]);
    fake.route(route, statusRoute(429, { "retry-after": "3" }));
    const limited = await expectApiError(chat(clientFor(token, "gemini")));
    assertEquals([limited.status, limited.code], [429, "GEMINI_RATE_LIMITED"]);
    assertEquals(limited.headers?.get("retry-after"), "3");
    fake.route(route, sseChat({ chunks: ["a", "b"], resetAfter: 1 }));
    const response = await fetch(`${stack.functionsUrl}/llm-proxy/gemini/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ model: "m", stream: true, messages: [] }),
    });
    const last = (await response.text()).trim().split("\n\n").at(-1)!;
    assertEquals(JSON.parse(last.slice(6)).error.code, "GEMINI_API_ERROR");
  } finally {
    fake.unroute(route);
  }
});

suite.test("llm-proxy refuses unknown providers, Manus and paths outside its route list", async () => {
  const token = await signIn();
  const before = fake.requests.length;
  for (
    const path of [
      "nope/v1/models",
      "manus/v1/models",
      "openai/v2/models",
      "openai/v1/fine_tuning/jobs",
      "perplexity/v1/files",
      "anthropic/v1/complete",
      "gemini/v1beta/models/m:predict",
      "gemini/v1beta/cachedContents",
    ]
  ) {
    // The user has no key at all: a path outside the list is refused before any lookup.
    const response = await fetch(`${stack.functionsUrl}/llm-proxy/${path}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assertEquals(response.status, 404, path);
    assertEquals((await response.json()).error.code, "NOT_FOUND");
  }
  assertEquals(fake.requests.length, before, "nothing went upstream");
  const wrongMethod = await fetch(`${stack.functionsUrl}/llm-proxy/openai/v1/chat/completions`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assertEquals(wrongMethod.status, 405);
  await wrongMethod.body?.cancel();
});
