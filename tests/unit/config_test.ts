import { ConfigError, loadConfig } from "../../supabase/functions/_shared/core/config.ts";
import { createHandler } from "../../supabase/functions/credentials-manager/handler.ts";
import { loadConfig as load } from "../../supabase/functions/_shared/core/config.ts";
import { captureLogs } from "../support/runtime.ts";
import { assert, assertEquals } from "../support/assert.ts";

const base = {
  CREDENTIALS_ENCRYPTION_KEY: "a-long-enough-passphrase",
  JWT_SECRET: "jwt-secret",
};

function configError(env: Record<string, string>): string | null {
  try {
    loadConfig(env);
    return null;
  } catch (error) {
    return error instanceof ConfigError ? error.variable : "not a ConfigError";
  }
}

Deno.test("loadConfig names the missing or malformed variable", () => {
  assertEquals(configError({ JWT_SECRET: "x" }), "CREDENTIALS_ENCRYPTION_KEY");
  assertEquals(
    configError({ ...base, CREDENTIALS_ENCRYPTION_KEY: "   " }),
    "CREDENTIALS_ENCRYPTION_KEY",
  );
  assertEquals(
    configError({ ...base, CREDENTIALS_ENCRYPTION_KEY: "short" }),
    "CREDENTIALS_ENCRYPTION_KEY",
  );
  assertEquals(
    configError({ CREDENTIALS_ENCRYPTION_KEY: base.CREDENTIALS_ENCRYPTION_KEY }),
    "JWT_SECRET",
  );
  assertEquals(
    configError({ ...base, CREDENTIALS_LOOKUP_TIMEOUT_MS: "soon" }),
    "CREDENTIALS_LOOKUP_TIMEOUT_MS",
  );
  assertEquals(configError({ ...base, SUPABASE_JWKS: "{not json" }), "SUPABASE_JWKS");
  assertEquals(configError(base), null);
});

Deno.test("loadConfig trims values and points providers at their deployment settings", () => {
  const config = load({
    ...base,
    OPENAI_BASE_URL: "  http://gateway.internal/v1/  ",
    SUPABASE_URL: "https://x.supabase.co",
  });
  assertEquals(config.providerBaseUrls.openai, "http://gateway.internal/v1");
  assertEquals(config.providerBaseUrls.anthropic, "https://api.anthropic.com/v1");
  assertEquals(config.jwt.secret, "jwt-secret");
  assertEquals(config.allowOwnerNameSharing, false);
});

Deno.test("a function without its secrets answers 500 CONFIG_ERROR without naming the secret's value", async () => {
  const handler = createHandler(() => loadConfig({}) as never);
  const { result, lines } = await captureLogs(() =>
    handler(new Request("http://local/credentials-manager", { method: "POST", body: "{}" }))
  );
  assertEquals(result.status, 500);
  const body = await result.json();
  assertEquals(body.error.code, "CONFIG_ERROR");
  assert(!JSON.stringify(body).includes("stack"));
  assert(lines.some((line) => line.includes("CREDENTIALS_ENCRYPTION_KEY")));
});
