/**
 * A provider that echoes the key it received (in `x-request-id`, in the body, split across
 * stream chunks, in an error) must not hand it to whoever made the call: the owner's key to a
 * collaborator running the owner's flow, a shared key to a grantee, or any key into a stored
 * conversation. The provider is a real HTTP fake.
 */
import { createHandler as createExecute } from "../../supabase/functions/execute/handler.ts";
import { createHandler as createFlows } from "../../supabase/functions/flows/handler.ts";
import { createHandler as createProxy } from "../../supabase/functions/openai-proxy/handler.ts";
import { createHandler as createRun } from "../../supabase/functions/conversation-run/handler.ts";
import { createHandler as createModels } from "../../supabase/functions/fetch-provider-models/handler.ts";
import { storeCredential } from "../../supabase/functions/_shared/vault/keyWriter.ts";
import {
  createSharedKey,
  saveConfig,
} from "../../supabase/functions/_shared/sharing/llmConfigStore.ts";
import { redactStream } from "../../supabase/functions/_shared/upstream/outbound.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { jsonRequest, newUser, testRuntime, type TestUser } from "../support/runtime.ts";
import { recordAttacks } from "./figures.ts";

const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Echoes the bearer key everywhere it can. */
let markerSeen = 0;
const echo = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
  if (request.headers.has("x-byok-callers-own-key")) markerSeen++;
  const key = request.headers.get("authorization")?.replace(/^Bearer /, "") ?? "";
  const headers = { "x-request-id": `req-${key}`, "x-echo": key };
  if (request.method === "GET") return Response.json({ data: [{ id: key }] }, { headers });
  const body = await request.json();
  if (body.model === "fail") {
    return Response.json({ error: { message: `bad key ${key}` } }, { status: 500, headers });
  }
  if (!body.stream) {
    return Response.json({ choices: [{ message: { content: `echo ${key}` } }] }, { headers });
  }
  const half = Math.floor(key.length / 2);
  const event = (content: string) =>
    `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`;
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      // The key split across two network chunks, then a clean event.
      const text = event(`echo ${key}`);
      const cut = text.indexOf(key) + half;
      controller.enqueue(encoder.encode(text.slice(0, cut)));
      await sleep(20);
      controller.enqueue(encoder.encode(text.slice(cut)));
      controller.enqueue(encoder.encode(`${event(" bye")}data: [DONE]\n\n`));
      controller.close();
    },
  });
  return new Response(stream, { headers: { ...headers, "content-type": "text/event-stream" } });
});

const db = await openTestDatabase();
const rt = testRuntime(db, {
  env: { OPENAI_BASE_URL: `http://127.0.0.1:${echo.addr.port}/v1` },
});
const asDb = (user: TestUser) => ({ id: user.id, claims: { sub: user.id, role: "authenticated" } });
const OWNER_KEY = `sk-owner-echoed-${crypto.randomUUID()}`;
const SHARED_KEY = `sk-shared-echoed-${crypto.randomUUID()}`;

async function readAll(response: Response) {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    text += decoder.decode(next.value, { stream: true });
  }
  const headers = [...response.headers].map(([n, v]) => `${n}: ${v}`).join("\n");
  return `${headers}\n\n${text}${decoder.decode()}`;
}

Deno.test(`keys a provider echoes are scrubbed (${DATABASE_KIND})`, async (t) => {
  try {
    await t.step("redaction holds across chunk boundaries and delays no event", async () => {
      const secret = "sk-abcdefghijklmnopqrstuvwxyz";
      const pieces = ["data: x sk-abc", "defghijklmn", "opqrstuvwxyz!\n\n", "data: sk-", "q\n\n"];
      const stream = ReadableStream.from(pieces.map((p) => encoder.encode(p)))
        .pipeThrough(redactStream(secret));
      const out: string[] = [];
      for await (const chunk of stream) out.push(new TextDecoder().decode(chunk));
      assertEquals(out.join(""), "data: x [REDACTED]!\n\ndata: sk-q\n\n");
      // The event after the key came out with its own chunk, not held for the next one.
      assert(out.some((chunk) => chunk.endsWith("!\n\n")));
    });

    const owner = await newUser(db);
    const collaborator = await newUser(db);
    const member = await newUser(db);
    await storeCredential(db, asDb(owner), rt.config, "openai", "api_key", OWNER_KEY);
    await createSharedKey(db, asDb(owner), rt.config, {
      account_name: `echo-${crypto.randomUUID().slice(0, 8)}`,
      display_name: "Echo",
      provider: "openai",
      model: null,
      api_key: SHARED_KEY,
      is_public: true,
      allowed_user_ids: [],
      daily_limit: null,
      per_user_daily_limit: null,
    }).then((row) =>
      saveConfig(db, asDb(member), {
        use_shared_key: true,
        shared_key_account_name: row.account_name as string,
        use_owner_name: false,
        key_owner_name: null,
        provider: "openai",
        model: null,
        base_url: null,
        region: null,
        deployment: null,
        extra_headers: null,
        response_format: "auto",
        daily_limit: null,
      })
    );
    const flows = createFlows(rt);
    const created = await (await flows(jsonRequest("http://local/flows", {
      action: "create",
      name: "Echo flow",
      use_owner_keys: true,
    }, owner.authorization))).json();
    const published = await (await flows(jsonRequest("http://local/flows", {
      action: "publish",
      flow_id: created.flow.id,
    }, owner.authorization))).json();

    await t.step("no echoed key reaches a collaborator, a grantee or a stored row", async () => {
      const chat = (model: string, stream: boolean) => ({
        model,
        stream,
        messages: [{ role: "user", content: "hi" }],
      });
      const runs: [string, string, Promise<Response>][] = [];
      for (const [model, stream] of [["m", false], ["m", true], ["fail", false]] as const) {
        runs.push([
          "execute",
          OWNER_KEY,
          createExecute(rt)(jsonRequest("http://local/execute", {
            shareToken: published.share_token,
            runId: crypto.randomUUID(),
            request: chat(model, stream),
          }, collaborator.authorization)),
        ]);
        runs.push([
          "shared key proxy",
          SHARED_KEY,
          createProxy(rt)(
            jsonRequest(
              "http://local/openai-proxy/v1/chat/completions",
              chat(model, stream),
              member.authorization,
            ),
          ),
        ]);
      }
      runs.push([
        "shared key models",
        SHARED_KEY,
        createModels(rt)(
          jsonRequest(
            "http://local/fetch-provider-models",
            { provider: "openai" },
            member.authorization,
          ),
        ),
      ]);
      runs.push([
        "conversation-run",
        SHARED_KEY,
        createRun(rt)(
          jsonRequest("http://local/conversation-run", {
            model: "m",
            messages: [{ role: "user", content: "hi" }],
          }, member.authorization),
        ),
      ]);
      let through = 0;
      for (const [name, key, pending] of runs) {
        const text = await readAll(await pending);
        if (text.includes(key) || text.includes(key.slice(8, 24))) {
          through++;
          console.error(`  ${name} passed the key on`);
        }
      }
      const stored = await db.query<{ text: string }>(
        `select coalesce(string_agg(r.output, ' '), '') || ' ' ||
                coalesce((select string_agg(m.content, ' ') from public.conversation_messages as m
                           where m.user_id = $1::uuid), '') as text
           from public.conversation_runs as r where r.user_id = $1::uuid`,
        [member.id],
      );
      if (stored[0].text.includes(SHARED_KEY)) through++;
      assert(stored[0].text.includes("[REDACTED]"), stored[0].text);
      recordAttacks("echoed keys", runs.length + 1, through);
      assertEquals(through, 0);
    });

    await t.step(
      "a caller's own key comes back unscrubbed to that caller only, unmarked upstream",
      async () => {
        const own = `sk-own-echoed-${crypto.randomUUID()}`;
        await storeCredential(db, asDb(owner), rt.config, "openai", "api_key", own);
        rt.vault.forget(owner.id, "openai");
        const text = await readAll(
          await createProxy(rt)(
            jsonRequest("http://local/openai-proxy/v1/chat/completions", {
              model: "m",
              messages: [{ role: "user", content: "hi" }],
            }, owner.authorization),
          ),
        );
        assert(text.includes("x-key-source: user"), text);
        assertEquals(markerSeen, 0);
      },
    );
  } finally {
    await echo.shutdown();
    await db.close();
  }
});
