/**
 * sharingApi against a real supabase-js client and a real HTTP fake of flows, llm-config and
 * credentials-manager: the paths, methods and bodies it sends, and the messages its errors carry.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { CredentialsError } from "../../src/lib/credentialsApi.ts";
import * as api from "../../src/lib/sharingApi.ts";
import { type FakeSharingServer, startFakeSharingServer, TEAMMATE_ID } from "./fakeSharingServer.ts";

let server: FakeSharingServer;

beforeAll(async () => {
  server = await startFakeSharingServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

async function rejection(promise: Promise<unknown>): Promise<CredentialsError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(CredentialsError);
    return error as CredentialsError;
  }
  throw new Error("the call did not fail");
}

const calls = () => server.calls.map((c) => `${c.method} ${c.path}`);

describe("sharingApi", () => {
  test("sharingApi does send llm-config sub-paths and methods through functions.invoke", async () => {
    const client = server.client();
    expect(await api.listSharedKeys(client)).toEqual([]);
    const created = await api.createSharedKey(client, {
      account_name: "team-openai",
      display_name: "Team OpenAI",
      provider: "openai",
      api_key: "sk-team-secret-0042",
      allowed_user_ids: [TEAMMATE_ID],
      per_user_daily_limit: 20,
    });
    expect(created.last_four).toBe("0042");
    expect(JSON.stringify(created)).not.toContain("sk-team-secret");
    await api.updateSharedKeyAccess(client, "team-openai", { is_public: true });
    await api.updateSharedKeyLimits(client, "team-openai", { daily_limit: null, per_user_daily_limit: 5 });
    await api.replaceSharedKey(client, created, "sk-team-secret-0043");
    expect(await api.sharedKeyUsage(client, "team-openai", 7)).toEqual([]);
    await api.getMyConfig(client);
    await api.chooseSharedKey(client, "team-openai");
    await api.choosePersonalKeys(client, "gemini");
    await api.deleteSharedKey(client, "team-openai");

    expect(calls()).toEqual([
      "GET /functions/v1/llm-config/shared-keys",
      "POST /functions/v1/llm-config/shared-keys",
      "POST /functions/v1/llm-config/shared-keys/team-openai/access",
      "POST /functions/v1/llm-config/shared-keys/team-openai/limits",
      "POST /functions/v1/llm-config/shared-keys/team-openai/key",
      "GET /functions/v1/llm-config/shared-keys/team-openai/usage?days=7",
      "GET /functions/v1/llm-config/me",
      "POST /functions/v1/llm-config/save",
      "POST /functions/v1/llm-config/save",
      "DELETE /functions/v1/llm-config/shared-keys/team-openai",
    ]);
    expect(server.calls[0].body).toBeNull();
    expect(server.calls[3].body).toEqual({ daily_limit: null, per_user_daily_limit: 5 });
    expect(server.calls[7].body).toEqual({ use_shared_key: true, shared_key_account_name: "team-openai" });
    expect(server.calls[8].body).toEqual({ provider: "gemini", model: null });
  });

  test("sharingApi does set token limits, keep a limit left out and clear one sent as null", async () => {
    const client = server.client();
    const created = await api.createSharedKey(client, {
      account_name: "team-tokens",
      display_name: "Team tokens",
      provider: "openai",
      api_key: "sk-team-secret-0044",
      per_user_daily_limit: 20,
      daily_token_limit: 1_000_000_000,
      per_user_daily_token_limit: 50_000,
    });
    expect([created.daily_token_limit, created.per_user_daily_token_limit]).toEqual([1_000_000_000, 50_000]);
    const updated = await api.updateSharedKeyLimits(client, "team-tokens", { per_user_daily_token_limit: null });
    expect(server.calls.at(-1)?.body).toEqual({ per_user_daily_token_limit: null });
    expect([updated.daily_limit, updated.per_user_daily_limit, updated.daily_token_limit, updated.per_user_daily_token_limit])
      .toEqual([null, 20, 1_000_000_000, null]);

    const refused = await rejection(api.updateSharedKeyLimits(client, "team-tokens", { daily_token_limit: 1_000_000_001 }));
    expect([refused.code, refused.message]).toEqual([
      "INVALID_REQUEST",
      "Invalid request: daily_token_limit: Too big: expected number to be <=1000000000",
    ]);
    expect((await api.listSharedKeys(client))[0].daily_token_limit).toBe(1_000_000_000);
  });

  test("sharingApi does publish, rotate and revoke flows through the flows function", async () => {
    const client = server.client();
    const flow = await api.createFlow(client, "Demo");
    const owner = await api.updateFlow(client, flow.id, { use_owner_keys: true, daily_limit: 50 });
    expect([owner.use_owner_keys, owner.daily_limit]).toEqual([true, 50]);
    const first = await api.publishFlow(client, flow.id);
    expect(first.share_token).toMatch(/^shr_/);
    const second = await api.rotateShareLink(client, flow.id);
    expect(second.share_token).not.toBe(first.share_token);
    expect(second.live_id).toBe(first.live_id);
    await api.revokeShareLink(client, flow.id);
    expect((await api.listFlows(client)).map((f) => f.name)).toEqual(["Demo"]);
    expect(server.calls.map((c) => c.body?.action)).toEqual([
      "create",
      "update",
      "publish",
      "rotate_token",
      "revoke_token",
      "list",
    ]);
    expect(server.calls.every((c) => c.method === "POST" && c.path === "/functions/v1/flows")).toBe(true);
  });

  test("sharingApi does put the share token in the link's fragment", () => {
    expect(api.shareLink("https://app.example.com/", "Ab-12_cd", "shr_token")).toBe(
      "https://app.example.com/live/Ab-12_cd#shr_token",
    );
  });

  test("sharingApi does refuse a badly formatted shared key without sending it", async () => {
    const client = server.client();
    const error = await rejection(
      api.createSharedKey(client, { account_name: "team", display_name: "T", provider: "openai", api_key: "pk-not-openai" }),
    );
    expect(error.code).toBe("INVALID_FORMAT");
    expect(error.message).toBe('OpenAI keys start with "sk-".');
    const replace = await rejection(api.replaceSharedKey(client, { account_name: "team", provider: "anthropic" }, "sk-wrong1234"));
    expect(replace.code).toBe("INVALID_FORMAT");
    expect(server.calls).toEqual([]);
  });

  test("sharingApi does turn sharing error codes into friendly messages", async () => {
    const client = server.client();
    const expected: Record<string, RegExp> = {
      OWNER_KEYS_NOT_ENABLED: /owner can turn on owner-funded/,
      SHARED_KEY_ACCESS_DENIED: /allow-list/,
      SHARED_KEY_LIMIT_EXCEEDED: /daily limit/,
      SHARED_KEY_NOT_FOUND: /No shared key has that account name/,
      OWNER_NAME_SHARING_DISABLED: /owner name is turned off/,
      SHARE_TOKEN_INVALID: /share link no longer works/,
      RATE_LIMITED: /Too many runs/,
      DAILY_QUOTA_EXCEEDED: /daily run limit/,
    };
    for (const [code, message] of Object.entries(expected)) {
      server.failNext(code === "RATE_LIMITED" || code === "SHARED_KEY_LIMIT_EXCEEDED" ? 429 : 403, {
        code,
        message: "server wording",
        recoverable: false,
      });
      const error = await rejection(api.chooseSharedKey(client, "team-openai"));
      expect(error.code).toBe(code);
      expect(error.message).toMatch(message);
    }
    server.failNext(401, { code: "UNAUTHORIZED", message: "x", recoverable: false });
    expect((await rejection(api.listFlows(client))).message).toBe("Your session has expired. Sign in again to manage your keys.");
  });

  test("sharingApi does read the audit trail with the credentials-manager events action", async () => {
    server.events.push({ id: 1, created_at: new Date().toISOString(), actor_id: null, service: "openai", event: "set", via: null, detail: {} });
    const events = await api.listCredentialEvents(server.client(), 25);
    expect(events.map((e) => e.event)).toEqual(["set"]);
    expect(server.calls[0]).toEqual({
      method: "POST",
      path: "/functions/v1/credentials-manager",
      body: { action: "events", limit: 25 },
    });
  });
});
