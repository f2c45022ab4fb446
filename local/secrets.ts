/**
 * Development secrets for the local stack: generated once into DATA_DIR/secrets.json unless the
 * environment sets them. Never used by deployed functions.
 */
import { SignJWT } from "jose";

export interface LocalSecrets {
  encryptionKey: string;
  jwtSecret: string;
}

function randomSecret(bytes = 32): string {
  const buffer = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(buffer, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Reads DATA_DIR/secrets.json, creating it (mode 0600) on first start. Env values win. */
export async function loadLocalSecrets(dataDir: string): Promise<LocalSecrets> {
  const path = `${dataDir}/secrets.json`;
  let stored: Partial<LocalSecrets> = {};
  try {
    stored = JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const secrets: LocalSecrets = {
    encryptionKey: stored.encryptionKey ?? randomSecret(),
    jwtSecret: stored.jwtSecret ?? randomSecret(),
  };
  if (!stored.encryptionKey || !stored.jwtSecret) {
    await Deno.mkdir(dataDir, { recursive: true });
    await Deno.writeTextFile(path, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  }
  return {
    encryptionKey: Deno.env.get("CREDENTIALS_ENCRYPTION_KEY")?.trim() || secrets.encryptionKey,
    jwtSecret: Deno.env.get("JWT_SECRET")?.trim() || secrets.jwtSecret,
  };
}

/** Signs an HS256 project JWT, as Supabase Auth would. */
export async function signProjectJwt(
  secret: string,
  claims: Record<string, unknown>,
  expiresIn: string | number = "1h",
): Promise<string> {
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret));
}

/** A signed-in user's access token. */
export function userAccessToken(secret: string, user: { id: string; email: string | null }) {
  return signProjectJwt(secret, {
    sub: user.id,
    email: user.email,
    role: "authenticated",
    aud: "authenticated",
    iss: "supabase-byok-local",
  });
}
