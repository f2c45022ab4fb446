/**
 * A project's Auth server as far as functions see it: the JWKS at
 * `/auth/v1/.well-known/jwks.json`, and an ES256 signing key for user tokens, as a project on
 * asymmetric signing keys has. Records each path asked for.
 */
import { exportJWK, generateKeyPair, SignJWT } from "jose";

export interface FakeAuth {
  url: string;
  /** The public key as the JWKS lists it. */
  jwk: Record<string, unknown>;
  hits: string[];
  /** Signs a user token; `claims` override the signed-in-user defaults. */
  sign(claims: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export async function startFakeAuth(options: { publishKeys?: boolean } = {}): Promise<FakeAuth> {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const jwk = {
    ...(await exportJWK(publicKey)),
    kid: crypto.randomUUID(),
    alg: "ES256",
    use: "sig",
  };
  const keys = options.publishKeys === false ? [] : [jwk];
  const hits: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    hits.push(path);
    if (path !== "/auth/v1/.well-known/jwks.json") {
      return new Response("not found", { status: 404 });
    }
    return Response.json({ keys });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    jwk,
    hits,
    sign: (claims) =>
      new SignJWT({ role: "authenticated", aud: "authenticated", ...claims })
        .setProtectedHeader({ alg: "ES256", kid: jwk.kid, typ: "JWT" })
        .setIssuedAt()
        .setExpirationTime("1h")
        .sign(privateKey),
    close: () => server.shutdown(),
  };
}
