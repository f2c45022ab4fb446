/**
 * Ordinary input the database cannot store: a NUL in any text field, a lone surrogate in any
 * JSON field, a flow definition nested 10,000 deep. Each is a 400 INVALID_REQUEST from
 * validation (never a 500) and changes nothing; the SQLSTATEs behind them map to 400 as a last
 * line.
 */
import { createHandler as createCredentials } from "../../supabase/functions/credentials-manager/handler.ts";
import { createHandler as createFlows } from "../../supabase/functions/flows/handler.ts";
import { createHandler as createLlmConfig } from "../../supabase/functions/llm-config/handler.ts";
import { createHandler as createRun } from "../../supabase/functions/conversation-run/handler.ts";
import { createHandler as createExecute } from "../../supabase/functions/execute/handler.ts";
import { toAppError } from "../../supabase/functions/_shared/http/pipeline.ts";
import { assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { captureLogs, newUser, testRuntime } from "../support/runtime.ts";
import { recordAttacks } from "./figures.ts";

const db = await openTestDatabase();
const rt = testRuntime(db, { env: { OPENAI_BASE_URL: "http://127.0.0.1:9/v1" } });
const user = await newUser(db);

/** JSON text with `\u0000` or a lone `\ud800` spelled as escapes, as a client would send them. */
const NUL = "\\u0000";
const LONE = "\\ud800";
const deep = (levels: number) => `${'{"a":'.repeat(levels)}1${"}".repeat(levels)}`;

const flows = createFlows(rt);
const [created] = await db.query<{ id: string }>(
  "insert into public.flows (owner_id, name) values ($1::uuid, 'target') returning id",
  [user.id],
);

type Case = [string, (request: Request) => Promise<Response>, string, string];
const cases: Case[] = [];
for (const bad of [NUL, LONE]) {
  cases.push(
    [
      "credentials value",
      createCredentials(rt),
      "credentials-manager",
      `{"action":"set","service":"custom","key":"base_url","value":"https://a.example/${bad}"}`,
    ],
    [
      "credentials api key",
      createCredentials(rt),
      "credentials-manager",
      `{"action":"set","service":"openai","key":"api_key","value":"sk-abcdefghij${bad}klmnop"}`,
    ],
    ["flow name", flows, "flows", `{"action":"create","name":"x${bad}y"}`],
    [
      "flow definition text",
      flows,
      "flows",
      `{"action":"create","name":"x","definition":{"a":"${bad}"}}`,
    ],
    [
      "flow definition key",
      flows,
      "flows",
      `{"action":"create","name":"x","definition":{"${bad}":1}}`,
    ],
    [
      "flow update",
      flows,
      "flows",
      `{"action":"update","flow_id":"${created.id}","name":"${bad}"}`,
    ],
    [
      "flow allowed model",
      flows,
      "flows",
      `{"action":"update","flow_id":"${created.id}","allowed_model":"m${bad}"}`,
    ],
    [
      "config model",
      createLlmConfig(rt),
      "llm-config/save",
      `{"provider":"openai","model":"m${bad}"}`,
    ],
    [
      "config region",
      createLlmConfig(rt),
      "llm-config/save",
      `{"provider":"openai","region":"r${bad}"}`,
    ],
    [
      "config deployment",
      createLlmConfig(rt),
      "llm-config/save",
      `{"provider":"openai","deployment":"d${bad}"}`,
    ],
    [
      "config headers",
      createLlmConfig(rt),
      "llm-config/save",
      `{"provider":"openai","extra_headers":{"x":"${bad}"}}`,
    ],
    [
      "config format",
      createLlmConfig(rt),
      "llm-config/save",
      `{"provider":"openai","response_format":"${bad}"}`,
    ],
    [
      "shared key name",
      createLlmConfig(rt),
      "llm-config/shared-keys",
      `{"account_name":"team-x","display_name":"T${bad}","provider":"openai","api_key":"sk-abcdefghijklmnop"}`,
    ],
    [
      "conversation message",
      createRun(rt),
      "conversation-run",
      `{"model":"m","messages":[{"role":"user","content":"hi${bad}"}]}`,
    ],
    [
      "execute request",
      createExecute(rt),
      "execute",
      `{"shareToken":"shr_${
        "A".repeat(43)
      }","runId":"${crypto.randomUUID()}","request":{"model":"m","messages":["${bad}"]}}`,
    ],
  );
}
cases.push(
  [
    "flow definition 10,000 deep",
    flows,
    "flows",
    `{"action":"create","name":"x","definition":${deep(10_000)}}`,
  ],
  [
    "flow definition 65 deep",
    flows,
    "flows",
    `{"action":"create","name":"x","definition":${deep(65)}}`,
  ],
  [
    "flow update 10,000 deep",
    flows,
    "flows",
    `{"action":"update","flow_id":"${created.id}","definition":${deep(10_000)}}`,
  ],
);

Deno.test(`unstorable input is a 400, never a 500, and stores nothing (${DATABASE_KIND})`, async (t) => {
  try {
    await t.step("every field refuses NUL, lone surrogates and deep nesting", async () => {
      const before = await db.query<{ n: number }>(
        `select (select count(*) from public.flows where owner_id = $1::uuid)::int
              + (select count(*) from public.user_credentials where user_id = $1::uuid)::int
              + (select count(*) from public.llm_configs where user_id = $1::uuid)::int as n`,
        [user.id],
      );
      let through = 0;
      const { lines } = await captureLogs(async () => {
        for (const [name, handler, path, body] of cases) {
          const response = await handler(
            new Request(`http://local/${path}`, {
              method: "POST",
              headers: { "content-type": "application/json", authorization: user.authorization },
              body,
            }),
          );
          const answer = await response.json();
          if (response.status !== 400 || answer.error.code !== "INVALID_REQUEST") {
            through++;
            console.error(`  ${name}: ${response.status} ${answer.error?.code}`);
          }
        }
      });
      const after = await db.query<{ n: number }>(
        `select (select count(*) from public.flows where owner_id = $1::uuid)::int
              + (select count(*) from public.user_credentials where user_id = $1::uuid)::int
              + (select count(*) from public.llm_configs where user_id = $1::uuid)::int as n`,
        [user.id],
      );
      recordAttacks("NUL and surrogates", cases.length, through);
      assertEquals(through, 0);
      assertEquals(after, before);
      assertEquals(lines.filter((line) => line.includes("unexpected error")), []);
    });

    await t.step("the SQLSTATEs behind them map to 400 as a last line", async () => {
      const refusals: [string, unknown[]][] = [
        ["select $1::text", ["a\u0000b"]], // 22P05
        ["select convert_from('\\xff'::bytea, 'UTF8')", []], // 22021
        [`select '"\\ud800"'::jsonb`, []], // 22P02
        ["select $1::uuid", ["not-a-uuid"]], // 22P02
      ];
      // 54001: PGlite's stack check does not fire in its wasm build, so PostgreSQL only.
      if (DATABASE_KIND === "postgres") {
        refusals.push(["select (repeat('[', 200000) || repeat(']', 200000))::jsonb", []]);
      }
      const codes: string[] = [];
      for (const [sql, params] of refusals) {
        // A small stack, so the nesting limit is hit the same way on PGlite and PostgreSQL.
        const error = await db.transaction(async (tx) => {
          await tx.query("set local max_stack_depth = '100kB'", []);
          await tx.query(sql, params);
        }).then(() => null, (e) => e);
        codes.push(error ? toAppError(error, "test").code : "stored");
      }
      recordAttacks(
        "NUL and surrogates",
        refusals.length,
        codes.filter((c) => c !== "INVALID_REQUEST").length,
      );
      assertEquals(codes, refusals.map(() => "INVALID_REQUEST"));
    });
  } finally {
    await db.close();
  }
});
