/**
 * Native-routes benchmark: a streamed answer of each wire format through llm-proxy, beside a bare
 * pass-through and the upstream reached directly, all in one interleaved pass:
 *   openai     POST /llm-proxy/openai/v1/chat/completions (stream: true)
 *   anthropic  POST /llm-proxy/anthropic/v1/messages (stream: true), token in x-api-key
 *   gemini     POST /llm-proxy/gemini/v1beta/models/m:streamGenerateContent?alt=sse,
 *              token in x-goog-api-key
 * Prints each route's added p50/p99 over direct (the whole stream read), for bare and ours, and
 * each native route's added p50 as a multiple of the OpenAI route's (target <= 1.2).
 * `npx deno run -A bench/proxyNative.ts` runs it alone.
 */
import { benchDatabase, spawnServer, stop } from "./proxy.ts";
import { ms, percentile } from "./stats.ts";

const SEQUENTIAL = Number(Deno.env.get("NATIVE_BENCH_ROUNDS") ?? 600);
const WARMUP = 300;
const SERVERS = new URL("./proxyNativeServers.ts", import.meta.url).pathname;
const KEYS = { openai: "sk-bench-0000", anthropic: "sk-ant-bench-0000", gemini: "AIzaBench0000" };
const ROUTES = ["openai", "anthropic", "gemini"] as const;
type Route = typeof ROUTES[number];
type Via = "direct" | "bare" | "ours";

const BODIES: Record<Route, string> = {
  openai: JSON.stringify({
    model: "gpt-bench",
    messages: [{ role: "user", content: "hi" }],
    stream: true,
    stream_options: { include_usage: true },
  }),
  anthropic: JSON.stringify({
    model: "claude-bench",
    max_tokens: 64,
    messages: [{ role: "user", content: "hi" }],
    stream: true,
  }),
  gemini: JSON.stringify({ contents: [{ role: "user", parts: [{ text: "hi" }] }] }),
};

/** The URL path of a route, below `/v1`-style roots that differ per way in. */
const PATHS: Record<Route, string> = {
  openai: "/chat/completions",
  anthropic: "/messages",
  gemini: "/models/m:streamGenerateContent?alt=sse",
};

interface Call {
  route: Route;
  via: Via;
  url: string;
  headers: Record<string, string>;
}

/** How each way in reaches each route, and which header carries what. */
function calls(upstream: string, bare: string, ours: string, token: string): Call[] {
  const roots: Record<Via, Record<Route, string>> = {
    direct: {
      openai: `${upstream}/v1`,
      anthropic: `${upstream}/anthropic/v1`,
      gemini: `${upstream}/gemini/v1beta`,
    },
    bare: {
      openai: `${bare}/v1`,
      anthropic: `${bare}/anthropic/v1`,
      gemini: `${bare}/gemini/v1beta`,
    },
    ours: {
      openai: `${ours}/openai/v1`,
      anthropic: `${ours}/anthropic/v1`,
      gemini: `${ours}/gemini/v1beta`,
    },
  };
  const credential = (via: Via, route: Route) => via === "ours" ? token : KEYS[route];
  const out: Call[] = [];
  for (const via of ["direct", "bare", "ours"] as Via[]) {
    for (const route of ROUTES) {
      const secret = credential(via, route);
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (route === "openai") headers.authorization = `Bearer ${secret}`;
      if (route === "anthropic") {
        headers["x-api-key"] = secret;
        headers["anthropic-version"] = "2023-06-01";
      }
      if (route === "gemini") headers["x-goog-api-key"] = secret;
      out.push({ route, via, url: roots[via][route] + PATHS[route], headers });
    }
  }
  return out;
}

async function oneStream(call: Call): Promise<void> {
  const response = await fetch(call.url, {
    method: "POST",
    headers: call.headers,
    body: BODIES[call.route],
  });
  const text = await response.text();
  if (!response.ok || text.length < 100) {
    throw new Error(`${call.via} ${call.route} answered ${response.status}: ${text.slice(0, 200)}`);
  }
}

export async function runNativeBench(): Promise<void> {
  console.log(
    "\n## proxy, native routes (one streamed answer each, against one fast fake upstream)",
  );
  const children: Deno.ChildProcess[] = [];
  const database = await benchDatabase();
  try {
    const upstream = await spawnServer(["upstream"], SERVERS);
    children.push(upstream.process);
    const bare = await spawnServer(["bare", upstream.ready.url], SERVERS);
    children.push(bare.process);
    const ours = await spawnServer(["ours", upstream.ready.url, database?.url ?? ""], SERVERS);
    children.push(ours.process);
    const all = calls(upstream.ready.url, bare.ready.url, ours.ready.url, ours.ready.token);

    for (const call of all) for (let i = 0; i < WARMUP; i++) await oneStream(call);
    const samples = new Map(all.map((call) => [`${call.via} ${call.route}`, [] as number[]]));
    for (let round = 0; round < SEQUENTIAL; round++) {
      for (let k = 0; k < all.length; k++) {
        const call = all[(round + k) % all.length];
        const start = performance.now();
        await oneStream(call);
        samples.get(`${call.via} ${call.route}`)!.push(performance.now() - start);
      }
    }
    const p = (via: Via, route: Route, q: number) => percentile(samples.get(`${via} ${route}`)!, q);
    const added = (via: Via, route: Route, q: number) =>
      Math.max(0, p(via, route, q) - p("direct", route, q));

    console.log(
      `${SEQUENTIAL} sequential streams per row, interleaved; added = over direct to the same fake\n` +
        "| route     | direct p50 | bare added p50 | ours p50  | ours added p50 | ours added p99 |\n" +
        "| --------- | ---------- | -------------- | --------- | -------------- | -------------- |",
    );
    for (const route of ROUTES) {
      console.log(
        `| ${route.padEnd(9)} | ${ms(p("direct", route, 50))} | ${
          ms(added("bare", route, 50))
        } | ` +
          `${ms(p("ours", route, 50))} | ${ms(added("ours", route, 50))} | ${
            ms(added("ours", route, 99))
          } |`,
      );
    }
    console.log("\nTargets (ratios from this run):");
    for (const route of ["anthropic", "gemini"] as const) {
      const ratio = added("ours", route, 50) / Math.max(added("ours", "openai", 50), 1e-6);
      console.log(
        `- ${route} ours added p50 / openai ours added p50 = ${ratio.toFixed(2)} (target <= 1.2)`,
      );
    }
    console.log("\nWhere the difference lies (no target):");
    for (const route of ["anthropic", "gemini"] as const) {
      // Bare pays for each format's own framing too (more or larger events); ours minus bare is
      // what our code adds on top of relaying that format.
      const own = (r: Route) => Math.max(p("ours", r, 50) - p("bare", r, 50), 1e-6);
      console.log(
        `- ${route} (ours - bare) p50 / openai (ours - bare) p50 = ${
          (own(route) / own("openai")).toFixed(2)
        }; bare added p50 ${ms(added("bare", route, 50))} against openai's ${
          ms(added("bare", "openai", 50))
        }`,
      );
    }
  } finally {
    await Promise.all(children.map(stop));
    await database?.drop();
  }
}

if (import.meta.main) await runNativeBench();
