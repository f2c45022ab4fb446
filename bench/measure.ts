/**
 * What the bench measures with: server processes on ports it picks, sequential latency, wrk
 * rounds with the server's CPU time per request, and RSS.
 */

/** One way to reach the upstream: a URL ending where `/chat/completions` follows. */
export interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  /** The server process whose CPU time counts; null for the upstream reached directly. */
  pid: number | null;
}

export const CONCURRENCY = 10;

export function median(samples: number[]): number {
  return percentile(samples, 50);
}

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/** A port free at the time of asking, for a child to listen on. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

export function spawn(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Deno.ChildProcess {
  return new Deno.Command(command, { args, env, stdin: "null", stdout: "null", stderr: "null" })
    .spawn();
}

export async function stop(process: Deno.ChildProcess): Promise<void> {
  try {
    process.kill("SIGTERM");
  } catch { /* already gone */ }
  await process.status;
}

export function chatBody(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: "bench", messages: [{ role: "user", content: "hi" }], ...extra });
}

export function post(target: Target, body = chatBody()): Promise<Response> {
  return fetch(`${target.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...target.headers },
    body,
  });
}

/**
 * Milliseconds from `startedAt` until `ask` first gets a 200: a child's process start to first
 * answer when `startedAt` is its spawn. Asks again every 2 ms until then.
 */
export async function untilOk(
  ask: () => Promise<Response>,
  startedAt: number,
  process: Deno.ChildProcess,
  timeoutMs = 30_000,
): Promise<number> {
  let exited = false;
  process.status.then(() => exited = true);
  while (!exited && performance.now() - startedAt < timeoutMs) {
    try {
      const response = await ask();
      await response.arrayBuffer();
      if (response.ok) return performance.now() - startedAt;
    } catch { /* not listening yet */ }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`no answer (${exited ? "the process exited" : "timed out"})`);
}

/** Starts a server process and waits until it answers a completion. */
export async function startServer(
  target: Omit<Target, "pid">,
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Target & { process: Deno.ChildProcess }> {
  const process = spawn(command, args, env);
  const withPid = { ...target, pid: process.pid };
  try {
    await untilOk(() => post(withPid), performance.now(), process);
  } catch (error) {
    await stop(process);
    throw new Error(`${target.name}: ${(error as Error).message}`);
  }
  return { ...withPid, process };
}

/**
 * Sequential latency of every target, interleaved (one request to each per round, in a rotating
 * order) so that drift in the machine's load falls on all targets alike.
 */
export async function sequential(
  targets: Target[],
  rounds: number,
  warmup: number,
): Promise<Map<string, number[]>> {
  const once = async (target: Target) => {
    const response = await post(target);
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`${target.name} answered ${response.status}`);
  };
  for (const target of targets) for (let i = 0; i < warmup; i++) await once(target);
  const samples = new Map(targets.map((t) => [t.name, [] as number[]]));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < targets.length; k++) {
      const target = targets[(round + k) % targets.length];
      const start = performance.now();
      await once(target);
      samples.get(target.name)!.push(performance.now() - start);
    }
  }
  return samples;
}

/** One wrk round's figures for one target. */
export interface Round {
  rps: number;
  /** Server CPU time (user + system) per request in µs; NaN without a server process. */
  cpuMicros: number;
}

const CLOCK_TICKS = Number(
  new TextDecoder().decode(
    (await new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).output()).stdout,
  ),
) || 100;

/** utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** wrk's Lua script for the completion POST, written once per run. */
export async function wrkScript(): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "byok-bench-", suffix: ".lua" });
  await Deno.writeTextFile(
    path,
    `wrk.method = "POST"\nwrk.body = '${chatBody()}'\n` +
      `wrk.headers["content-type"] = "application/json"\n`,
  );
  return path;
}

/** req/s from wrk (one thread, CONCURRENCY connections), and the server's CPU per request. */
export async function wrkRound(target: Target, script: string, seconds: number): Promise<Round> {
  const headers = Object.entries(target.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  const cpuBefore = target.pid ? await cpuSeconds(target.pid) : NaN;
  const output = await new Deno.Command("wrk", {
    args: [
      "-t1",
      `-c${CONCURRENCY}`,
      `-d${seconds}s`,
      "-s",
      script,
      ...headers,
      target.url + "/chat/completions",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const cpu = target.pid ? await cpuSeconds(target.pid) - cpuBefore : NaN;
  const text = new TextDecoder().decode(output.stdout);
  const requests = Number(text.match(/(\d+) requests in/)?.[1]);
  const rps = Number(text.match(/Requests\/sec:\s+([\d.]+)/)?.[1]);
  if (!output.success || /Non-2xx|Socket errors/.test(text) || !(requests > 0)) {
    throw new Error(`wrk against ${target.name} failed:\n${text}`);
  }
  return { rps, cpuMicros: (cpu / requests) * 1e6 };
}

export async function rssBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+)\s+kB/)![1]) * 1024;
}

/** Streams `bytes` through `target` and returns how far its server's RSS rose at the peak. */
export async function rssRise(target: Target, bytes: number): Promise<number> {
  const pid = target.pid!;
  const before = await rssBytes(pid);
  let peak = before;
  let streaming = true;
  const sampler = (async () => {
    while (streaming) {
      peak = Math.max(peak, await rssBytes(pid));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const response = await post(target, chatBody({ stream: true, bench_bytes: bytes }));
  let received = 0;
  for await (const chunk of response.body!) received += chunk.byteLength;
  streaming = false;
  await sampler;
  peak = Math.max(peak, await rssBytes(pid));
  if (!response.ok || received < bytes) {
    throw new Error(`${target.name} streamed only ${received} of ${bytes} bytes`);
  }
  return peak - before;
}
