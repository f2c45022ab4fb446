/**
 * `npm start` as a newcomer runs it: a child process on a fresh DATA_DIR, reached only over HTTP
 * with the real supabase-js client.
 */
import { createClient } from "@supabase/supabase-js";
import { assert, assertEquals, assertMatch } from "../support/assert.ts";

const ROOT = new URL("../../", import.meta.url);

interface RunningStack {
  url: string;
  anonKey: string;
  output: () => string;
  stop(): Promise<void>;
}

async function startServer(dataDir: string): Promise<RunningStack> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "local/server.ts"],
    cwd: ROOT,
    env: { PORT: "0", DATA_DIR: dataDir, SUPABASE_DB_URL: "" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) output += decoder.decode(chunk);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const deadline = Date.now() + 60_000;
  while (!/ready at (http:\S+)/.test(output) || !/anon key:\s+(\S+)/.test(output)) {
    if (Date.now() > deadline) throw new Error(`stack did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: output.match(/ready at (http:\S+)/)![1],
    anonKey: output.match(/anon key:\s+(\S+)/)![1],
    output: () => output,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await pumps;
    },
  };
}

async function devToken(url: string, email: string) {
  const response = await fetch(`${url}/auth/v1/dev/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email }),
  });
  assertEquals(response.status, 200);
  return await response.json() as { access_token: string; user: { id: string; email: string } };
}

/** One-shot clients: no stored session and no token refresh interval outliving the test. */
const NO_SESSION = { persistSession: false, autoRefreshToken: false };

Deno.test({
  name: "npm start serves a healthy stack where supabase-js stores, checks and deletes a key",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "byok-stack-" });
    const key = `sk-e2e-${crypto.randomUUID()}`;
    let stack = await startServer(dataDir);
    try {
      const health = await fetch(`${stack.url}/health`);
      assertEquals(health.status, 200);
      await health.body?.cancel();
      const secretsFile = await Deno.stat(`${dataDir}/secrets.json`);
      assertEquals(secretsFile.mode! & 0o077, 0, "dev secrets must not be world-readable");

      const alice = await devToken(stack.url, "alice@example.com");
      assertEquals(alice.user.email, "alice@example.com");
      const supabase = createClient(stack.url, stack.anonKey, { auth: NO_SESSION });
      supabase.functions.setAuth(alice.access_token);

      const set = await supabase.functions.invoke("credentials-manager", {
        body: { action: "set", service: "openai", key: "api_key", value: key },
      });
      assertEquals(set.error, null);
      assertEquals(set.data.status, { api_key: true });
      assertEquals(set.data.last_four, key.slice(-4));

      // Private base URLs: `npm start` allows a model server on this machine, and nothing else.
      for (
        const [baseUrl, expected] of [
          ["http://127.0.0.1:11434/v1", 200],
          ["http://localhost:1234/v1", 200],
          ["http://10.1.2.3/v1", 400],
          ["http://192.168.1.1:11434/v1", 400],
          ["http://169.254.169.254/v1", 400],
        ] as const
      ) {
        const saved = await supabase.functions.invoke("credentials-manager", {
          body: { action: "set", service: "custom", key: "base_url", value: baseUrl },
        });
        const status = saved.error ? (saved.error as { context: Response }).context.status : 200;
        if (saved.error) await (saved.error as { context: Response }).context.body?.cancel();
        assertEquals(status, expected, baseUrl);
      }

      const anonymous = createClient(stack.url, stack.anonKey, { auth: NO_SESSION });
      const refused = await anonymous.functions.invoke("credentials-manager", {
        body: { action: "list" },
      });
      assertEquals((refused.error as { context: Response }).context.status, 401);
      assertEquals(
        (await (refused.error as { context: Response }).context.json()).error.code,
        "UNAUTHORIZED",
      );

      const noToken = await fetch(`${stack.url}/functions/v1/credentials-manager`, {
        method: "POST",
        body: "{}",
      });
      assertEquals(noToken.status, 401);
      await noToken.body?.cancel();

      // Restart on the same DATA_DIR: the key and the generated passphrase survive.
      await stack.stop();
      stack = await startServer(dataDir);
      const again = await devToken(stack.url, "alice@example.com");
      assertEquals(again.user.id, alice.user.id);
      const client = createClient(stack.url, stack.anonKey, { auth: NO_SESSION });
      client.functions.setAuth(again.access_token);
      const status = await client.functions.invoke("credentials-manager", {
        body: { action: "get_status", service: "openai" },
      });
      assertEquals(status.data.status, { api_key: true });

      const removed = await client.functions.invoke("credentials-manager", {
        body: { action: "delete", service: "openai", key: "api_key" },
      });
      assertEquals(removed.data.status, { api_key: false });
      assert(!stack.output().includes(key), "the key reached the server's output");
      assertMatch(stack.output(), /auth\/v1\/dev\/token/);
    } finally {
      await stack.stop();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
