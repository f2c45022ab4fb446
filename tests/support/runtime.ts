/**
 * Test runtimes and tokens: a real config (random secrets), a real database, real JWTs.
 */
import { SignJWT } from "jose";
import { type Config, loadConfig } from "../../supabase/functions/_shared/core/config.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import { createRuntime, type Runtime } from "../../supabase/functions/_shared/core/runtime.ts";
import { setLogSink } from "../../supabase/functions/_shared/core/log.ts";
import { createUser } from "./database.ts";

export const JWT_SECRET = `test-jwt-secret-${crypto.randomUUID()}`;
export const ENCRYPTION_KEY = `test-passphrase-${crypto.randomUUID()}`;

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    CREDENTIALS_ENCRYPTION_KEY: ENCRYPTION_KEY,
    JWT_SECRET: JWT_SECRET,
    ALLOW_PRIVATE_BASE_URLS: "true",
    ...env,
  });
}

export function testRuntime(
  db: Database,
  options: { env?: Record<string, string>; fetch?: typeof fetch; now?: () => number } = {},
): Runtime {
  return createRuntime({
    config: testConfig(options.env),
    db,
    fetch: options.fetch,
    now: options.now,
  });
}

/** Signs a token with the test secret; `claims` override the signed-in-user defaults. */
export async function signToken(
  claims: Record<string, unknown>,
  options: { secret?: string; expiresIn?: string | number; alg?: string; issuedAt?: number } = {},
): Promise<string> {
  return await new SignJWT({ role: "authenticated", aud: "authenticated", ...claims })
    .setProtectedHeader({ alg: options.alg ?? "HS256", typ: "JWT" })
    .setIssuedAt(options.issuedAt)
    .setExpirationTime(options.expiresIn ?? "1h")
    .sign(new TextEncoder().encode(options.secret ?? JWT_SECRET));
}

export interface TestUser {
  id: string;
  email: string;
  token: string;
  authorization: string;
}

/** A user row plus a valid access token for it. */
export async function newUser(db: Database): Promise<TestUser> {
  const { id, email } = await createUser(db);
  const token = await signToken({ sub: id, email });
  return { id, email, token, authorization: `Bearer ${token}` };
}

/** Captures every log line written while `work` runs. */
export async function captureLogs<T>(
  work: () => Promise<T>,
): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const restore = setLogSink((_level, line) => lines.push(line));
  try {
    return { result: await work(), lines };
  } finally {
    restore();
  }
}

/** POSTs JSON to a handler the way a client would. */
export function jsonRequest(url: string, body: unknown, authorization?: string): Request {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (authorization) headers.authorization = authorization;
  return new Request(url, { method: "POST", headers, body: JSON.stringify(body) });
}
