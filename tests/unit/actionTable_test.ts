import { z } from "zod";
import { assertEquals } from "../support/assert.ts";
import { action, actionTable } from "../../supabase/functions/_shared/http/actions.ts";
import { parseWith } from "../../supabase/functions/_shared/http/pipeline.ts";
import { AppError } from "../../supabase/functions/_shared/core/errors.ts";
import { alice, requestWith as request, tokenRuntime as rt } from "../support/tokenRuntime.ts";

const ACTIONS = actionTable({
  echo: action({ text: z.string().max(5) }, (who: string, body) => Promise.resolve({ who, body })),
  open: action({}, () => Promise.resolve({ open: true }), "none"),
  maybe: action({}, () => Promise.resolve({}), "optional"),
});

const failure = (promise: Promise<unknown>) =>
  promise.then(() => null, (error: AppError) => [error.code, error.status]);

Deno.test("actionTable: run gives the step its own action's body, answers 200 JSON", async () => {
  const body = parseWith(ACTIONS.schema, { action: "echo", text: "hi" });
  const response = await ACTIONS.run("alice", body);
  assertEquals(response.status, 200);
  assertEquals(await response.json(), { who: "alice", body: { action: "echo", text: "hi" } });
});

Deno.test("actionTable: an unknown action, an unknown field or a bad field is 400", () => {
  for (
    const raw of [{ action: "nope" }, { action: "open", extra: 1 }, {
      action: "echo",
      text: "toolong",
    }, {}]
  ) {
    let code: string | null = null;
    try {
      parseWith(ACTIONS.schema, raw);
    } catch (error) {
      code = (error as AppError).code;
    }
    assertEquals([raw, code], [raw, "INVALID_REQUEST"]);
  }
});

Deno.test("actionTable: a `none` action never looks at the token", async () => {
  assertEquals(await ACTIONS.caller(request("Bearer bad"), rt, { action: "open" }), null);
});

Deno.test("actionTable: `optional` is has no caller without a token, 401 on a bad one", async () => {
  assertEquals(await ACTIONS.caller(request(), rt, { action: "maybe" }), null);
  assertEquals(await ACTIONS.caller(request("Bearer good"), rt, { action: "maybe" }), alice);
  assertEquals(await failure(ACTIONS.caller(request("Bearer bad"), rt, { action: "maybe" })), [
    "UNAUTHORIZED",
    401,
  ]);
});

Deno.test("actionTable: an unknown action, or one named like an Object key, needs a user", async () => {
  for (
    const raw of [{ action: "nope" }, { action: "constructor" }, { action: "__proto__" }, null, "x"]
  ) {
    assertEquals(await failure(ACTIONS.caller(request(), rt, raw)), ["UNAUTHORIZED", 401]);
  }
  assertEquals(await ACTIONS.caller(request("Bearer good"), rt, { action: "echo" }), alice);
});
