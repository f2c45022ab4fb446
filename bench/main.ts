/**
 * `npm run bench`: a regression guard. The same fast fake upstream (answers shaped like OpenAI's)
 * reached five ways, each server in its own process:
 *   direct              client -> fake
 *   bare                client -> a bare Deno fetch pass-through -> fake (this runtime's floor)
 *   ours, deployed      client -> supabase/functions/openai-proxy/index.ts as deployed (JWT
 *                       verification, key lookup on PostgreSQL) -> fake
 *   ours, local stack   client -> `npm start`'s server (local/server.ts, its gateway) -> fake
 *   portkey             client -> @portkey-ai/gateway (installed outside the repo) -> fake
 * plus process start to first answer (deployed and bare) and the RSS rise of 100 MB streamed
 * through a fresh deployed process. Prints the rows, then each target as PASS or MISS; exits 1
 * when any target is missed. Targets are ratios within this run, so a loaded machine moves both
 * sides. Needs PostgreSQL (BENCH_POSTGRES_URL, else postgres://postgres@127.0.0.1:5432/postgres)
 * and wrk.
 */
import { connectPostgres } from "../supabase/functions/_shared/core/db.ts";
import {
  freePort,
  median,
  percentile,
  post,
  type Round,
  rssRise,
  sequential,
  spawn,
  startServer,
  stop,
  type Target,
  untilOk,
  wrkRound,
  wrkScript,
} from "./measure.ts";
import { startPortkey } from "./portkey.ts";

const LATENCY_ROUNDS = 400;
const LATENCY_WARMUP = 300;
const WRK_ROUNDS = 5;
const WRK_SECONDS = 2;
const COLD_ROUNDS = 5;
const BULK_BYTES = 100 * 1024 * 1024;
/** The key the bare targets pass on, and the one ours stores for its bench user. */
const BENCH_KEY = "sk-bench-user-key-0000";
const DENO = Deno.execPath();
const path = (relative: string) => new URL(relative, import.meta.url).pathname;
const SERVERS = path("./servers.ts");
const DEPLOYED_FUNCTION = path("../supabase/functions/openai-proxy/index.ts");
const LOCAL_SERVER = path("../local/server.ts");
/**
 * The deployed function's own deno.json, which bare runs under too: the repo's deno.json opts into
 * Deno.serve's no-legacy-abort (quiet tests), which a deployed function does not have, and that
 * alone moved bare's CPU per request from about 160 to 100 µs here.
 */
const FUNCTION_CONFIG = path("../supabase/functions/openai-proxy/deno.json");

type Running = Target & { process: Deno.ChildProcess };

/** A throwaway database on the machine's PostgreSQL, as deployed functions reach Postgres. */
async function benchDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = Deno.env.get("BENCH_POSTGRES_URL") ??
    "postgres://postgres@127.0.0.1:5432/postgres";
  const admin = connectPostgres(adminUrl, { max: 1, connectTimeoutSeconds: 2 });
  const name = `byok_bench_${Date.now()}`;
  try {
    await admin.query(`create database ${name}`);
  } catch (error) {
    await admin.close().catch(() => {});
    throw new Error(`the bench needs PostgreSQL at ${adminUrl}: ${(error as Error).message}`);
  }
  return {
    url: adminUrl.replace(/\/[^/]*$/, `/${name}`),
    async drop() {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.close();
    },
  };
}

function freePortUrl(): { port: number; url: string } {
  const port = freePort();
  return { port, url: `http://127.0.0.1:${port}` };
}

function startUpstream(): Promise<Running> {
  const { port, url } = freePortUrl();
  const target = {
    name: "direct",
    url: `${url}/v1`,
    headers: { authorization: `Bearer ${BENCH_KEY}` },
  };
  return startServer(target, DENO, ["run", "--allow-all", SERVERS, "upstream", String(port)]);
}

function bareCommand(upstream: Target): { target: Omit<Target, "pid">; args: string[] } {
  const { port, url } = freePortUrl();
  return {
    target: { name: "bare", url: `${url}/v1`, headers: upstream.headers },
    args: [
      "run",
      "--allow-all",
      `--config=${FUNCTION_CONFIG}`,
      "--no-lock",
      SERVERS,
      "bare",
      String(port),
      upstream.url,
    ],
  };
}

interface Deployment {
  env: Record<string, string>;
  token: string;
}

/** openai-proxy's index.ts, configured from the environment as on the platform. */
function deployedCommand(
  deployment: Deployment,
): { target: Omit<Target, "pid">; args: string[]; env: Record<string, string> } {
  const { port, url } = freePortUrl();
  return {
    target: {
      name: "ours, deployed",
      url: `${url}/openai-proxy/v1`,
      headers: { authorization: `Bearer ${deployment.token}` },
    },
    args: ["run", "--allow-all", `--config=${FUNCTION_CONFIG}`, "--no-lock", DEPLOYED_FUNCTION],
    env: { ...deployment.env, DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}` },
  };
}

/**
 * `npm start`'s server on the bench database; its dev token endpoint signs the bench user in and
 * credentials-manager stores the user's key. Its secrets then configure the deployed function.
 */
async function startLocalStack(
  upstream: Target,
  dbUrl: string,
  dataDir: string,
): Promise<{ local: Running; deployment: Deployment }> {
  const { port, url } = freePortUrl();
  const env = { OPENAI_BASE_URL: upstream.url, ALLOW_PRIVATE_BASE_URLS: "loopback" };
  const process = spawn(DENO, ["run", "--allow-all", LOCAL_SERVER], {
    ...env,
    PORT: String(port),
    DATA_DIR: dataDir,
    SUPABASE_DB_URL: dbUrl,
  });
  try {
    await untilOk(() => fetch(`${url}/health`), performance.now(), process, 60_000);
    const signIn = await fetch(`${url}/auth/v1/dev/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "bench@proxy.local" }),
    });
    const token = (await signIn.json()).access_token as string;
    const stored = await fetch(`${url}/functions/v1/credentials-manager`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ action: "set", service: "openai", value: BENCH_KEY }),
    });
    if (!stored.ok) throw new Error(`storing the bench key failed: ${stored.status}`);
    const secrets = JSON.parse(await Deno.readTextFile(`${dataDir}/secrets.json`));
    return {
      local: {
        name: "ours, local stack",
        url: `${url}/functions/v1/openai-proxy/v1`,
        headers: { authorization: `Bearer ${token}` },
        pid: process.pid,
        process,
      },
      deployment: {
        token,
        env: {
          ...env,
          SUPABASE_DB_URL: dbUrl,
          JWT_SECRET: secrets.jwtSecret,
          CREDENTIALS_ENCRYPTION_KEY: secrets.encryptionKey,
        },
      },
    };
  } catch (error) {
    await stop(process);
    throw new Error(`local stack: ${(error as Error).message}`);
  }
}

/** WRK_ROUNDS rounds, each running every target once in a rotating order (after one warm-up). */
async function wrkRounds(targets: Target[]): Promise<Map<string, Round[]>> {
  const script = await wrkScript();
  try {
    for (const target of targets) await wrkRound(target, script, WRK_SECONDS);
    const rounds = new Map(targets.map((t) => [t.name, [] as Round[]]));
    for (let round = 0; round < WRK_ROUNDS; round++) {
      for (let k = 0; k < targets.length; k++) {
        const target = targets[(round + k) % targets.length];
        rounds.get(target.name)!.push(await wrkRound(target, script, WRK_SECONDS));
      }
    }
    return rounds;
  } finally {
    await Deno.remove(script);
  }
}

/**
 * A ratio of two targets: the median of each round's own ratio. Both figures of a round were
 * measured seconds apart, so a slow stretch of the machine moves both (seen here: one server's
 * CPU time per request went from 277 to 535 µs between rounds of one run); the ratio of two
 * separate medians would mix rounds of different speeds.
 */
function roundRatio(
  rounds: Map<string, Round[]>,
  of: string,
  to: string,
  figure: keyof Round,
): number {
  const [a, b] = [rounds.get(of)!, rounds.get(to)!];
  return median(a.map((round, i) => round[figure] / b[i][figure]));
}

/** Process start to first answer, bare and deployed spawned in turn; ms per round for each. */
async function coldStarts(upstream: Target, deployment: Deployment) {
  const times: Record<"bare" | "deployed", number[]> = { bare: [], deployed: [] };
  for (let round = 0; round < COLD_ROUNDS; round++) {
    const order = round % 2 ? ["deployed", "bare"] as const : ["bare", "deployed"] as const;
    for (const which of order) {
      const { target, args, env } = which === "bare"
        ? { ...bareCommand(upstream), env: {} }
        : deployedCommand(deployment);
      const startedAt = performance.now();
      const process = spawn(DENO, args, env);
      const withPid = { ...target, pid: process.pid };
      try {
        times[which].push(await untilOk(() => post(withPid), startedAt, process));
      } finally {
        await stop(process);
      }
    }
  }
  return times;
}

/**
 * RSS rise of a fresh deployed process (one small answer served first) streaming 100 MB, then
 * of the same process streaming 100 MB again.
 */
async function streamingMemory(deployment: Deployment): Promise<{ fresh: number; again: number }> {
  const { target, args, env } = deployedCommand(deployment);
  const server = await startServer(target, DENO, args, env);
  try {
    const fresh = await rssRise(server, BULK_BYTES);
    return { fresh, again: await rssRise(server, BULK_BYTES) };
  } finally {
    await stop(server.process);
  }
}

/** Plain-text columns, each padded to its widest cell. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd())
    .join("\n");
}

const fmtMs = (value: number) =>
  value < 1 ? `${(value * 1000).toFixed(0)} µs` : `${value.toFixed(2)} ms`;
const fmtMb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const loadAverage = async () =>
  (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");

interface Check {
  name: string;
  measured: string;
  target: string;
  pass: boolean;
}

async function run(): Promise<Check[]> {
  const running: Running[] = [];
  const database = await benchDatabase();
  const dataDir = await Deno.makeTempDir({ prefix: "byok-bench-" });
  try {
    console.log(`load average at start: ${await loadAverage()}`);
    const upstream = await startUpstream();
    running.push(upstream);
    const { local, deployment } = await startLocalStack(upstream, database.url, dataDir);
    running.push(local);
    const bare = bareCommand(upstream);
    running.push(await startServer(bare.target, DENO, bare.args));
    const deployed = deployedCommand(deployment);
    running.push(await startServer(deployed.target, DENO, deployed.args, deployed.env));
    const portkey = await startPortkey(upstream);
    if (typeof portkey !== "string") running.push(portkey);
    const [direct, , bareTarget, deployedTarget] = running;
    const targets = [
      direct,
      bareTarget,
      deployedTarget,
      local,
      ...(typeof portkey === "string" ? [] : [portkey]),
    ];

    // Portkey keeps its Node process busy after each answer; interleaved with the others, that
    // work lands on the request after it. So it has its own latency pass, with direct.
    const latency = await sequential(
      targets.filter((t) => t.name !== "portkey"),
      LATENCY_ROUNDS,
      LATENCY_WARMUP,
    );
    if (typeof portkey !== "string") {
      latency.set(
        "portkey",
        (await sequential([direct, portkey], LATENCY_ROUNDS, LATENCY_WARMUP)).get("portkey")!,
      );
    }
    const rounds = await wrkRounds(targets);
    for (const server of running.splice(1)) await stop(server.process);

    const cold = await coldStarts(upstream, deployment);
    const memory = await streamingMemory(deployment);

    console.log(
      `\nrequests: POST chat/completions; latency: sequential, ${LATENCY_ROUNDS} interleaved rounds\n` +
        `req/s: wrk -t1 -c10; CPU/req: the server process's utime + stime per request\n` +
        `(both medians of ${WRK_ROUNDS} interleaved ${WRK_SECONDS} s rounds)\n`,
    );
    console.log(table([
      ["row", "p50", "p99", "req/s", "CPU/req"],
      ...targets.map((t) => {
        const samples = latency.get(t.name)!;
        const r = rounds.get(t.name)!;
        const cpu = median(r.map((x) => x.cpuMicros));
        return [
          t.name,
          fmtMs(percentile(samples, 50)),
          fmtMs(percentile(samples, 99)),
          median(r.map((x) => x.rps)).toFixed(0),
          Number.isNaN(cpu) ? "-" : `${cpu.toFixed(0)} µs`,
        ];
      }),
      ...(typeof portkey === "string" ? [["portkey", `not measured: ${portkey}`, "", "", ""]] : []),
    ]));
    console.log(
      `\ncold start: process start to first answer, median of ${COLD_ROUNDS}, spawned in turn\n`,
    );
    console.log(table([
      ["row", "figure"],
      ["cold start, bare", `${median(cold.bare).toFixed(0)} ms`],
      ["cold start, ours deployed", `${median(cold.deployed).toFixed(0)} ms`],
      [
        "100 MB streamed through ours deployed",
        `RSS +${fmtMb(memory.fresh)} (fresh process, after one small answer)`,
      ],
      ["the same, a second time", `RSS +${fmtMb(memory.again)}`],
    ]));
    console.log(`\nload average at end: ${await loadAverage()}`);

    const coldGap = median(cold.deployed.map((ms, i) => ms - cold.bare[i]));
    const cpuRatio = roundRatio(rounds, deployedTarget.name, "bare", "cpuMicros");
    const localRatio = roundRatio(rounds, local.name, deployedTarget.name, "rps");
    const portkeyRatio = typeof portkey === "string"
      ? NaN
      : roundRatio(rounds, deployedTarget.name, "portkey", "rps");
    return [
      {
        name: "CPU/request, ours deployed / bare",
        measured: `${cpuRatio.toFixed(2)}x`,
        target: "<= 1.5x",
        pass: cpuRatio <= 1.5,
      },
      {
        name: "req/s, ours deployed / portkey",
        measured: Number.isNaN(portkeyRatio) ? "not measured" : `${portkeyRatio.toFixed(1)}x`,
        target: ">= 5x",
        pass: portkeyRatio >= 5,
      },
      {
        name: "cold start, ours deployed - bare",
        measured: `${coldGap >= 0 ? "+" : ""}${coldGap.toFixed(0)} ms`,
        target: "<= +60 ms",
        pass: coldGap <= 60,
      },
      {
        name: "req/s, local stack / deployed",
        measured: `${localRatio.toFixed(2)}x`,
        target: ">= 0.8x",
        pass: localRatio >= 0.8,
      },
      {
        name: "RSS rise, 100 MB through deployed",
        measured: fmtMb(memory.fresh),
        target: "< 20 MB",
        pass: memory.fresh < 20 * 1024 * 1024,
      },
    ];
  } finally {
    await Promise.all(running.map((server) => stop(server.process)));
    await database.drop();
    await Deno.remove(dataDir, { recursive: true });
  }
}

if (import.meta.main) {
  const checks = await run();
  console.log("\ntargets (ratios within this run)\n");
  console.log(table([
    ["target", "measured", "target", "result"],
    ...checks.map((c) => [c.name, c.measured, c.target, c.pass ? "PASS" : "MISS"]),
  ]));
  const missed = checks.filter((c) => !c.pass).length;
  console.log(missed ? `\n${missed} target(s) missed: exit 1` : "\nall targets met: exit 0");
  Deno.exit(missed ? 1 : 0);
}
