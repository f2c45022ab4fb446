/**
 * Proxy benchmark: the same fast fake upstream reached four ways in one run.
 *   direct   client -> fake
 *   bare     client -> bare Deno fetch pass-through -> fake (the floor for this runtime)
 *   ours     client -> local stack -> openai-proxy (JWT verification, key lookup, PGlite) -> fake
 *   portkey  client -> @portkey-ai/gateway (x-portkey-custom-host) -> fake, when it can be installed
 * Prints added p50/p99 latency over direct for sequential requests, req/s at 10 concurrent
 * connections, stream time to first byte, and the RSS growth of streaming 100 MB through bare
 * and ours. `npx deno run -A bench/proxy.ts` runs it alone.
 */
import { connectPostgres } from "../supabase/functions/_shared/db.ts";
import { ms, percentile } from "./stats.ts";

const SEQUENTIAL = 1_000;
const CONCURRENCY = 10;
const THROUGHPUT_MS = 3_000;
const TTFB_SAMPLES = 60;
const BULK_BYTES = 100 * 1024 * 1024;
const PORTKEY_VERSION = "1.15.2";
const SERVERS = new URL("./proxyServers.ts", import.meta.url).pathname;

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  pid: number | null;
}

interface Child {
  process: Deno.ChildProcess;
  ready: Record<string, string>;
}

/** Starts a child and waits for its first stdout line (the JSON it prints when listening). */
async function spawnServer(args: string[]): Promise<Child> {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", SERVERS, ...args],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`${args[0]} exited before it was ready`);
    text += value;
  }
  // Keep draining so the child never blocks on a full pipe.
  (async () => {
    while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drain */ }
  })();
  return { process, ready: JSON.parse(text.split("\n")[0]) };
}

function stop(
  child: { kill(signal?: Deno.Signal): void; status: Promise<unknown> },
): Promise<unknown> {
  try {
    child.kill("SIGTERM");
  } catch { /* already gone */ }
  return child.status;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Installs (once, outside the repo) and starts the Portkey gateway; a reason string when it cannot. */
async function startPortkey(): Promise<{ process: Deno.ChildProcess; url: string } | string> {
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
    }).output().catch((error) => ({ success: false, error }));
    if (!install.success || !(await exists(entry))) return "npm install @portkey-ai/gateway failed";
  }
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  let process: Deno.ChildProcess;
  try {
    process = new Deno.Command("node", {
      args: [entry, `--port=${port}`, "--headless"],
      env: { NODE_ENV: "production" },
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (error) {
    return `node could not start it (${(error as Error).name})`;
  }
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const response = await fetch(url);
      await response.body?.cancel();
      return { process, url: `${url}/v1` };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await stop(process);
  return "it did not start listening within 10 s";
}

function chatBody(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: "bench", messages: [{ role: "user", content: "hi" }], ...extra });
}

async function post(target: Target, body: string): Promise<Response> {
  return await fetch(`${target.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...target.headers },
    body,
  });
}

async function oneRequest(target: Target): Promise<void> {
  const response = await post(target, chatBody());
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`${target.name} answered ${response.status}`);
}

/**
 * Sequential latency of every target, interleaved (one request to each per round, in a rotating
 * order) so that drift in the machine's load falls on all targets alike.
 */
async function sequential(targets: Target[]): Promise<Map<string, number[]>> {
  const samples = new Map(targets.map((t) => [t.name, [] as number[]]));
  for (const target of targets) for (let i = 0; i < 50; i++) await oneRequest(target);
  for (let round = 0; round < SEQUENTIAL; round++) {
    for (let k = 0; k < targets.length; k++) {
      const target = targets[(round + k) % targets.length];
      const start = performance.now();
      await oneRequest(target);
      samples.get(target.name)!.push(performance.now() - start);
    }
  }
  return samples;
}

async function throughput(target: Target): Promise<number> {
  const end = performance.now() + THROUGHPUT_MS;
  let done = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) {
      await oneRequest(target);
      done++;
    }
  }));
  return done / (THROUGHPUT_MS / 1000);
}

async function timeToFirstByte(target: Target): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < TTFB_SAMPLES; i++) {
    const start = performance.now();
    const response = await post(target, chatBody({ stream: true }));
    const reader = response.body!.getReader();
    await reader.read();
    samples.push(performance.now() - start);
    while (!(await reader.read()).done) { /* drain */ }
  }
  return percentile(samples, 50);
}

async function rssBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+)\s+kB/)![1]) * 1024;
}

/** Streams 100 MB through `target` and returns how far its server's RSS rose above the start. */
async function rssGrowth(target: Target): Promise<{ growth: number; seconds: number }> {
  const pid = target.pid!;
  const before = await rssBytes(pid);
  let peak = before;
  let streaming = true;
  const sampler = (async () => {
    while (streaming) {
      peak = Math.max(peak, await rssBytes(pid));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const start = performance.now();
  const response = await post(target, chatBody({ stream: true, bench_bytes: BULK_BYTES }));
  let received = 0;
  for await (const chunk of response.body!) received += chunk.byteLength;
  streaming = false;
  await sampler;
  peak = Math.max(peak, await rssBytes(pid));
  if (received < BULK_BYTES) throw new Error(`${target.name} streamed only ${received} bytes`);
  return { growth: peak - before, seconds: (performance.now() - start) / 1000 };
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/** Runs the proxy section and prints its table. */
/**
 * A throwaway database on the machine's PostgreSQL for "ours", as deployed functions reach
 * Postgres over the network; null (embedded PGlite) when there is no server to reach.
 */
async function benchDatabase(): Promise<{ url: string; drop(): Promise<void> } | null> {
  const adminUrl = Deno.env.get("BENCH_POSTGRES_URL") ??
    "postgres://postgres@127.0.0.1:5432/postgres";
  const admin = connectPostgres(adminUrl, { max: 1, connectTimeoutSeconds: 2 });
  const name = `byok_proxy_bench_${Date.now()}`;
  try {
    await admin.query(`create database ${name}`);
  } catch {
    await admin.close().catch(() => {});
    return null;
  }
  return {
    url: adminUrl.replace(/\/[^/]*$/, `/${name}`),
    async drop() {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.close();
    },
  };
}

export async function runProxyBench(): Promise<void> {
  console.log("\n## proxy (chat/completions against one fast fake upstream)");
  const children: Deno.ChildProcess[] = [];
  const database = await benchDatabase();
  try {
    const upstream = await spawnServer(["upstream"]);
    children.push(upstream.process);
    const bare = await spawnServer(["bare", upstream.ready.url]);
    children.push(bare.process);
    const ours = await spawnServer(["ours", upstream.ready.url, database?.url ?? ""]);
    children.push(ours.process);
    const key = { authorization: "Bearer sk-bench-user-key-0000" };
    const targets: Target[] = [
      { name: "direct", url: upstream.ready.url, headers: key, pid: null },
      { name: "bare", url: bare.ready.url, headers: key, pid: bare.process.pid },
      {
        name: "ours",
        url: ours.ready.url,
        headers: { authorization: `Bearer ${ours.ready.token}` },
        pid: ours.process.pid,
      },
    ];
    const portkey = await startPortkey();
    if (typeof portkey === "string") {
      console.log(`portkey: skipped (${portkey})`);
    } else {
      children.push(portkey.process);
      targets.push({
        name: "portkey",
        url: portkey.url,
        headers: {
          ...key,
          "x-portkey-provider": "openai",
          "x-portkey-custom-host": upstream.ready.url,
        },
        pid: portkey.process.pid,
      });
    }

    const rows: Record<string, { p50: number; p99: number; rps: number; ttfb: number }> = {};
    const latencies = await sequential(targets);
    // Throughput in two passes, the second in reverse order; each target keeps its better pass.
    const rps = new Map<string, number>();
    for (const pass of [targets, [...targets].reverse()]) {
      for (const target of pass) {
        rps.set(target.name, Math.max(rps.get(target.name) ?? 0, await throughput(target)));
      }
    }
    for (const target of targets) {
      const samples = latencies.get(target.name)!;
      rows[target.name] = {
        p50: percentile(samples, 50),
        p99: percentile(samples, 99),
        rps: rps.get(target.name)!,
        ttfb: await timeToFirstByte(target),
      };
    }
    const direct = rows.direct;
    console.log(
      "| path    | p50      | p99      | added p50 | added p99 | req/s @10 | stream TTFB p50 |\n" +
        "| ------- | -------- | -------- | --------- | --------- | --------- | --------------- |",
    );
    for (const [name, row] of Object.entries(rows)) {
      const added = (value: number, base: number) =>
        name === "direct" ? "-" : ms(Math.max(0, value - base));
      console.log(
        `| ${name.padEnd(7)} | ${ms(row.p50)} | ${ms(row.p99)} | ${added(row.p50, direct.p50)} | ` +
          `${added(row.p99, direct.p99)} | ${row.rps.toFixed(0)} | ${ms(row.ttfb)} |`,
      );
    }

    const bulk: Record<string, { growth: number; seconds: number }> = {};
    for (const target of targets.filter((t) => t.name === "bare" || t.name === "ours")) {
      bulk[target.name] = await rssGrowth(target);
    }
    for (const [name, result] of Object.entries(bulk)) {
      console.log(
        `${name}: streaming 100 MB raised the server's RSS by ${mb(result.growth)} (${
          result.seconds.toFixed(1)
        } s)`,
      );
    }

    const addedP50 = (name: string) => rows[name].p50 - direct.p50;
    console.log("\nTargets (ratios from this run):");
    console.log(
      `- ours req/s / bare req/s = ${(rows.ours.rps / rows.bare.rps).toFixed(2)} (target >= 0.7)`,
    );
    if (rows.portkey) {
      console.log(
        `- ours req/s / portkey req/s = ${
          (rows.ours.rps / rows.portkey.rps).toFixed(2)
        } (target >= 10)`,
      );
    }
    console.log(
      `- ours added p50 / bare added p50 = ${
        (addedP50("ours") / Math.max(addedP50("bare"), 1e-6)).toFixed(2)
      } (target <= 1.3)`,
    );
    console.log(`- ours RSS growth for 100 MB = ${mb(bulk.ours.growth)} (target < 20 MB)`);
  } finally {
    await Promise.all(children.map(stop));
    await database?.drop();
  }
}

if (import.meta.main) await runProxyBench();
