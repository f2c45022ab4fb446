/**
 * The local stack's life as `npm start` lives it, each case a real `deno run local/server.ts`
 * child process: stopping with a stream open, a second signal, two stacks on one DATA_DIR, and a
 * port already taken.
 */
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { sseChat, startFakeUpstream, type StreamRecord } from "../support/fakeUpstream.ts";
import { signInDevUser } from "../support/devAuth.ts";

const ROOT = new URL("../../", import.meta.url);
/** A stack trace line, or an uncaught error: never in what a refused start prints. */
const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$|Uncaught|AddrInUse/m;

interface Child {
  url: string;
  process: Deno.ChildProcess;
  output: () => string;
  /** Resolves with the exit code and how long after `since` it came. */
  exited(since: number): Promise<{ code: number; ms: number }>;
}

function spawnServer(env: Record<string, string>): {
  process: Deno.ChildProcess;
  output: () => string;
  done: Promise<void>;
} {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "local/server.ts"],
    cwd: ROOT,
    env: { PORT: "0", SUPABASE_DB_URL: "", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) output += decoder.decode(chunk);
  };
  const done = Promise.all([pump(process.stdout), pump(process.stderr)]).then(() => {});
  return { process, output: () => output, done };
}

async function startServer(env: Record<string, string>): Promise<Child> {
  const { process, output, done } = spawnServer(env);
  const deadline = Date.now() + 60_000;
  while (!/ready at (http:\S+)/.test(output())) {
    if (Date.now() > deadline) throw new Error(`stack did not start:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: output().match(/ready at (http:\S+)/)![1],
    process,
    output,
    async exited(since) {
      const { code } = await process.status;
      await done;
      return { code, ms: performance.now() - since };
    },
  };
}

/** Runs a server that is expected not to start; returns its exit code and output. */
async function refusedServer(env: Record<string, string>) {
  const { process, output, done } = spawnServer(env);
  const killer = setTimeout(() => process.kill("SIGKILL"), 60_000);
  const { code } = await process.status;
  clearTimeout(killer);
  await done;
  return { code, output: output() };
}

/** Sends `signal` unless the process is gone already. */
function signal(child: Child, name: Deno.Signal): void {
  try {
    child.process.kill(name);
  } catch {
    // It exited.
  }
}

async function storeKey(url: string, token: string, value: string): Promise<void> {
  const response = await fetch(`${url}/functions/v1/credentials-manager`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ action: "set", service: "openai", value }),
  });
  assertEquals(response.status, 200, await response.text());
}

async function hasKey(url: string, token: string): Promise<boolean> {
  const response = await fetch(`${url}/functions/v1/credentials-manager`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ action: "get_status", service: "openai" }),
  });
  const body = await response.json();
  return body.status?.api_key === true;
}

const lifecycleTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, sanitizeOps: true, sanitizeResources: true, fn });

lifecycleTest(
  "npm start stops within a few seconds on SIGTERM, ending an open stream with SERVER_SHUTTING_DOWN",
  async () => {
    const fake = startFakeUpstream();
    const streams: StreamRecord[] = [];
    fake.route(
      "POST /v1/chat/completions",
      sseChat({ chunks: ["a", "b"], stallAfter: 1, streams }),
    );
    const dataDir = await Deno.makeTempDir({ prefix: "byok-lifecycle-" });
    const stack = await startServer({ DATA_DIR: dataDir, OPENAI_BASE_URL: fake.baseUrl });
    try {
      const user = await signInDevUser(stack.url);
      const key = `sk-life-${crypto.randomUUID()}`;
      fake.validKeys.add(key);
      await storeKey(stack.url, user.token, key);
      const response = await fetch(`${stack.url}/functions/v1/openai-proxy/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${user.token}` },
        body: JSON.stringify({ model: "m", stream: true, messages: [] }),
        signal: AbortSignal.timeout(30_000),
      });
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = (await reader.read()).value ?? "";
      assertMatch(text, /"content":"a"/);

      // The upstream stalls (UPSTREAM_TIMEOUT_MS is 120 s): only the stop can end this stream.
      const signalled = performance.now();
      stack.process.kill("SIGTERM");
      for (let part = await reader.read(); !part.done; part = await reader.read()) {
        text += part.value;
      }
      const last = JSON.parse(text.trim().split("\n\n").at(-1)!.slice("data: ".length));
      assertEquals(last.error.code, "SERVER_SHUTTING_DOWN");
      assertEquals(last.error.recoverable, true);
      const { code, ms } = await stack.exited(signalled);
      assertEquals(code, 0, stack.output());
      assert(ms < 5_000, `exited ${Math.round(ms)} ms after SIGTERM`);
      console.log(`  stream ended and the stack exited ${Math.round(ms)} ms after SIGTERM`);
      for (
        const step of [
          "SIGTERM: stopping",
          "ending open streams",
          "flushing usage",
          "closing the database",
          "stopped",
        ]
      ) {
        assert(
          stack.output().includes(step),
          `the stack did not say "${step}":\n${stack.output()}`,
        );
      }
      assert(streams[0].closedAt !== null, "the upstream stream was not closed");
      assert(!stack.output().includes(key), "the key reached the server's output");
    } finally {
      signal(stack, "SIGKILL");
      await stack.exited(0);
      await fake.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
);

lifecycleTest("npm start exits at once on a second signal", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "byok-lifecycle-" });
  const stack = await startServer({ DATA_DIR: dataDir });
  // A client that never finishes sending its body holds the first stop in its drain wait.
  const slow = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(stack.url).port) });
  try {
    await slow.write(
      new TextEncoder().encode(
        "POST /auth/v1/dev/token HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
      ),
    );
    await new Promise((r) => setTimeout(r, 300));
    stack.process.kill("SIGINT");
    while (!stack.output().includes("ending open streams")) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const signalled = performance.now();
    stack.process.kill("SIGINT");
    const { code, ms } = await stack.exited(signalled);
    assertEquals(code, 130, stack.output());
    assertMatch(stack.output(), /SIGINT again: exiting now/);
    assert(ms < 1_000, `exited ${Math.round(ms)} ms after the second signal`);
  } finally {
    slow.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

lifecycleTest(
  "a second npm start on the same DATA_DIR is refused, naming the directory and the running port, and no data is lost",
  async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "byok-lifecycle-" });
    let first = await startServer({ DATA_DIR: dataDir });
    try {
      const user = await signInDevUser(first.url, "owner@example.com");
      await storeKey(first.url, user.token, `sk-kept-${crypto.randomUUID()}`);

      const second = await refusedServer({ DATA_DIR: dataDir });
      const port = new URL(first.url).port;
      assertEquals(second.code, 1, second.output);
      assert(second.output.includes(`DATA_DIR ${dataDir} is in use`), second.output);
      assert(second.output.includes(`PORT=${port}`), second.output);
      assert(!STACK_FRAME.test(second.output), second.output);

      // The first is untouched, and after a restart the key it stored is still there.
      assert(await hasKey(first.url, user.token));
      first.process.kill("SIGTERM");
      assertEquals((await first.exited(0)).code, 0, first.output());
      first = await startServer({ DATA_DIR: dataDir });
      const again = await signInDevUser(first.url, "owner@example.com");
      assert(await hasKey(first.url, again.token), "the key was lost");
    } finally {
      signal(first, "SIGTERM");
      await first.exited(0);
      await Deno.remove(dataDir, { recursive: true });
    }
  },
);

lifecycleTest("npm start on a port in use says PORT= and opens no database", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dataDir = await Deno.makeTempDir({ prefix: "byok-lifecycle-" });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    const refused = await refusedServer({ DATA_DIR: dataDir, PORT: String(port) });
    assertEquals(refused.code, 1, refused.output);
    assert(refused.output.includes(`PORT=${port} is already in use`), refused.output);
    assert(!STACK_FRAME.test(refused.output), refused.output);
    const entries = [...Deno.readDirSync(dataDir)].map((e) => e.name);
    assertEquals(entries, [], "the data directory was touched before the port was checked");
  } finally {
    taken.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
