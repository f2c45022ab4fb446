import { assertEquals, rejects } from "../support/assert.ts";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import {
  createAuthenticator,
  createVerifiedTokenCache,
} from "../../supabase/functions/_shared/http/auth.ts";
import { AppError } from "../../supabase/functions/_shared/core/errors.ts";
import { JWT_SECRET, signToken } from "../support/runtime.ts";
import { expSoon, untilExpired } from "../support/tokenClock.ts";

const userId = crypto.randomUUID();
const authenticate = createAuthenticator({ secret: JWT_SECRET, jwks: null, jwksUrl: null });

const isUnauthorized = (error: unknown) =>
  error instanceof AppError && error.code === "UNAUTHORIZED";

function b64url(value: unknown): string {
  return btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

Deno.test("authenticate accepts a signed-in user's HS256 token", async () => {
  const user = await authenticate(`Bearer ${await signToken({ sub: userId, email: "a@x.test" })}`);
  assertEquals(user.id, userId);
  assertEquals(user.email, "a@x.test");
});

Deno.test("authenticate accepts an asymmetric token through the JWKS", async () => {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" };
  const verify = createAuthenticator({ secret: null, jwks: { keys: [jwk] }, jwksUrl: null });
  const token = await new SignJWT({ sub: userId, role: "authenticated", aud: "authenticated" })
    .setProtectedHeader({ alg: "ES256", kid: "k1" })
    .setExpirationTime("1h")
    .sign(privateKey);
  assertEquals((await verify(`Bearer ${token}`)).id, userId);
});

Deno.test("authenticate refuses every forged, expired or non-user token with UNAUTHORIZED", async () => {
  const now = Math.floor(Date.now() / 1000);
  const cases: Record<string, string | null> = {
    "no header": null,
    "empty bearer": "Bearer ",
    "garbage": "Bearer not-a-jwt",
    "basic scheme": `Basic ${btoa("user:pass")}`,
    "alg none": `Bearer ${b64url({ alg: "none", typ: "JWT" })}.${
      b64url({ sub: userId, role: "authenticated", aud: "authenticated", exp: now + 3600 })
    }.`,
    "wrong secret": `Bearer ${await signToken({ sub: userId }, {
      secret: "another-secret-entirely",
    })}`,
    "expired": `Bearer ${await signToken({ sub: userId }, { expiresIn: now - 10 })}`,
    "nbf in the future": `Bearer ${await signToken({ sub: userId, nbf: now + 3600 })}`,
    "wrong aud": `Bearer ${await signToken({ sub: userId, aud: "someone-else" })}`,
    "anon key": `Bearer ${await signToken({ role: "anon", aud: undefined })}`,
    "service key": `Bearer ${await signToken({ role: "service_role", aud: undefined })}`,
    "service role with aud": `Bearer ${await signToken({ sub: userId, role: "service_role" })}`,
    "missing sub": `Bearer ${await signToken({})}`,
    "sub not a uuid": `Bearer ${await signToken({ sub: "admin" })}`,
    "tampered payload": await (async () => {
      const [h, , s] = (await signToken({ sub: userId })).split(".");
      return `Bearer ${h}.${
        b64url({
          sub: crypto.randomUUID(),
          role: "authenticated",
          aud: "authenticated",
          exp: now + 60,
        })
      }.${s}`;
    })(),
  };
  for (const [name, header] of Object.entries(cases)) {
    await rejects(authenticate(header), isUnauthorized, name);
  }
});

Deno.test("authenticate remembers a verified token only until it expires", async () => {
  const verify = createAuthenticator({ secret: JWT_SECRET, jwks: null, jwksUrl: null });
  const exp = expSoon();
  const token = await signToken({ sub: userId }, { expiresIn: exp });
  assertEquals((await verify(`Bearer ${token}`)).id, userId);
  assertEquals((await verify(`Bearer ${token}`)).id, userId);
  await untilExpired(exp);
  await rejects(verify(`Bearer ${token}`), isUnauthorized, "expired while remembered");
  const [h, p, s] = token.split(".");
  await rejects(
    verify(`Bearer ${h}.${p}.${s.slice(0, -2)}AA`),
    isUnauthorized,
    "a changed signature is verified anew",
  );
});

Deno.test("the verified-token cache forgets a token at its exp, the oldest past its size, and keeps none without exp", () => {
  let clock = 1_000_000;
  const cache = createVerifiedTokenCache<string>(() => clock, 2);
  cache.set("a", "A", 1_001);
  assertEquals(cache.get("a"), "A");
  clock = 1_001_000;
  assertEquals(cache.get("a"), undefined, "expired at exp");
  cache.set("a", "A", 2_000);
  cache.set("b", "B", 2_000);
  cache.set("c", "C", 2_000);
  assertEquals([cache.get("a"), cache.get("b"), cache.get("c")], [undefined, "B", "C"]);
  cache.set("d", "D", undefined);
  cache.set("e", "E", "2000");
  assertEquals([cache.get("d"), cache.get("e"), cache.get("b")], [undefined, undefined, "B"]);
});
