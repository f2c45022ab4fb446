import { assertEquals } from "../support/assert.ts";
import { optionalUser } from "../../supabase/functions/_shared/http/pipeline.ts";
import { AppError } from "../../supabase/functions/_shared/core/errors.ts";
import type { Runtime } from "../../supabase/functions/_shared/core/runtime.ts";

const alice = { id: "00000000-0000-4000-8000-000000000001" };
const rt = {
  authenticate: (authorization: string | null) => {
    if (authorization === "Bearer good") return Promise.resolve(alice);
    return Promise.reject(new AppError("UNAUTHORIZED"));
  },
} as unknown as Runtime;

const request = (authorization?: string) =>
  new Request("http://local/x", {
    method: "POST",
    headers: authorization === undefined ? {} : { authorization },
  });

Deno.test("optionalUser: no header is an anonymous caller", async () => {
  assertEquals(await optionalUser(request(), rt), null);
});

Deno.test("optionalUser: a valid token is the user", async () => {
  assertEquals(await optionalUser(request("Bearer good"), rt), alice);
});

Deno.test("optionalUser: an invalid token present is still 401", async () => {
  const error = await optionalUser(request("Bearer bad"), rt).then(() => null, (e) => e);
  assertEquals(error instanceof AppError, true);
  assertEquals((error as AppError).status, 401);
});
