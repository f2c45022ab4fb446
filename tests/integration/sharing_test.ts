/**
 * Sharing with consent, end to end through the local stack: owner-funded `execute`, team shared
 * keys and owner-name mode through the proxy, and llm-config. The fake upstream records which
 * key every request carried.
 */
import OpenAI from "openai";
import { assert, assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { FAKE_USAGE, type FakeUpstream, startFakeUpstream } from "../support/fakeUpstream.ts";
import { usageRecorderFor } from "../../supabase/functions/_shared/upstream/usageRecorder.ts";
import { signInDevUser } from "../support/devAuth.ts";
import { integrationSuite } from "../support/suite.ts";
import { openLocalStack } from "../support/localStack.ts";
import type { Database } from "../../supabase/functions/_shared/core/db.ts";
import type { LocalStack } from "../../local/stack.ts";

let db: Database;
let fake: FakeUpstream;
let stack: LocalStack;
let ownerNameStack: LocalStack;
const suite = integrationSuite("sharing", {
  async setup(onTeardown) {
    db = await openTestDatabase();
    onTeardown(() => db.close());
    fake = startFakeUpstream();
    onTeardown(() => fake.close());
    const stackEnv = {
      OPENAI_BASE_URL: fake.baseUrl,
      OPENAI_API_KEY: "sk-global-must-never-be-used",
    };
    stack = await openLocalStack(onTeardown, {
      db,
      env: stackEnv,
    });
    ownerNameStack = await openLocalStack(onTeardown, {
      db,
      env: { ...stackEnv, ALLOW_OWNER_NAME_SHARING: "true" },
    });
  },
});

interface Person {
  id: string;
  email: string;
  token: string;
}

const signIn = (url = stack.url): Promise<Person> => signInDevUser(url);

async function call(
  person: Person,
  path: string,
  body?: unknown,
  method = "POST",
  base = stack.functionsUrl,
) {
  const response = await fetch(`${base}/${path}`, {
    method,
    headers: {
      authorization: `Bearer ${person.token}`,
      "content-type": "application/json",
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    text,
    json: text ? JSON.parse(text) : null,
  };
}

async function storeKey(person: Person, value: string) {
  fake.validKeys.add(value);
  const result = await call(person, "credentials-manager", {
    action: "set",
    service: "openai",
    value,
  });
  assertEquals(result.status, 200);
}

async function publish(owner: Person, settings: Record<string, unknown>) {
  const created = await call(owner, "flows", {
    action: "create",
    name: "shared flow",
    ...settings,
  });
  const published = await call(owner, "flows", {
    action: "publish",
    flow_id: created.json.flow.id,
  });
  return {
    flowId: created.json.flow.id as string,
    token: published.json.share_token as string,
  };
}

const chat = {
  model: "gpt-test",
  messages: [{ role: "user" as const, content: "hi" }],
};

/** One model call of a shared flow's run through `execute` (a new run unless `runId` is given). */
function execute(
  person: Person,
  shareToken: string,
  runId: string = crypto.randomUUID(),
) {
  return call(person, "execute", { shareToken, runId, request: chat });
}

function keysSeenSince(mark: number): string[] {
  return fake.requests.slice(mark).map((r) => fake.keyOf(r) ?? "");
}

suite.test(
  `execute runs the owner's own flow on the owner's key (flow case 1, ${DATABASE_KIND})`,
  async () => {
    const owner = await signIn();
    const ownerKey = `sk-owner-${crypto.randomUUID()}`;
    await storeKey(owner, ownerKey);
    const { token } = await publish(owner, { use_owner_keys: false });
    const mark = fake.requests.length;
    const result = await execute(owner, token);
    assertEquals(result.status, 200);
    assertEquals(result.headers.get("x-key-source"), "user");
    assertEquals(keysSeenSince(mark), [ownerKey]);
  },
);

suite.test(
  "execute runs a collaborator on the owner's key when use_owner_keys is on (flow case 2)",
  async () => {
    const owner = await signIn();
    const collaborator = await signIn();
    const ownerKey = `sk-owner-${crypto.randomUUID()}`;
    await storeKey(owner, ownerKey);
    await storeKey(collaborator, `sk-collab-${crypto.randomUUID()}`);
    const { token } = await publish(owner, {
      use_owner_keys: true,
      per_minute_limit: 5,
    });
    const mark = fake.requests.length;
    const result = await execute(collaborator, token);
    assertEquals(result.status, 200);
    assertEquals(result.headers.get("x-key-source"), "owner");
    assertEquals(result.headers.get("x-ratelimit-remaining-minute"), "4");
    assertEquals(result.headers.get("x-ratelimit-remaining-day"), "99");
    assertEquals(keysSeenSince(mark), [ownerKey]);
    assert(!result.text.includes(ownerKey) && !result.text.includes(token));
  },
);

suite.test(
  "execute refuses a shareToken when use_owner_keys is off, whatever the client claims (flow case 3)",
  async () => {
    const owner = await signIn();
    const collaborator = await signIn();
    await storeKey(owner, `sk-owner-${crypto.randomUUID()}`);
    const { token } = await publish(owner, { use_owner_keys: false });
    const mark = fake.requests.length;
    for (
      const extra of [{}, { useOwnerKeys: true }, { use_owner_keys: true }]
    ) {
      const result = await call(collaborator, "execute", {
        shareToken: token,
        runId: crypto.randomUUID(),
        request: chat,
        ...extra,
      });
      assert([400, 403].includes(result.status), JSON.stringify(extra));
      if (Object.keys(extra).length === 0) {
        assertEquals(result.json.error.code, "OWNER_KEYS_NOT_ENABLED");
      }
    }
    assertEquals(fake.requests.length, mark, "nothing reached the provider");
  },
);

suite.test("execute refuses a body that carries API keys", async () => {
  const owner = await signIn();
  const { token } = await publish(owner, { use_owner_keys: true });
  for (
    const extra of [{ apiKeys: { openai: "sk-x" } }, {
      request: { ...chat, api_key: "sk-y" },
    }]
  ) {
    const result = await call(owner, "execute", {
      shareToken: token,
      runId: crypto.randomUUID(),
      request: chat,
      ...extra,
    });
    assertEquals(result.status, 400);
    assertEquals(result.json.error.code, "INVALID_REQUEST");
    assert(!result.text.includes("sk-x") && !result.text.includes("sk-y"));
  }
});

suite.test(
  "execute answers 429 RATE_LIMITED with Retry-After, then counts one run's parallel nodes once",
  async () => {
    const owner = await signIn();
    const collaborator = await signIn();
    await storeKey(owner, `sk-owner-${crypto.randomUUID()}`);
    const { token } = await publish(owner, {
      use_owner_keys: true,
      per_minute_limit: 2,
    });
    const runId = crypto.randomUUID();
    const parallel = await Promise.all(
      Array.from(
        { length: 5 },
        () => execute(collaborator, token, runId),
      ),
    );
    assert(
      parallel.every((r) => r.status === 200),
      "parallel nodes of one run all pass",
    );
    assertEquals(
      (await execute(collaborator, token)).status,
      200,
    );
    const limited = await execute(collaborator, token);
    assertEquals(limited.status, 429);
    assertEquals(limited.json.error.code, "RATE_LIMITED");
    assert(Number(limited.headers.get("retry-after")) >= 1);
  },
);

suite.test("execute answers 403 DAILY_QUOTA_EXCEEDED past the daily limit", async () => {
  const owner = await signIn();
  const collaborator = await signIn();
  await storeKey(owner, `sk-owner-${crypto.randomUUID()}`);
  const { token } = await publish(owner, { use_owner_keys: true, daily_limit: 1 });
  assertEquals(
    (await execute(collaborator, token)).status,
    200,
  );
  const over = await execute(collaborator, token);
  assertEquals(over.status, 403);
  assertEquals(over.json.error.code, "DAILY_QUOTA_EXCEEDED");
});

suite.test("execute streams through the owner's key", async () => {
  const owner = await signIn();
  const collaborator = await signIn();
  await storeKey(owner, `sk-owner-${crypto.randomUUID()}`);
  const { token } = await publish(owner, { use_owner_keys: true });
  const response = await fetch(`${stack.functionsUrl}/execute`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${collaborator.token}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({
      shareToken: token,
      runId: crypto.randomUUID(),
      request: { ...chat, stream: true },
    }),
  });
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("x-key-source"), "owner");
  assertEquals(response.headers.get("content-type"), "text/event-stream");
  const text = await response.text();
  assert(
    text.includes("data: ") && text.trimEnd().endsWith("data: [DONE]"),
    text.slice(0, 200),
  );
});

async function createSharedKey(
  owner: Person,
  settings: Record<string, unknown>,
) {
  const accountName = `team-${crypto.randomUUID().slice(0, 8)}`;
  const apiKey = `sk-shared-${crypto.randomUUID()}`;
  fake.validKeys.add(apiKey);
  const created = await call(owner, "llm-config/shared-keys", {
    account_name: accountName,
    display_name: "Team OpenAI",
    provider: "openai",
    model: "gpt-test",
    api_key: apiKey,
    ...settings,
  });
  assertEquals(created.status, 201, created.text);
  assert(!created.text.includes(apiKey));
  return { accountName, apiKey };
}

function sdkFor(person: Person, url = stack.functionsUrl) {
  return new OpenAI({
    baseURL: `${url}/openai-proxy/v1`,
    apiKey: person.token,
    maxRetries: 0,
  });
}

suite.test(
  "shared keys serve allow-listed users through the proxy and refuse everyone else",
  async () => {
    const owner = await signIn();
    const member = await signIn();
    const outsider = await signIn();
    const { accountName, apiKey } = await createSharedKey(owner, {
      allowed_user_ids: [member.id],
    });

    const denied = await call(outsider, "llm-config/save", {
      use_shared_key: true,
      shared_key_account_name: accountName,
    });
    // Forbidden and unknown names get the same answer: account names cannot be enumerated.
    const unknown = await call(outsider, "llm-config/save", {
      use_shared_key: true,
      shared_key_account_name: `no-such-${crypto.randomUUID().slice(0, 8)}`,
    });
    assertEquals([denied.status, denied.json], [404, unknown.json]);
    assertEquals(denied.json.error.code, "SHARED_KEY_NOT_FOUND");

    const saved = await call(member, "llm-config/save", {
      use_shared_key: true,
      shared_key_account_name: accountName,
    });
    assertEquals(saved.status, 200, saved.text);
    const mark = fake.requests.length;
    const completion = await sdkFor(member).chat.completions.create(chat)
      .withResponse();
    assertEquals(completion.response.headers.get("x-key-source"), "shared");
    assertEquals(keysSeenSince(mark), [apiKey]);

    // The owner takes the member off the list: the very next request is refused, no fallback.
    await call(owner, `llm-config/shared-keys/${accountName}/access`, {
      allowed_user_ids: [],
    });
    const error = await sdkFor(member).chat.completions.create(chat).catch((
      e,
    ) => e);
    assertEquals(error.status, 404);
    assertEquals(error.code, "SHARED_KEY_NOT_FOUND");
    assertEquals(fake.requests.length, mark + 1);
  },
);

suite.test(
  "shared keys keep the per-user daily limit exact under concurrency, and the owner sees usage per user",
  async () => {
    const owner = await signIn();
    const member = await signIn();
    const { accountName } = await createSharedKey(owner, {
      is_public: true,
      per_user_daily_limit: 5,
    });
    await call(member, "llm-config/save", {
      use_shared_key: true,
      shared_key_account_name: accountName,
    });
    const outcomes = await Promise.all(
      Array.from(
        { length: 20 },
        () =>
          sdkFor(member).chat.completions.create(chat).then(
            () => "ok",
            (e) => e.code,
          ),
      ),
    );
    assertEquals(outcomes.filter((o) => o === "ok").length, 5);
    assertEquals(
      outcomes.filter((o) => o === "SHARED_KEY_LIMIT_EXCEEDED").length,
      15,
    );

    const usage = await call(
      owner,
      `llm-config/shared-keys/${accountName}/usage`,
      undefined,
      "GET",
    );
    assertEquals(usage.json.usage.length, 1);
    assertEquals(usage.json.usage[0].user_id, member.id);
    assertEquals(usage.json.usage[0].requests, 5);
    const me = await call(member, "llm-config/me", undefined, "GET");
    assertEquals(me.json.use_shared_key, true);
    assertEquals(me.json.shared_key_display_name, "Team OpenAI");
    assertEquals(me.json.usage_today, 5);
    assertEquals(me.json.daily_limit, 5);
    const notOwner = await call(
      member,
      `llm-config/shared-keys/${accountName}/usage`,
      undefined,
      "GET",
    );
    assertEquals(notOwner.json.usage, []);
  },
);

suite.test("shared keys' total daily limit holds across users", async () => {
  const owner = await signIn();
  const members = await Promise.all([signIn(), signIn(), signIn()]);
  const { accountName } = await createSharedKey(owner, {
    is_public: true,
    daily_limit: 4,
  });
  for (const member of members) {
    await call(member, "llm-config/save", {
      use_shared_key: true,
      shared_key_account_name: accountName,
    });
  }
  const outcomes = await Promise.all(
    members.flatMap((m) =>
      Array.from(
        { length: 4 },
        () =>
          sdkFor(m).chat.completions.create(chat).then(
            () => "ok",
            (e) => e.code,
          ),
      )
    ),
  );
  assertEquals(outcomes.filter((o) => o === "ok").length, 4);
});

suite.test("owner-name mode is off by default with 403 OWNER_NAME_SHARING_DISABLED", async () => {
  const user = await signIn();
  const result = await call(user, "llm-config/save", {
    use_owner_name: true,
    key_owner_name: "test-openai",
    provider: "openai",
    api_key: "sk-owner-name-123456",
  });
  assertEquals(result.status, 403);
  assertEquals(result.json.error.code, "OWNER_NAME_SHARING_DISABLED");
});

suite.test(
  "owner-name mode, when turned on, gives two users with the same owner name the same key",
  async () => {
    const base = ownerNameStack.functionsUrl;
    const alice = await signIn(ownerNameStack.url);
    const bob = await signIn(ownerNameStack.url);
    const ownerName = `team-${crypto.randomUUID().slice(0, 8)}`;
    const sharedKey = `sk-ownername-${crypto.randomUUID()}`;
    fake.validKeys.add(sharedKey);
    const first = await call(
      alice,
      "llm-config/save",
      {
        use_owner_name: true,
        key_owner_name: ownerName,
        provider: "openai",
        model: "gpt-test",
        api_key: sharedKey,
      },
      "POST",
      base,
    );
    assertEquals(first.status, 200, first.text);
    const second = await call(
      bob,
      "llm-config/save",
      { use_owner_name: true, key_owner_name: ownerName, provider: "openai" },
      "POST",
      base,
    );
    assertEquals(second.status, 200);
    const mark = fake.requests.length;
    await sdkFor(alice, base).chat.completions.create(chat);
    const response = await sdkFor(bob, base).chat.completions.create(chat)
      .withResponse();
    assertEquals(response.response.headers.get("x-key-source"), "shared");
    assertEquals(keysSeenSince(mark), [sharedKey, sharedKey]);
    const me = await call(bob, "llm-config/me", undefined, "GET", base);
    assertEquals(me.json.key_owner_name, ownerName);
    assertEquals(me.json.key_last_four, sharedKey.slice(-4));
  },
);

suite.test("llm-config personal mode stores the key in the user's own vault", async () => {
  const user = await signIn();
  const key = `sk-personal-${crypto.randomUUID()}`;
  fake.validKeys.add(key);
  const saved = await call(user, "llm-config/save", {
    provider: "openai",
    model: "gpt-test",
    api_key: key,
  });
  assertEquals(saved.status, 200, saved.text);
  const me = await call(user, "llm-config/me", undefined, "GET");
  assertEquals(me.json.provider, "openai");
  assertEquals(me.json.key_last_four, key.slice(-4));
  assertEquals(me.json.use_shared_key, false);
  const mark = fake.requests.length;
  const response = await sdkFor(user).chat.completions.create(chat).withResponse();
  assertEquals(response.response.headers.get("x-key-source"), "user");
  assertEquals(keysSeenSince(mark), [key]);
});

suite.test(
  "the audit trail shows owners the events on their keys and nothing of anyone else's",
  async () => {
    const owner = await signIn();
    const member = await signIn();
    await storeKey(owner, `sk-audit-${crypto.randomUUID()}`);
    await call(owner, "credentials-manager", {
      action: "validate",
      service: "openai",
    });
    const { accountName } = await createSharedKey(owner, {
      allowed_user_ids: [member.id],
    });
    await call(member, "llm-config/save", {
      use_shared_key: true,
      shared_key_account_name: accountName,
    });
    await sdkFor(member).chat.completions.create(chat);
    const events = await call(owner, "credentials-manager", {
      action: "events",
    });
    const kinds = events.json.events.map((e: { event: string }) => e.event);
    for (const kind of ["set", "validate", "use_shared_key"]) {
      assert(kinds.includes(kind), kind);
    }
    const use = events.json.events.find((e: { event: string }) => e.event === "use_shared_key");
    assertEquals(use.actor_id, member.id);
    const memberEvents = await call(member, "credentials-manager", {
      action: "events",
    });
    assertEquals(memberEvents.json.events, []);
  },
);

suite.test(
  "shared keys take teammates by email, resolved on the server, and show emails back to the owner",
  async () => {
    const owner = await signIn();
    const member = await signIn();
    const stranger = await signIn();
    const unknown = await call(owner, "llm-config/shared-keys", {
      account_name: `team-${crypto.randomUUID().slice(0, 8)}`,
      display_name: "Nobody's",
      provider: "openai",
      api_key: "sk-never-stored-12345",
      allowed_emails: ["no-such-person@dev.test"],
    });
    assertEquals(unknown.status, 400);
    assertEquals(unknown.json.error.code, "INVALID_REQUEST");
    assertEquals(
      (await call(owner, "llm-config/shared-keys", undefined, "GET")).json
        .shared_keys,
      [],
    );

    const { accountName } = await createSharedKey(owner, {
      allowed_emails: [member.email.toUpperCase()],
    });
    const listed = await call(
      owner,
      "llm-config/shared-keys",
      undefined,
      "GET",
    );
    const key = listed.json.shared_keys[0];
    assertEquals(key.allowed_user_ids, [member.id]);
    assertEquals(key.allowed_users, [{ id: member.id, email: member.email }]);
    assert(
      !listed.text.includes(stranger.email),
      "an unrelated user's email was listed",
    );

    const saved = await call(member, "llm-config/save", {
      use_shared_key: true,
      shared_key_account_name: accountName,
    });
    assertEquals(saved.status, 200, saved.text);
    await sdkFor(member).chat.completions.create(chat);
    const usage = await call(
      owner,
      `llm-config/shared-keys/${accountName}/usage`,
      undefined,
      "GET",
    );
    assertEquals(usage.json.usage[0].email, member.email);

    const access = await call(
      owner,
      `llm-config/shared-keys/${accountName}/access`,
      {
        allowed_user_ids: [],
        allowed_emails: [stranger.email],
      },
    );
    assertEquals(access.json.shared_key.allowed_users, [{
      id: stranger.id,
      email: stranger.email,
    }]);

    // The member's use of the owner's key is in the owner's audit trail, with the member's email.
    await storeKey(owner, `sk-owner-own-${crypto.randomUUID()}`);
    const events = await call(owner, "credentials-manager", {
      action: "events",
    });
    const set = events.json.events.find((e: { event: string }) => e.event === "set");
    assertEquals(set.actor_email, owner.email);
  },
);

/** Members who chose the shared key `accountName`. */
async function membersOf(
  accountName: string,
  count: number,
): Promise<Person[]> {
  const members = await Promise.all(
    Array.from({ length: count }, () => signIn()),
  );
  for (const member of members) {
    const saved = await call(member, "llm-config/save", {
      use_shared_key: true,
      shared_key_account_name: accountName,
    });
    assertEquals(saved.status, 200, saved.text);
  }
  return members;
}

/** One chat call through the proxy: "ok", or the error code it was refused with. */
const chatOutcome = (person: Person) =>
  sdkFor(person).chat.completions.create(chat).then(
    () => "ok",
    (e) => `${e.status} ${e.code}`,
  );

suite.test(
  "a shared key's daily token limit refuses the next call once an answer's tokens reached it",
  async () => {
    const owner = await signIn();
    const { accountName } = await createSharedKey(owner, {
      is_public: true,
      daily_token_limit: FAKE_USAGE.total_tokens,
    });
    const [first, second] = await membersOf(accountName, 2);
    const mark = fake.requests.length;
    // Tokens are known only after the answer: the call that reaches the limit is served.
    assertEquals(await chatOutcome(first), "ok");
    await usageRecorderFor(db).flush();
    assertEquals(await chatOutcome(first), "429 SHARED_KEY_LIMIT_EXCEEDED");
    assertEquals(await chatOutcome(second), "429 SHARED_KEY_LIMIT_EXCEEDED");
    assertEquals(
      fake.requests.length,
      mark + 1,
      "a refused call reached the provider",
    );

    const usage = await call(
      owner,
      `llm-config/shared-keys/${accountName}/usage`,
      undefined,
      "GET",
    );
    assertEquals(
      usage.json.usage.map((
        row: { user_id: string; requests: number; tokens: number },
      ) => [
        row.user_id,
        row.requests,
        row.tokens,
      ]),
      [[first.id, 1, FAKE_USAGE.total_tokens]],
    );
    const events = await call(owner, "credentials-manager", {
      action: "events",
    });
    assert(
      events.json.events.some((
        e: { event: string; detail: { reason?: string } },
      ) => e.event === "denied" && e.detail?.reason === "token_limit_exceeded"),
      "the token-limit refusal is not in the owner's audit trail",
    );

    // The owner lifts the limit: the very next call is served again.
    const lifted = await call(
      owner,
      `llm-config/shared-keys/${accountName}/limits`,
      {
        daily_token_limit: null,
      },
    );
    assertEquals(lifted.json.shared_key.daily_token_limit, null);
    assertEquals(await chatOutcome(second), "ok");
  },
);

suite.test(
  "a shared key's per-user token limit refuses one grantee and still serves the other (streamed usage)",
  async () => {
    const owner = await signIn();
    const { accountName } = await createSharedKey(owner, {
      is_public: true,
      per_user_daily_token_limit: FAKE_USAGE.total_tokens,
    });
    const [heavy, light] = await membersOf(accountName, 2);
    const mark = fake.requests.length;
    // A stream's tokens come from its final usage chunk.
    const stream = await sdkFor(heavy).chat.completions.create({
      ...chat,
      stream: true,
      stream_options: { include_usage: true },
    });
    let reported = 0;
    for await (const chunk of stream) {
      reported = chunk.usage?.total_tokens ?? reported;
    }
    assertEquals(reported, FAKE_USAGE.total_tokens);
    await usageRecorderFor(db).flush();
    assertEquals(await chatOutcome(heavy), "429 SHARED_KEY_LIMIT_EXCEEDED");
    assertEquals(
      fake.requests.length,
      mark + 1,
      "the refused call reached the provider",
    );
    assertEquals(await chatOutcome(light), "ok");
    assertEquals(fake.requests.length, mark + 2);
  },
);

suite.test(
  "owners set and clear a shared key's token limits, within bounds",
  async () => {
    const owner = await signIn();
    const stranger = await signIn();
    const { accountName } = await createSharedKey(owner, {
      daily_token_limit: 1_000_000,
      per_user_daily_token_limit: 50_000,
    });
    const listed = await call(
      owner,
      "llm-config/shared-keys",
      undefined,
      "GET",
    );
    assertEquals(
      [
        listed.json.shared_keys[0].daily_token_limit,
        listed.json.shared_keys[0].per_user_daily_token_limit,
      ],
      [1_000_000, 50_000],
    );
    const limits = `llm-config/shared-keys/${accountName}/limits`;
    const changed = await call(owner, limits, {
      per_user_daily_token_limit: 2_000,
      daily_limit: 9,
    });
    assertEquals(changed.status, 200, changed.text);
    const key = changed.json.shared_key;
    assertEquals(
      [key.daily_token_limit, key.per_user_daily_token_limit, key.daily_limit],
      [1_000_000, 2_000, 9],
    );
    const cleared = await call(owner, limits, {
      daily_token_limit: null,
      per_user_daily_token_limit: null,
    });
    assertEquals(
      [
        cleared.json.shared_key.daily_token_limit,
        cleared.json.shared_key.per_user_daily_token_limit,
      ],
      [null, null],
    );
    assertEquals(cleared.json.shared_key.daily_limit, 9);
    for (const bad of [0, -5, 1.5, 1_000_000_001, "100"]) {
      const refused = await call(owner, limits, { daily_token_limit: bad });
      assertEquals([refused.status, refused.json.error.code], [
        400,
        "INVALID_REQUEST",
      ], String(bad));
    }
    const tooBig = await call(owner, "llm-config/shared-keys", {
      account_name: `team-${crypto.randomUUID().slice(0, 8)}`,
      display_name: "Too big",
      provider: "openai",
      api_key: "sk-never-stored-123456",
      per_user_daily_token_limit: 1_000_000_001,
    });
    assertEquals(tooBig.status, 400);
    const notOwner = await call(stranger, limits, { daily_token_limit: 1 });
    assertEquals([notOwner.status, notOwner.json.error.code], [
      404,
      "SHARED_KEY_NOT_FOUND",
    ]);
  },
);

suite.test(
  "llm-config answers 404 to an unknown path, 405 to a known path's other method, 400 to a bad account name",
  async () => {
    const owner = await signIn();
    const cases: [
      path: string,
      method: string,
      status: number,
      code: string,
    ][] = [
      ["llm-config", "GET", 404, "NOT_FOUND"],
      ["llm-config/nope", "GET", 404, "NOT_FOUND"],
      ["llm-config/constructor", "GET", 404, "NOT_FOUND"],
      ["llm-config/save/extra", "POST", 404, "NOT_FOUND"],
      ["llm-config/me/team-key/usage", "GET", 404, "NOT_FOUND"],
      ["llm-config/shared-keys/team-key/nope", "POST", 404, "NOT_FOUND"],
      ["llm-config/shared-keys/team-key/constructor", "GET", 404, "NOT_FOUND"],
      ["llm-config/shared-keys/team-key/usage/extra", "GET", 404, "NOT_FOUND"],
      ["llm-config/save", "GET", 405, "METHOD_NOT_ALLOWED"],
      ["llm-config/me", "POST", 405, "METHOD_NOT_ALLOWED"],
      ["llm-config/shared-keys", "PUT", 405, "METHOD_NOT_ALLOWED"],
      ["llm-config/shared-keys/team-key", "GET", 405, "METHOD_NOT_ALLOWED"],
      [
        "llm-config/shared-keys/team-key/access",
        "GET",
        405,
        "METHOD_NOT_ALLOWED",
      ],
      [
        "llm-config/shared-keys/team-key/usage",
        "POST",
        405,
        "METHOD_NOT_ALLOWED",
      ],
      ["llm-config/shared-keys/Bad%20Name", "DELETE", 400, "INVALID_REQUEST"],
      ["llm-config/shared-keys/Bad%20Name/nope", "GET", 400, "INVALID_REQUEST"],
      [
        "llm-config/shared-keys/no-such-key",
        "DELETE",
        404,
        "SHARED_KEY_NOT_FOUND",
      ],
      [
        "llm-config/shared-keys/no-such-key/limits",
        "POST",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
      ],
    ];
    for (const [path, method, status, code] of cases) {
      const response = await fetch(`${stack.functionsUrl}/${path}`, {
        method,
        headers: { authorization: `Bearer ${owner.token}` },
      });
      const body = await response.json();
      assertEquals([method, path, response.status, body.error?.code], [
        method,
        path,
        status,
        code,
      ]);
    }
    const me = await call(owner, "llm-config/me/", undefined, "GET");
    assertEquals(me.json, { use_shared_key: false, use_owner_name: false });
  },
);
