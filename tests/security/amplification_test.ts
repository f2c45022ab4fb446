/**
 * Shared-key limits count what the owner pays for: each upstream call. One batch-embeddings
 * request with chunk_size 1 and 500 inputs is 500 uses, refused whole on a key limited to 1 a day
 * (not one of them reaches the provider), and counted in full when it fits.
 */
import { createHandler as createBatch } from "../../supabase/functions/batch-embeddings/handler.ts";
import { createHandler as createProxy } from "../../supabase/functions/openai-proxy/handler.ts";
import {
  createSharedKey,
  saveConfig,
} from "../../supabase/functions/_shared/sharing/llmConfigStore.ts";
import { assertEquals } from "../support/assert.ts";
import { DATABASE_KIND, openTestDatabase } from "../support/database.ts";
import { startFakeChatUpstream } from "../support/fakeChatUpstream.ts";
import { jsonRequest, newUser, testRuntime, type TestUser } from "../support/runtime.ts";
import { recordAttacks } from "./figures.ts";

const db = await openTestDatabase();
const fake = startFakeChatUpstream();
const rt = testRuntime(db, { env: { OPENAI_BASE_URL: fake.baseUrl } });
const asDb = (user: TestUser) => ({ id: user.id, claims: { sub: user.id, role: "authenticated" } });

async function memberOfSharedKey(limits: { daily_limit: number; per_user_daily_limit: number }) {
  const owner = await newUser(db);
  const member = await newUser(db);
  const account = `amp-${crypto.randomUUID().slice(0, 8)}`;
  await createSharedKey(db, asDb(owner), rt.config, {
    account_name: account,
    display_name: "Amplified",
    provider: "openai",
    model: null,
    api_key: `sk-amplified-${crypto.randomUUID()}`,
    is_public: false,
    allowed_user_ids: [member.id],
    ...limits,
  });
  await saveConfig(db, asDb(member), {
    use_shared_key: true,
    shared_key_account_name: account,
    use_owner_name: false,
    key_owner_name: null,
    provider: "openai",
    model: null,
    base_url: null,
    region: null,
    deployment: null,
    extra_headers: null,
    response_format: "auto",
    daily_limit: null,
  });
  return { member, account };
}

async function used(account: string): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    `select coalesce(sum(u.requests), 0)::int as n from public.shared_key_usage as u
       join public.shared_keys as k on k.id = u.shared_key_id where k.account_name = $1`,
    [account],
  );
  return row.n;
}

const batch = (member: TestUser, inputs: number) =>
  createBatch(rt)(
    jsonRequest("http://local/batch-embeddings", {
      inputs: Array.from({ length: inputs }, (_, i) => `input ${i}`),
      chunk_size: 1,
    }, member.authorization),
  );

Deno.test(`shared-key limits count upstream calls (${DATABASE_KIND})`, async (t) => {
  try {
    await t.step(
      "500 chunks on a key limited to 1 a day: refused whole, no upstream call",
      async () => {
        const { member, account } = await memberOfSharedKey({
          daily_limit: 1,
          per_user_daily_limit: 1,
        });
        const before = fake.requests.length;
        const response = await batch(member, 500);
        const body = await response.json();
        assertEquals([response.status, body.error?.code], [429, "SHARED_KEY_LIMIT_EXCEEDED"]);
        const calls = fake.requests.length - before;
        recordAttacks("amplification", 500, calls);
        assertEquals(calls, 0);
        assertEquals(await used(account), 0);
      },
    );

    await t.step(
      "a batch that fits is counted call by call, and the next one is refused",
      async () => {
        const { member, account } = await memberOfSharedKey({
          daily_limit: 10,
          per_user_daily_limit: 10,
        });
        const before = fake.requests.length;
        const fits = await batch(member, 6);
        assertEquals(fits.status, 200);
        await fits.body?.cancel();
        assertEquals(fake.requests.length - before, 6);
        assertEquals(await used(account), 6);
        const over = await batch(member, 5);
        assertEquals(over.status, 429);
        await over.body?.cancel();
        // One proxied call still fits, and is one use.
        const one = await createProxy(rt)(
          jsonRequest("http://local/openai-proxy/v1/embeddings", {
            model: "text-embedding-3-small",
            input: "x",
          }, member.authorization),
        );
        assertEquals(one.status, 200);
        await one.body?.cancel();
        assertEquals(await used(account), 7);
        recordAttacks("amplification", 5, fake.requests.length - before - 7);
        assertEquals(fake.requests.length - before, 7);
      },
    );
  } finally {
    await fake.close();
    await db.close();
  }
});
