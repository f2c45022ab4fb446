/**
 * The peer: the Portkey gateway, installed once with npm outside the repo (PORTKEY_GATEWAY_DIR,
 * else $TMPDIR/byok-bench-portkey) and pointed at the fake upstream with x-portkey-custom-host.
 */
import { freePort, startServer, type Target } from "./measure.ts";

const PORTKEY_VERSION = "1.15.2";

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** The running gateway, or why it could not run. */
export async function startPortkey(
  upstream: Target,
): Promise<(Target & { process: Deno.ChildProcess }) | string> {
  const dir = Deno.env.get("PORTKEY_GATEWAY_DIR") ??
    `${Deno.env.get("TMPDIR") ?? "/tmp"}/byok-bench-portkey`;
  const entry = `${dir}/node_modules/@portkey-ai/gateway/build/start-server.js`;
  if (!(await exists(entry))) {
    const install = await new Deno.Command("npm", {
      args: [
        "install",
        "--prefix",
        dir,
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        `@portkey-ai/gateway@${PORTKEY_VERSION}`,
      ],
      stdout: "null",
      stderr: "null",
      signal: AbortSignal.timeout(180_000),
    }).output().catch(() => ({ success: false }));
    if (!install.success || !(await exists(entry))) {
      return `npm install @portkey-ai/gateway@${PORTKEY_VERSION} failed`;
    }
  }
  const port = freePort();
  return await startServer(
    {
      name: "portkey",
      url: `http://127.0.0.1:${port}/v1`,
      headers: {
        ...upstream.headers,
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": upstream.url,
      },
    },
    "node",
    [entry, `--port=${port}`, "--headless"],
    { NODE_ENV: "production" },
  ).catch((error) => `it did not answer (${(error as Error).message})`);
}
