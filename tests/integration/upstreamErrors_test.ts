/**
 * Upstream failures as users meet them, through every caller (the proxy with the real openai
 * SDK, validate, fetch-provider-models, generate-embedding), against a fake that answers as each
 * provider does.
 */
import OpenAI from "openai";
import type { Service } from "../../supabase/functions/_shared/contract/providers.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { startFakeUpstream } from "../support/fakeUpstream.ts";
import { PROVIDER_ERRORS, providerErrorRoute } from "../support/providerErrors.ts";
import { signInDevUser } from "../support/devAuth.ts";
import { expectApiError } from "../support/apiError.ts";
import { integrationSuite } from "../support/suite.ts";
import { openLocalStack } from "../support/localStack.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import type { LocalStack } from "../../local/stack.ts";
import type { FakeUpstream } from "../support/fakeUpstream.ts";

let db: Database;
let fake: FakeUpstream;
let BASES: Record<"openai" | "gemini" | "anthropic" | "openrouter" | "perplexity", string>;
let stack: LocalStack;
const suite = integrationSuite("upstreamErrors", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
    fake = startFakeUpstream();
    onTeardown(() => fake.close());
    const dead = startFakeUpstream();
    await dead.close();
    BASES = {
      openai: `${fake.url}/openai/v1`,
      gemini: `${fake.url}/gemini/v1beta/openai`,
      anthropic: `${fake.url}/anthropic/v1`,
      openrouter: `${fake.url}/openrouter/api/v1`,
      perplexity: dead.baseUrl,
    };
    stack = await openLocalStack(onTeardown, {
      db,
      env: {
        OPENAI_BASE_URL: BASES.openai,
        GEMINI_BASE_URL: BASES.gemini,
        ANTHROPIC_BASE_URL: BASES.anthropic,
        OPENROUTER_BASE_URL: BASES.openrouter,
        PERPLEXITY_BASE_URL: BASES.perplexity,
      },
    });
  },
});
const path = (service: keyof typeof BASES, rest: string) => new URL(BASES[service] + rest).pathname;

async function call(fn: string, token: string, body: unknown) {
  const response = await fetch(`${stack.functionsUrl}/${fn}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: JSON.parse(text) };
}

async function userWithKey(service: Service, key: string) {
  const { token } = await signInDevUser(stack.url);
  const set = await call("credentials-manager", token, { action: "set", service, value: key });
  assertEquals(set.status, 200, set.text);
  return token;
}

suite.test(
  `validate records quota_exceeded, invalid and unreachable from what the provider said (${DATABASE_KIND})`,
  async () => {
    const cases: [Service, string, keyof typeof PROVIDER_ERRORS | null, string, string][] = [
      ["openai", "/models", "openaiInsufficientQuota", "quota_exceeded", "OPENAI_QUOTA_EXCEEDED"],
      ["openai", "/models", "openaiRateLimited", "unreachable", "OPENAI_RATE_LIMITED"],
      ["gemini", "/models", "geminiInvalidKeyArray", "invalid", "GEMINI_INVALID_KEY"],
      ["gemini", "/models", "geminiPermissionDenied", "invalid", "GEMINI_INVALID_KEY"],
      [
        "anthropic",
        "/models",
        "anthropicCreditBalance",
        "quota_exceeded",
        "ANTHROPIC_QUOTA_EXCEEDED",
      ],
      ["anthropic", "/models", "anthropicOverloaded", "unreachable", "ANTHROPIC_API_ERROR"],
      ["openrouter", "/key", "openrouterNoCredits", "quota_exceeded", "OPENROUTER_QUOTA_EXCEEDED"],
      ["perplexity", "/models", null, "unreachable", "PERPLEXITY_UNREACHABLE"],
    ];
    const prefix: Record<string, string> = {
      openai: "sk-",
      gemini: "AIza",
      anthropic: "sk-ant-",
      openrouter: "sk-or-",
      perplexity: "pplx-",
    };
    for (const [service, rest, answer, status, code] of cases) {
      const key = `${prefix[service]}${crypto.randomUUID()}`;
      const token = await userWithKey(service, key);
      const route = `GET ${path(service as keyof typeof BASES, rest)}`;
      if (answer) fake.route(route, providerErrorRoute(PROVIDER_ERRORS[answer]));
      try {
        const result = await call("credentials-manager", token, { action: "validate", service });
        assertEquals(result.status, 200, result.text);
        assertEquals(
          [result.json.validation_status, result.json.error?.code],
          [status, code],
          `${service} ${answer}`,
        );
        assertEquals(result.json.valid, false);
        if (answer) {
          assertEquals(result.json.error.upstream_status, PROVIDER_ERRORS[answer].status);
        }
        assert(!result.text.includes(key), "the key leaked");
        const stored = await call("credentials-manager", token, { action: "get_status", service });
        assertEquals(stored.json.validation_status, status);
      } finally {
        fake.unroute(route);
      }
    }
  },
);

suite.test(
  "fetch-provider-models and generate-embedding map a bad Gemini key and no OpenAI credit",
  async () => {
    const gemini = await userWithKey("gemini", `AIza${crypto.randomUUID()}`);
    const modelsRoute = `GET ${path("gemini", "/models")}`;
    fake.route(modelsRoute, providerErrorRoute(PROVIDER_ERRORS.geminiInvalidKeyArray));
    const openai = await userWithKey("openai", `sk-${crypto.randomUUID()}`);
    const embedRoute = `POST ${path("openai", "/embeddings")}`;
    fake.route(embedRoute, providerErrorRoute(PROVIDER_ERRORS.openaiInsufficientQuota));
    try {
      const models = await call("fetch-provider-models", gemini, { provider: "gemini" });
      assertEquals([models.status, models.json.error.code], [401, "GEMINI_INVALID_KEY"]);
      assertEquals(models.json.error.upstream_code, "API_KEY_INVALID");
      const embedding = await call("generate-embedding", openai, { input: "hello" });
      assertEquals([embedding.status, embedding.json.error.code], [402, "OPENAI_QUOTA_EXCEEDED"]);
      assertEquals(embedding.json.error.recoverable, false);
      assertEquals(embedding.json.error.upstream_request_id, "req_quota_1");
    } finally {
      fake.unroute(modelsRoute);
      fake.unroute(embedRoute);
    }
  },
);

suite.test(
  "llm-proxy: the openai SDK does not retry a key without credit, and sees our code",
  async () => {
    const token = await userWithKey("openai", `sk-${crypto.randomUUID()}`);
    const route = `POST ${path("openai", "/chat/completions")}`;
    fake.route(route, providerErrorRoute(PROVIDER_ERRORS.openaiInsufficientQuota));
    try {
      const before = fake.requests.length;
      // The SDK's default retries (2) stay on: a quota error must not be retried.
      const openai = new OpenAI({
        baseURL: `${stack.functionsUrl}/llm-proxy/openai/v1`,
        apiKey: token,
      });
      const error = await expectApiError(
        openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      );
      assertEquals([error.status, error.code], [402, "OPENAI_QUOTA_EXCEEDED"]);
      assertEquals((error.error as Record<string, unknown>).upstream_code, "insufficient_quota");
      assertEquals(fake.requests.length - before, 1, "the SDK retried");
    } finally {
      fake.unroute(route);
    }
  },
);

suite.test(
  "llm-proxy: Gemini's array-shaped errors become a code, or an object the SDK reads",
  async () => {
    const token = await userWithKey("gemini", `AIza${crypto.randomUUID()}`);
    const route = `POST ${path("gemini", "/chat/completions")}`;
    const openai = new OpenAI({
      baseURL: `${stack.functionsUrl}/llm-proxy/gemini/v1`,
      apiKey: token,
      maxRetries: 0,
    });
    const chat = () =>
      openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
    try {
      fake.route(route, providerErrorRoute(PROVIDER_ERRORS.geminiInvalidKeyArray));
      const invalid = await expectApiError(chat());
      assertEquals([invalid.status, invalid.code], [401, "GEMINI_INVALID_KEY"]);
      fake.route(route, providerErrorRoute(PROVIDER_ERRORS.geminiBadModelArray));
      const badModel = await expectApiError(chat());
      assertEquals(badModel.status, 400);
      assert(badModel.message.includes("unexpected model name format"), badModel.message);
      assertEquals((badModel.error as { status?: string }).status, "INVALID_ARGUMENT");
    } finally {
      fake.unroute(route);
    }
  },
);

suite.test(
  "llm-proxy: Anthropic's 529 overloaded is recoverable, its credit error is not",
  async () => {
    const token = await userWithKey("anthropic", `sk-ant-${crypto.randomUUID()}`);
    const route = `POST ${path("anthropic", "/chat/completions")}`;
    const openai = new OpenAI({
      baseURL: `${stack.functionsUrl}/llm-proxy/anthropic/v1`,
      apiKey: token,
      maxRetries: 0,
    });
    const chat = () =>
      openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
    try {
      fake.route(route, providerErrorRoute(PROVIDER_ERRORS.anthropicOverloaded));
      const overloaded = await expectApiError(chat());
      assertEquals([overloaded.status, overloaded.code], [502, "ANTHROPIC_API_ERROR"]);
      assertEquals((overloaded.error as Record<string, unknown>).recoverable, true);
      assertEquals((overloaded.error as Record<string, unknown>).upstream_status, 529);
      fake.route(route, providerErrorRoute(PROVIDER_ERRORS.anthropicCreditBalance));
      const credit = await expectApiError(chat());
      assertEquals([credit.status, credit.code], [402, "ANTHROPIC_QUOTA_EXCEEDED"]);
      assertEquals(
        (credit.error as Record<string, unknown>).upstream_request_id,
        "req_011CreditLow",
      );
    } finally {
      fake.unroute(route);
    }
  },
);
