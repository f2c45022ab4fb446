import { assertEquals } from "../support/assert.ts";
import { runtimeFromEnv } from "../../supabase/functions/_shared/core/runtime.ts";

Deno.test({
  name:
    "runtimeFromEnv does raise its stop signal, which ends open streams, on Supabase's beforeunload",
  // The deployed runtime's pool is opened (lazily, never used here) and stays for the process.
  sanitizeResources: false,
  sanitizeOps: false,
  fn() {
    const global = globalThis as { EdgeRuntime?: unknown };
    global.EdgeRuntime = { waitUntil: () => {} };
    const env = {
      CREDENTIALS_ENCRYPTION_KEY: `test-passphrase-${crypto.randomUUID()}`,
      JWT_SECRET: `test-secret-${crypto.randomUUID()}`,
      SUPABASE_DB_URL: "postgres://postgres@127.0.0.1:1/none",
    };
    for (const [name, value] of Object.entries(env)) Deno.env.set(name, value);
    try {
      const runtime = runtimeFromEnv();
      assertEquals(runtime.stopping.aborted, false);
      globalThis.dispatchEvent(new Event("beforeunload"));
      assertEquals(runtime.stopping.aborted, true);
    } finally {
      delete global.EdgeRuntime;
      for (const name of Object.keys(env)) Deno.env.delete(name);
    }
  },
});
