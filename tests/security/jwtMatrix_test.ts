/**
 * The JWT attack matrix against every function declared in supabase/config.toml, through the
 * gateway: every token that is not a valid signed-in user's gets 401 UNAUTHORIZED.
 *
 * One documented exception, not a weakening: a path that is not a route of the function at all
 * (e.g. the bare `/openai-proxy` without `/v1/...`) answers 404 NOT_FOUND to everyone, a valid
 * user included, so it serves nothing; there a 404 NOT_FOUND is accepted. Each function must have
 * at least one real route, and on every real route the rule is strict. No function is public today.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND } from "../support/database.ts";
import { integrationSuite } from "../support/suite.ts";
import { recordCases } from "./figures.ts";
import {
  isEnvelope,
  jsonHeaders,
  probeRequests,
  type SecurityStack,
  type SecurityUser,
  startSecurityStack,
} from "./securityStack.ts";

let suite: SecurityStack;
const steps = integrationSuite("jwtMatrix", {
  // The stack captures console output for the leak scanner, and its last case closes it before
  // scanning; the closer here makes sure it is closed when a case fails first.
  async setup(onTeardown) {
    suite = await startSecurityStack();
    onTeardown(() => suite.close());
  },
});
const base64url = (value: unknown) =>
  btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

/**
 * Public requests the rule does not apply to, each with its reason. They are never sent here:
 * - flows `{"action": "load_live", ...}`: a live flow page loads a published flow with its live
 *   id and share token, without a session (the share token is the credential).
 */
const PUBLIC_ACTIONS: Record<string, string[]> = { flows: ["load_live"] };

let user: SecurityUser;
const cases: { name: string; authorization: () => Promise<string | undefined> }[] = [];

steps.test(`jwt matrix builds its attack tokens (${DATABASE_KIND})`, async () => {
  user = await suite.newUser();
  const now = Math.floor(Date.now() / 1000);
  const ghost = crypto.randomUUID();
  const wrongSecret = `wrong-secret-${crypto.randomUUID()}`;
  suite.scanner.addSecret("wrong JWT secret", wrongSecret);
  const claims = { sub: user.id };
  const token = async (t: Promise<string>) => {
    const value = await t;
    suite.scanner.addSecret(`attack token ${cases.length}`, value, value.split(".")[0] + ".");
    return `Bearer ${value}`;
  };
  cases.push(
    { name: "no header", authorization: () => Promise.resolve(undefined) },
    { name: "garbage", authorization: () => Promise.resolve("Bearer not.a.jwt-at-all") },
    { name: "not bearer", authorization: () => Promise.resolve(`Basic ${btoa("user:pass")}`) },
    {
      name: "alg none",
      authorization: () =>
        Promise.resolve(
          `Bearer ${base64url({ alg: "none", typ: "JWT" })}.${
            base64url({ sub: user.id, role: "authenticated", aud: "authenticated", exp: now + 600 })
          }.`,
        ),
    },
    {
      name: "HS256 wrong secret",
      authorization: () => token(suite.sign(claims, { secret: wrongSecret })),
    },
    { name: "expired", authorization: () => token(suite.sign(claims, { expiresIn: now - 60 })) },
    {
      name: "nbf in the future",
      authorization: () => token(suite.sign({ ...claims, nbf: now + 3600 })),
    },
    {
      name: "iat in the future",
      authorization: () =>
        token(suite.sign(claims, { issuedAt: now + 3600, expiresIn: now + 7200 })),
    },
    {
      name: "wrong aud",
      authorization: () => token(suite.sign({ ...claims, aud: "other-project" })),
    },
    { name: "anon key", authorization: () => Promise.resolve(`Bearer ${suite.stack.anonKey}`) },
    {
      name: "service role key",
      authorization: () => Promise.resolve(`Bearer ${suite.stack.serviceRoleKey}`),
    },
    { name: "no sub", authorization: () => token(suite.sign({ email: "nosub@test.local" })) },
    { name: "user does not exist", authorization: () => token(suite.sign({ sub: ghost })) },
    {
      name: "sub not a uuid",
      authorization: () => token(suite.sign({ sub: "' or 1=1 --" })),
    },
  );
  assert(suite.functions.length > 0, "no functions declared in supabase/config.toml");
});

steps.test("every declared function answers 401 UNAUTHORIZED to every attack token", async () => {
  const failures: string[] = [];
  for (const fn of suite.functions) {
    let routes = 0;
    let tried = 0;
    let serverErrors = 0;
    for (const probe of probeRequests(fn.name)) {
      const path = `/functions/v1/${fn.name}${probe.sub}`;
      const action = probe.body
        ? (JSON.parse(probe.body) as { action?: string }).action
        : undefined;
      assert(!PUBLIC_ACTIONS[fn.name]?.includes(action ?? ""), "a public action in the matrix");
      const valid = await suite.send(path, {
        method: probe.method,
        headers: jsonHeaders(user.authorization),
        body: probe.body,
      });
      const isRoute = !(valid.status === 404 && isEnvelope(valid.json) &&
        valid.json.error.code === "NOT_FOUND");
      if (isRoute) routes++;
      for (const attack of cases) {
        const answer = await suite.send(path, {
          method: probe.method,
          headers: jsonHeaders(await attack.authorization()),
          body: probe.body,
        });
        tried++;
        if (answer.status >= 500) serverErrors++;
        const code = isEnvelope(answer.json) ? answer.json.error.code : null;
        const ok = (answer.status === 401 && code === "UNAUTHORIZED") ||
          (!isRoute && answer.status === 404 && code === "NOT_FOUND");
        if (!ok) {
          failures.push(
            `${probe.method} ${fn.name}${probe.sub} [${attack.name}] -> ${answer.status} ${
              answer.text.slice(0, 120)
            }`,
          );
        }
      }
    }
    recordCases(fn.name, tried, serverErrors);
    if (routes === 0) {
      failures.push(`${fn.name}: no path answered a valid user; nothing was tested`);
    }
  }
  assertEquals(failures, []);
});

steps.test("jwt matrix leaks no token or secret in logs or responses", async () => {
  await suite.close();
  suite.scanner.record();
  assertEquals(suite.scanner.leaks(), []);
  assert(suite.scanner.scanned() > 0);
});
