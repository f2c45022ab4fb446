/**
 * No fallback to a key from the environment, on any path: with provider keys set in the
 * process environment (where a careless fallback would read them), a user without a stored key
 * gets `<SERVICE>_NOT_CONFIGURED` and no request reaches the provider.
 */
import { createHandler as createProxy } from "../../supabase/functions/openai-proxy/handler.ts";
import { createHandler as createLlmProxy } from "../../supabase/functions/llm-proxy/handler.ts";
import { createHandler as createEmbedding } from "../../supabase/functions/generate-embedding/handler.ts";
import { createHandler as createModels } from "../../supabase/functions/fetch-provider-models/handler.ts";
import { createHandler as createRun } from "../../supabase/functions/conversation-run/handler.ts";
import { PROVIDERS, SERVICES } from "../../supabase/functions/_shared/contract/providers.ts";
import { assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { startFakeChatUpstream } from "../support/fakeChatUpstream.ts";
import { jsonRequest, newUser, testRuntime } from "../support/runtime.ts";

const db = await openTestDatabase();
const fake = startFakeChatUpstream();
const env = Object.fromEntries(
  SERVICES.flatMap((s) =>
    PROVIDERS[s].baseUrlEnv ? [[PROVIDERS[s].baseUrlEnv!, fake.baseUrl]] : []
  ),
);
const rt = testRuntime(db, { env });
const ENV_KEY = `sk-env-fallback-${crypto.randomUUID()}`;
const ENV_NAMES = [
  ...SERVICES.map((s) => `${s.toUpperCase()}_API_KEY`),
  "GOOGLE_API_KEY",
  "API_KEY",
];

Deno.test(`no path falls back to a key from the environment (${DATABASE_KIND})`, async () => {
  const saved = new Map(ENV_NAMES.map((name) => [name, Deno.env.get(name)]));
  try {
    for (const name of ENV_NAMES) Deno.env.set(name, ENV_KEY);
    const user = await newUser(db);
    const chat = { model: "m", messages: [{ role: "user", content: "hi" }] };
    const calls: [string, Promise<Response>][] = [
      [
        "openai-proxy",
        createProxy(rt)(
          jsonRequest("http://local/openai-proxy/v1/chat/completions", chat, user.authorization),
        ),
      ],
      ...SERVICES.filter((s) => PROVIDERS[s].openAICompatible).map((service) =>
        [
          `llm-proxy ${service}`,
          createLlmProxy(rt)(
            jsonRequest(
              `http://local/llm-proxy/${service}/v1/chat/completions`,
              chat,
              user.authorization,
            ),
          ),
        ] as [string, Promise<Response>]
      ),
      [
        "generate-embedding",
        createEmbedding(rt)(
          jsonRequest("http://local/generate-embedding", { input: "x" }, user.authorization),
        ),
      ],
      [
        "fetch-provider-models",
        createModels(rt)(
          jsonRequest(
            "http://local/fetch-provider-models",
            { provider: "openai" },
            user.authorization,
          ),
        ),
      ],
      [
        "conversation-run",
        createRun(rt)(jsonRequest("http://local/conversation-run", chat, user.authorization)),
      ],
    ];
    const answers: string[] = [];
    for (const [name, pending] of calls) {
      const response = await pending;
      // conversation-run answers in its event stream; the others with a JSON envelope.
      const code = (await response.text()).match(/"code":"([A-Z_]+)"/)?.[1] ?? "none";
      answers.push(`${name} ${code.endsWith("_NOT_CONFIGURED")}`);
    }
    assertEquals(answers, calls.map(([name]) => `${name} true`));
    assertEquals(fake.requests.filter((r) => JSON.stringify(r.headers).includes(ENV_KEY)), []);
    assertEquals(fake.requests.length, 0);
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
    await fake.close();
    await db.close();
  }
});
