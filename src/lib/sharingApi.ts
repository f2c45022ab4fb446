/**
 * The sharing functions' wire contracts (flows, llm-config, credentials-manager `events`) and
 * one small call per action, all through `supabase.functions.invoke`. Failures reject with the
 * same CredentialsError (server code + friendly message) the key sections use. Share tokens and
 * keys only travel in request or response bodies: nothing here logs or stores them.
 */
import type { PanelClient } from "./panelClient.ts";
import type { CredentialEvent } from "../../supabase/functions/_shared/contract/keyStatus.ts";
import { apiKeyFormatProblem, type Service } from "../../supabase/functions/_shared/contract/providers.ts";
import { callCredentials, CredentialsError, toCredentialsError } from "./credentialsApi.ts";
import { friendlyMessage } from "./errorMessages.ts";

/** A flow as the flows function returns it (never its share token or the token's hash). */
export interface Flow {
  id: string;
  name: string;
  definition: Record<string, unknown>;
  live_id: string | null;
  use_owner_keys: boolean;
  per_minute_limit: number;
  daily_limit: number;
  daily_execution_count: number;
  daily_execution_reset: string | null;
  published: boolean;
  published_at: string | null;
  created_at: string;
  updated_at: string;
}

/** The settings an owner may change on a flow. */
export interface FlowSettings {
  name?: string;
  use_owner_keys?: boolean;
  per_minute_limit?: number;
  daily_limit?: number;
}

/** What publish and rotate answer: the share token is in this one answer and nowhere else. */
export interface PublishedLink {
  flow: Flow;
  live_id: string;
  share_token: string;
}

/** A team shared key as its owner sees it: never the key, only its last four. */
export interface SharedKey {
  account_name: string;
  display_name: string;
  provider: Service;
  model: string | null;
  last_four: string;
  is_public: boolean;
  allowed_user_ids: string[];
  /** The allow-list with each user's email (null when the account has none). */
  allowed_users?: { id: string; email: string | null }[];
  /** Upstream calls per UTC day, all users together and each user (null: no limit). */
  daily_limit: number | null;
  per_user_daily_limit: number | null;
  /** Provider-reported tokens per UTC day, all users together and each user (null: no limit). */
  daily_token_limit: number | null;
  per_user_daily_token_limit: number | null;
  created_at: string;
  updated_at: string;
}

/**
 * A shared key's limits as llm-config takes them: requests 1..1,000,000 and tokens
 * 1..1,000,000,000 a day; `null` removes a limit, a limit left out is kept as it is.
 */
export type SharedKeyLimits = {
  daily_limit?: number | null;
  per_user_daily_limit?: number | null;
  daily_token_limit?: number | null;
  per_user_daily_token_limit?: number | null;
};

interface NewSharedKeyFields {
  account_name: string;
  display_name: string;
  provider: Service;
  model?: string | null;
  api_key: string;
  is_public?: boolean;
  allowed_user_ids?: string[];
  /** Teammates by email; the server resolves them to user ids. */
  allowed_emails?: string[];
}

/** A new shared key; its limits left out (or null) are no limit. */
export type NewSharedKey = NewSharedKeyFields & SharedKeyLimits;

/** One user's use of a shared key on one UTC day. */
export interface SharedKeyUsageRow {
  user_id: string;
  email?: string | null;
  day: string;
  requests: number;
  /** Tokens the provider reported for those requests. */
  tokens: number;
}

/** `GET llm-config/me`: the caller's mode and today's usage (fields absent before the first save). */
export interface LlmConfigSummary {
  use_shared_key: boolean;
  use_owner_name: boolean;
  shared_key_account_name?: string | null;
  shared_key_display_name?: string | null;
  key_owner_name?: string | null;
  provider?: Service | null;
  model?: string | null;
  key_last_four?: string | null;
  last_validated_at?: string | null;
  usage_today?: number | null;
  daily_limit?: number | null;
  is_active?: boolean;
  updated_at?: string | null;
}

export type { CredentialEvent };

type Method = "GET" | "POST" | "DELETE";

/** One call to `name` (which may carry a sub-path such as `llm-config/shared-keys`). */
export async function invokeFunction<T>(
  client: PanelClient,
  name: string,
  options: { method?: Method; body?: Record<string, unknown> } = {},
): Promise<T> {
  let result;
  try {
    result = await client.functions.invoke<T>(name, { method: options.method ?? "POST", body: options.body });
  } catch (error) {
    throw await toCredentialsError(error);
  }
  if (result.error) throw await toCredentialsError(result.error);
  if (result.data === null || typeof result.data !== "object") {
    throw new CredentialsError("INTERNAL_ERROR", friendlyMessage("INTERNAL_ERROR"), true);
  }
  return result.data;
}

const flows = <T>(client: PanelClient, body: Record<string, unknown>) =>
  invokeFunction<T>(client, "flows", { body });

const sharedKeyPath = (account: string, action?: string) =>
  `llm-config/shared-keys/${encodeURIComponent(account)}${action ? `/${action}` : ""}`;

/** Refuses a key whose format cannot be right before anything is sent. */
function checkKey(provider: Service, apiKey: string): void {
  const problem = apiKeyFormatProblem(provider, apiKey);
  if (problem) throw new CredentialsError("INVALID_FORMAT", problem);
}

/** The caller's flows, newest first. */
export const listFlows = async (client: PanelClient) => (await flows<{ flows: Flow[] }>(client, { action: "list" })).flows;

/** Creates a flow (owner-funded off, 10 runs a minute and 100 a day unless given). */
export const createFlow = async (client: PanelClient, name: string, settings: Omit<FlowSettings, "name"> = {}) =>
  (await flows<{ flow: Flow }>(client, { action: "create", name, ...settings })).flow;

/** Changes a flow's name, owner-funded switch or limits. */
export const updateFlow = async (client: PanelClient, flowId: string, settings: FlowSettings) =>
  (await flows<{ flow: Flow }>(client, { action: "update", flow_id: flowId, ...settings })).flow;

/** Publishes a flow; the answer carries the share token this once. */
export const publishFlow = (client: PanelClient, flowId: string) =>
  flows<PublishedLink>(client, { action: "publish", flow_id: flowId });

/** Issues a new share token; the old link stops working. */
export const rotateShareLink = (client: PanelClient, flowId: string) =>
  flows<PublishedLink>(client, { action: "rotate_token", flow_id: flowId });

/** Revokes the share link: nobody can open or run the flow through it any more. */
export const revokeShareLink = async (client: PanelClient, flowId: string) =>
  (await flows<{ flow: Flow }>(client, { action: "revoke_token", flow_id: flowId })).flow;

/** Unpublishes a flow: its link and its live id stop working. */
export const unpublishFlow = async (client: PanelClient, flowId: string) =>
  (await flows<{ flow: Flow }>(client, { action: "unpublish", flow_id: flowId })).flow;

/** Deletes a flow for good. */
export const deleteFlow = (client: PanelClient, flowId: string) =>
  flows<{ ok: true }>(client, { action: "delete", flow_id: flowId });

/** The link a collaborator opens: the token goes in the fragment, so it never reaches a server log. */
export function shareLink(origin: string, liveId: string, shareToken: string): string {
  return `${origin.replace(/\/+$/, "")}/live/${encodeURIComponent(liveId)}#${shareToken}`;
}

/** The shared keys the caller owns. */
export const listSharedKeys = async (client: PanelClient) =>
  (await invokeFunction<{ shared_keys: SharedKey[] }>(client, "llm-config/shared-keys", { method: "GET" })).shared_keys;

/** Creates a shared key after the same format check as the key sections. */
export async function createSharedKey(client: PanelClient, key: NewSharedKey): Promise<SharedKey> {
  checkKey(key.provider, key.api_key);
  const body = { ...key } as Record<string, unknown>;
  return (await invokeFunction<{ shared_key: SharedKey }>(client, "llm-config/shared-keys", { body })).shared_key;
}

/** Changes who may use a shared key. */
export const updateSharedKeyAccess = async (
  client: PanelClient,
  account: string,
  access: { is_public?: boolean; allowed_user_ids?: string[]; allowed_emails?: string[] },
) => (await invokeFunction<{ shared_key: SharedKey }>(client, sharedKeyPath(account, "access"), { body: access })).shared_key;

/** Changes a shared key's limits; `null` removes a limit, one left out is kept. */
export const updateSharedKeyLimits = async (
  client: PanelClient,
  account: string,
  limits: SharedKeyLimits,
) => (await invokeFunction<{ shared_key: SharedKey }>(client, sharedKeyPath(account, "limits"), { body: limits })).shared_key;

/** Replaces the key behind a shared key (checked against its provider's format first). */
export async function replaceSharedKey(client: PanelClient, shared: Pick<SharedKey, "account_name" | "provider">, apiKey: string) {
  checkKey(shared.provider, apiKey);
  const path = sharedKeyPath(shared.account_name, "key");
  return (await invokeFunction<{ shared_key: SharedKey }>(client, path, { body: { api_key: apiKey } })).shared_key;
}

/** Deletes a shared key; everyone using it falls back to needing their own key. */
export const deleteSharedKey = (client: PanelClient, account: string) =>
  invokeFunction<{ ok: true }>(client, sharedKeyPath(account), { method: "DELETE" });

/** Requests and tokens per user per day over the last `days` days (owner only). */
export const sharedKeyUsage = async (client: PanelClient, account: string, days = 7) =>
  (await invokeFunction<{ usage: SharedKeyUsageRow[] }>(client, `${sharedKeyPath(account, "usage")}?days=${days}`, {
    method: "GET",
  })).usage;

/** The caller's LLM config summary, including today's usage. */
export const getMyConfig = (client: PanelClient) => invokeFunction<LlmConfigSummary>(client, "llm-config/me", { method: "GET" });

/** Switches the caller to a team shared key by its account name. */
export const chooseSharedKey = (client: PanelClient, accountName: string) =>
  invokeFunction<{ ok: true }>(client, "llm-config/save", {
    body: { use_shared_key: true, shared_key_account_name: accountName },
  });

/** Switches the caller back to their own key for `provider`. */
export const choosePersonalKeys = (client: PanelClient, provider: Service, model?: string | null) =>
  invokeFunction<{ ok: true }>(client, "llm-config/save", { body: { provider, model: model || null } });

/** The audit trail of the caller's keys, newest first. */
export const listCredentialEvents = async (client: PanelClient, limit = 100) =>
  (await callCredentials<{ events: CredentialEvent[] }>(client, { action: "events", limit })).events;
