/**
 * Quotas section of `npm run bench`, on the local PostgreSQL:
 * - `check_and_log_run` p50 and throughput with 1 and 20 concurrent callers on one flow (the
 *   flow's row lock serializes them: that is what makes the limits exact);
 * - an owner-funded `execute` call against a personal-key proxy call, in the same run against the
 *   same fast upstream, with the database round trips each one makes.
 */
import { startLocalStack } from "../local/stack.ts";
import { connectPostgres, type Database } from "../supabase/functions/_shared/core/db.ts";
import { createHandler as createExecute } from "../supabase/functions/execute/handler.ts";
import { createHandler as createProxy } from "../supabase/functions/openai-proxy/handler.ts";
import { ms, percentile } from "./stats.ts";

const CALLS = Number(Deno.env.get("BENCH_ITERATIONS") ?? "2000");
const COMPLETION = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});

/** Counts the statements a database receives, to show round trips per request. */
function counting(db: Database): Database & { count: () => number; busyMs: () => number } {
  let statements = 0;
  let busy = 0;
  return {
    query: async (text, params) => {
      statements++;
      const t = performance.now();
      try {
        return await db.query(text, params);
      } finally {
        busy += performance.now() - t;
      }
    },
    transaction: (work) => {
      statements++;
      return db.transaction(work);
    },
    close: () => db.close(),
    count: () => statements,
    busyMs: () => busy,
  };
}

async function timed(calls: number, concurrency: number, one: (i: number) => Promise<unknown>) {
  const samples: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < calls) {
      const i = next++;
      const t = performance.now();
      await one(i);
      samples.push(performance.now() - t);
    }
  }));
  return { p50: percentile(samples, 50), perSecond: calls / ((performance.now() - start) / 1000) };
}

async function post(
  handler: (r: Request) => Promise<Response>,
  path: string,
  token: string,
  body: unknown,
) {
  const response = await handler(
    new Request(`http://bench/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    }),
  );
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`${path} answered ${response.status}`);
}

export async function runQuotasBench(): Promise<void> {
  const adminUrl = Deno.env.get("BENCH_POSTGRES_URL") ??
    "postgres://postgres@127.0.0.1:5432/postgres";
  const admin = connectPostgres(adminUrl, { max: 1 });
  const name = `byok_quotas_${Date.now()}`;
  try {
    await admin.query(`create database ${name}`);
  } catch (error) {
    console.log(`quotas: skipped, no PostgreSQL (${(error as Error).message})`);
    await admin.close();
    return;
  }
  const upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      await request.arrayBuffer();
      return new Response(COMPLETION, { headers: { "content-type": "application/json" } });
    },
  );
  const db = counting(connectPostgres(adminUrl.replace(/\/[^/]*$/, `/${name}`), { max: 20 }));
  const stack = await startLocalStack({
    dataDir: await Deno.makeTempDir({ prefix: "byok-quotas-" }),
    port: 0,
    db,
    env: { OPENAI_BASE_URL: `http://127.0.0.1:${upstream.addr.port}/v1` },
  });
  try {
    const signIn = async (email: string) =>
      (await (await fetch(`${stack.url}/auth/v1/dev/token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email }),
      })).json()).access_token as string;
    const owner = await signIn("owner@quotas.bench");
    const collaborator = await signIn("collaborator@quotas.bench");
    const call = (fn: string, token: string, body: unknown) =>
      fetch(`${stack.functionsUrl}/${fn}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      }).then((r) => r.json());
    await call("credentials-manager", owner, {
      action: "set",
      service: "openai",
      value: "sk-owner-bench-000001",
    });
    await call("credentials-manager", collaborator, {
      action: "set",
      service: "openai",
      value: "sk-collab-bench-00001",
    });
    const flowId = (await call("flows", owner, {
      action: "create",
      name: "bench",
      use_owner_keys: true,
      per_minute_limit: 10_000,
      daily_limit: 1_000_000,
    })).flow.id;
    const token = (await call("flows", owner, { action: "publish", flow_id: flowId }))
      .share_token as string;
    const [{ id: actor }] = await db.query<{ id: string }>(
      "select id from auth.users where email = $1",
      [
        "collaborator@quotas.bench",
      ],
    );

    console.log(
      `\nquotas: check_and_log_run on PostgreSQL (${CALLS} distinct runs per row, one flow)`,
    );
    for (const concurrency of [1, 20]) {
      const result = await timed(
        CALLS,
        concurrency,
        () =>
          db.query(
            "select * from private.check_and_log_run($1, $2::uuid, $3::uuid, null, null, null)",
            [
              token,
              crypto.randomUUID(),
              actor,
            ],
          ),
      );
      console.log(
        `  ${String(concurrency).padStart(2)} concurrent   p50 ${ms(result.p50).padStart(10)}   ${
          result.perSecond.toFixed(0).padStart(6)
        } calls/s`,
      );
    }

    // Fresh flows for the comparison, each taking at most 50 runs: a minute's window the size that
    // realistic limits allow (the default is 10), rather than the thousands filled above.
    const tokens: string[] = [];
    for (let i = 0; i < 25; i++) {
      const id = (await call("flows", owner, {
        action: "create",
        name: `bench ${i}`,
        use_owner_keys: true,
        per_minute_limit: 100,
      })).flow.id;
      tokens.push((await call("flows", owner, { action: "publish", flow_id: id })).share_token);
    }
    const shareTokenFor = (i: number) => tokens[Math.floor(i / 50) % tokens.length];
    const execute = createExecute(stack.runtime);
    const proxy = createProxy(stack.runtime);
    const chat = { model: "bench", messages: [{ role: "user", content: "hi" }] };
    const runs = Math.min(CALLS, 1000);
    let executed = 0;
    const samples = { proxy: [] as number[], execute: [] as number[] };
    const statements = { proxy: 0, execute: 0 };
    const dbMs = { proxy: 0, execute: 0 };
    for (let i = 0; i < 50; i++) {
      await post(proxy, "openai-proxy/v1/chat/completions", collaborator, chat);
      await post(execute, "execute", collaborator, {
        shareToken: shareTokenFor(executed++),
        runId: crypto.randomUUID(),
        request: chat,
      });
    }
    for (let i = 0; i < runs; i++) {
      for (
        const kind of i % 2 === 0 ? ["proxy", "execute"] as const : ["execute", "proxy"] as const
      ) {
        const before = db.count();
        const busyBefore = db.busyMs();
        const t = performance.now();
        if (kind === "proxy") {
          await post(proxy, "openai-proxy/v1/chat/completions", collaborator, chat);
        } else {await post(execute, "execute", collaborator, {
            shareToken: shareTokenFor(executed++),
            runId: crypto.randomUUID(),
            request: chat,
          });}
        samples[kind].push(performance.now() - t);
        statements[kind] += db.count() - before;
        dbMs[kind] += db.busyMs() - busyBefore;
      }
    }
    const p50 = { proxy: percentile(samples.proxy, 50), execute: percentile(samples.execute, 50) };
    console.log(
      `\nquotas: owner-funded execute vs personal-key proxy (${runs} calls each, interleaved, warm caches)`,
    );
    console.log(
      `  personal proxy    p50 ${ms(p50.proxy).padStart(10)}   ${
        (statements.proxy / runs).toFixed(2)
      } statements/call, ${ms(dbMs.proxy / runs)} waiting on the database`,
    );
    console.log(
      `  owner execute     p50 ${ms(p50.execute).padStart(10)}   ${
        (statements.execute / runs).toFixed(2)
      } statements/call, ${ms(dbMs.execute / runs)} waiting on the database`,
    );
    console.log(
      `  added by the quota check: ${ms(p50.execute - p50.proxy)} p50, ` +
        `${
          ((statements.execute - statements.proxy) / runs).toFixed(2)
        } round trips (target: at most 1)`,
    );
  } finally {
    await stack.close();
    await upstream.shutdown();
    await db.close();
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.close();
  }
}

if (import.meta.main) await runQuotasBench();
