/**
 * How the local stack's gateway hands requests to the functions: the request itself at the path
 * the platform gives (from the function's name on), and `verify_jwt`'s check, which remembers a
 * token that passed only until the token's `exp`.
 */
import { SignJWT } from "jose";
import { createGateway } from "../../local/gateway.ts";
import type { MountedFunction } from "../../local/functionRegistry.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { openTestDatabase } from "../support/database.ts";
import { expSoon, untilExpired } from "../support/tokenClock.ts";

const SECRET = "gateway-functions-test-secret-000000";
const received: Request[] = [];
const echo = async (request: Request) => {
  received.push(request);
  const url = new URL(request.url);
  return Response.json({ path: url.pathname + url.search, body: await request.text() });
};
const functions = new Map<string, MountedFunction>([
  ["echo", { name: "echo", verifyJwt: false, handler: echo }],
  ["guarded", { name: "guarded", verifyJwt: true, handler: echo }],
]);
const db = await openTestDatabase();
const gateway = createGateway({ functions, db, jwtSecret: SECRET, publicConfig: {} });

function projectJwt(expiresAt: number): Promise<string> {
  return new SignJWT({ role: "anon" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime(expiresAt)
    .sign(new TextEncoder().encode(SECRET));
}

const call = (name: string, token?: string) =>
  gateway(
    new Request(`http://127.0.0.1:54321/functions/v1/${name}/v1/chat?x=1`, {
      method: "POST",
      headers: token ? { authorization: `Bearer ${token}` } : {},
      body: '{"model":"m"}',
    }),
  );

Deno.test("the local gateway hands a function the request itself, at the path from its name on", async () => {
  const sent = new Request("http://127.0.0.1:54321/functions/v1/echo/v1/chat?x=1", {
    method: "POST",
    headers: { "content-type": "application/json", "x-client": "test" },
    body: '{"model":"m"}',
  });
  const response = await gateway(sent);
  assertEquals(await response.json(), { path: "/echo/v1/chat?x=1", body: '{"model":"m"}' });
  const got = received.at(-1)!;
  assert(got === sent, "the function got a copy of the request");
  assertEquals(got.headers.get("x-client"), "test");
  assertEquals(got.method, "POST");
});

Deno.test("the gateway's verify_jwt check remembers a token that passed only until its exp", async () => {
  try {
    const exp = expSoon();
    const token = await projectJwt(exp);
    assertEquals((await call("guarded", token)).status, 200);
    assertEquals((await call("guarded", token)).status, 200);
    const [h, p, s] = token.split(".");
    const changed = `${h}.${p}.${s.slice(0, -2)}${s.endsWith("AA") ? "BB" : "AA"}`;
    const forged = await call("guarded", changed);
    assertEquals(forged.status, 401, "a changed signature is checked anew");
    await forged.body?.cancel();
    await untilExpired(exp);
    const expired = await call("guarded", token);
    assertEquals(expired.status, 401, "expired while remembered");
    assertEquals((await expired.json()).error.code, "UNAUTHORIZED");
    const none = await call("guarded");
    assertEquals(none.status, 401);
    await none.body?.cancel();
  } finally {
    await db.close();
  }
});
