import { assertEquals } from "../support/assert.ts";
import { optionalUser } from "../../supabase/functions/_shared/http/pipeline.ts";
import { AppError } from "../../supabase/functions/_shared/core/errors.ts";
import { alice, requestWith as request, tokenRuntime as rt } from "../support/tokenRuntime.ts";

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
