/**
 * Both ways a Supabase project signs user tokens, end to end through a deployed handler with its
 * runtime built from the environment the platform gives it: asymmetric ES256 keys through the
 * project's JWKS (fetched over HTTP from SUPABASE_URL, or inline in SUPABASE_JWKS), and a legacy
 * HS256 project with its secret set as JWT_SECRET (a name `supabase secrets set` accepts).
 */
import { createHandler } from "../../supabase/functions/credentials-manager/handler.ts";
import { loadConfig } from "../../supabase/functions/_shared/core/config.ts";
import { createRuntime } from "../../supabase/functions/_shared/core/runtime.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { type FakeAuth, startFakeAuth } from "../support/fakeAuth.ts";
import { createUser, DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import {
  captureLogs,
  ENCRYPTION_KEY,
  jsonRequest,
  JWT_SECRET,
  signToken,
} from "../support/runtime.ts";
import { integrationSuite } from "../support/suite.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";

let db: Database;
let asymmetricProject: FakeAuth;
let legacyProject: FakeAuth;
let jwk: FakeAuth["jwk"];
const suite = integrationSuite("jwtVerification", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
    asymmetricProject = await startFakeAuth();
    onTeardown(() => asymmetricProject.close());
    legacyProject = await startFakeAuth({ publishKeys: false });
    onTeardown(() => legacyProject.close());
    jwk = asymmetricProject.jwk;
  },
});

/** A handler whose runtime is built once from `env`, on first use, as runtimeFromEnv does. */
function handlerFor(env: Record<string, string>) {
  let runtime: ReturnType<typeof createRuntime> | undefined;
  return createHandler(() =>
    runtime ??= createRuntime({
      config: loadConfig({ CREDENTIALS_ENCRYPTION_KEY: ENCRYPTION_KEY, ...env }),
      db,
    })
  );
}

const es256Token = (claims: Record<string, unknown>) => asymmetricProject.sign(claims);

async function status(handler: ReturnType<typeof handlerFor>, token: string) {
  const response = await handler(
    jsonRequest("http://local/credentials-manager", {
      action: "get_status",
      service: "openai",
    }, `Bearer ${token}`),
  );
  const body = await response.json();
  return { status: response.status, code: body.error?.code as string | undefined };
}

/** A signed-in user is let in; the anon key, the service key and a token without sub are not. */
async function assertUserOnly(
  handler: ReturnType<typeof handlerFor>,
  sign: (claims: Record<string, unknown>) => Promise<string>,
) {
  const user = await createUser(db);
  assertEquals(await status(handler, await sign({ sub: user.id, email: user.email })), {
    status: 200,
    code: undefined,
  });
  const refused = { status: 401, code: "UNAUTHORIZED" };
  assertEquals(await status(handler, await sign({ role: "anon", aud: undefined })), refused);
  assertEquals(await status(handler, await sign({ role: "service_role", sub: user.id })), refused);
  assertEquals(await status(handler, await sign({})), refused);
}

suite.test(
  `a project on asymmetric keys: ES256 through SUPABASE_URL's JWKS (${DATABASE_KIND})`,
  async () => {
    const handler = handlerFor({ SUPABASE_URL: asymmetricProject.url });
    await assertUserOnly(handler, es256Token);
    assert(asymmetricProject.hits.includes("/auth/v1/.well-known/jwks.json"));
    const forgedHs256 = await signToken({ sub: crypto.randomUUID() });
    const { result } = await captureLogs(() => status(handler, forgedHs256));
    assertEquals(result.status, 401);
  },
);

suite.test(
  "a project on asymmetric keys: ES256 through the SUPABASE_JWKS the platform injects",
  async () => {
    for (const injected of [JSON.stringify({ keys: [jwk] }), JSON.stringify([jwk])]) {
      await assertUserOnly(handlerFor({ SUPABASE_JWKS: injected }), es256Token);
    }
  },
);

suite.test("a legacy HS256 project: JWT_SECRET verifies its tokens beside an empty JWKS", async () => {
  const handler = handlerFor({ SUPABASE_URL: legacyProject.url, JWT_SECRET });
  await assertUserOnly(handler, (claims) => signToken(claims));
  const otherSecret = await signToken({ sub: crypto.randomUUID() }, { secret: "not-the-secret" });
  assertEquals((await status(handler, otherSecret)).status, 401);
});

suite.test(
  "a legacy HS256 project without JWT_SECRET: 401, and one log line says what to set",
  async () => {
    const handler = handlerFor({ SUPABASE_URL: legacyProject.url });
    const user = await createUser(db);
    const token = await signToken({ sub: user.id });
    const { result, lines } = await captureLogs(async () => [
      await status(handler, token),
      await status(handler, token),
    ]);
    assertEquals(result, [
      { status: 401, code: "UNAUTHORIZED" },
      { status: 401, code: "UNAUTHORIZED" },
    ]);
    const hints = lines.filter((line) => line.includes("JWT_SECRET"));
    assertEquals(hints.length, 1, lines.join("\n"));
    assert(!hints[0].includes(token.split(".")[2]), "the log line carries the token");
  },
);

suite.test("no JWT_SECRET and no JWKS at all: CONFIG_ERROR naming JWT_SECRET", async () => {
  const handler = handlerFor({});
  const { result, lines } = await captureLogs(() => status(handler, "x.y.z"));
  assertEquals(result, { status: 500, code: "CONFIG_ERROR" });
  assert(
    lines.some((line) => line.includes("JWT_SECRET is not set, and there is no JWKS")),
    lines.join("\n"),
  );
});
