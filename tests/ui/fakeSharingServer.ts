/**
 * A real HTTP server speaking the sharing functions' contracts (flows, llm-config and
 * credentials-manager `events`, as in supabase/functions/*\/handler.ts and docs/api.md), kept in
 * memory. It records every request (method, path with sub-path and query, body) so tests can
 * assert what the views sent, and what they did not.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { apiKeyFormatProblem, isService } from "../../supabase/functions/_shared/contract/providers.ts";

export const USER_ID = "11111111-1111-4111-8111-111111111111";
export const TEAMMATE_ID = "22222222-2222-4222-8222-222222222222";
export const TEAMMATE_EMAIL = "teammate@example.com";
/** The accounts this fake knows, as auth.users would: emails resolve to ids only on the server. */
const ACCOUNTS = new Map([[TEAMMATE_EMAIL, TEAMMATE_ID], ["me@example.com", USER_ID]]);
const EMAIL_OF = new Map([...ACCOUNTS].map(([email, id]) => [id, email]));

/** Adds `allowed_users` as llm-config does. */
function withAllowedUsers(key: Record<string, unknown>) {
  const ids = key.allowed_user_ids as string[];
  return { ...key, allowed_users: ids.map((id) => ({ id, email: EMAIL_OF.get(id) ?? null })) };
}

/** The request limits (per UTC day) and token limits shared keys take, with llm-config's bounds. */
const LIMIT_BOUNDS = {
  daily_limit: 1_000_000,
  per_user_daily_limit: 1_000_000,
  daily_token_limit: 1_000_000_000,
  per_user_daily_token_limit: 1_000_000_000,
} as const;
const LIMIT_FIELDS = Object.keys(LIMIT_BOUNDS) as (keyof typeof LIMIT_BOUNDS)[];
const CREATE_FIELDS = [
  "account_name",
  "display_name",
  "provider",
  "model",
  "api_key",
  "is_public",
  "allowed_user_ids",
  "allowed_emails",
  ...LIMIT_FIELDS,
];

/**
 * What llm-config's zod schemas (strict objects, `z.number().int().min(1).max(N).nullable()`
 * per limit, read through describeIssues) answer for a body: null when it passes, else the
 * `INVALID_REQUEST` message, naming the fields in the schema's order (unknown fields last),
 * never their values.
 */
function limitProblem(body: Record<string, unknown>, allowed: readonly string[]): string | null {
  const issues: string[] = [];
  for (const field of LIMIT_FIELDS) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== "number") issues.push(`${field}: Invalid input: expected number, received ${typeof value}`);
    else if (!Number.isInteger(value)) issues.push(`${field}: Invalid input: expected int, received number`);
    else if (value < 1) issues.push(`${field}: Too small: expected number to be >=1`);
    else if (value > LIMIT_BOUNDS[field]) issues.push(`${field}: Too big: expected number to be <=${LIMIT_BOUNDS[field]}`);
  }
  if (Object.keys(body).some((field) => !allowed.includes(field))) issues.push("body: unknown fields are not allowed");
  return issues.length > 0 ? `Invalid request: ${issues.join("; ")}` : null;
}

/** The ids of `emails`, or the first email without an account. */
function resolveEmails(emails: unknown): { ids: string[]; missing?: string } {
  const ids: string[] = [];
  for (const email of (emails as string[] | undefined) ?? []) {
    const id = ACCOUNTS.get(email.toLowerCase());
    if (!id) return { ids, missing: email };
    ids.push(id);
  }
  return { ids };
}

/** One row of `/usage`: requests and provider-reported tokens per user per UTC day. */
export interface UsageRow {
  user_id: string;
  day: string;
  requests: number;
  tokens: number;
}

export interface RecordedCall {
  method: string;
  path: string;
  body: Record<string, unknown> | null;
}

type ErrorBody = { code: string; message: string; recoverable: boolean };

export interface FakeSharingServer {
  url: string;
  calls: RecordedCall[];
  /** Share tokens handed out, so tests can look for them where they must not be. */
  issuedTokens: string[];
  /** Stored plaintext keys of shared keys, so tests can look for them where they must not be. */
  sharedKeySecrets: Map<string, string>;
  usage: Map<string, UsageRow[]>;
  events: Array<Record<string, unknown>>;
  config: Record<string, unknown>;
  failNext(status: number, error: ErrorBody): void;
  client(): SupabaseClient;
  reset(): void;
  close(): Promise<void>;
}

async function readBody(request: IncomingMessage): Promise<Record<string, unknown> | null> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return null;
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return null;
  }
}

const err = (code: string, message: string, recoverable = false): ErrorBody => ({ code, message, recoverable });

export async function startFakeSharingServer(): Promise<FakeSharingServer> {
  const flows = new Map<string, Record<string, unknown>>();
  const sharedKeys = new Map<string, Record<string, unknown>>();
  const state = {
    calls: [] as RecordedCall[],
    issuedTokens: [] as string[],
    sharedKeySecrets: new Map<string, string>(),
    usage: new Map<string, UsageRow[]>(),
    events: [] as Array<Record<string, unknown>>,
    config: { use_shared_key: false, use_owner_name: false } as Record<string, unknown>,
  };
  let nextFailure: { status: number; error: ErrorBody } | null = null;

  function handle(method: string, path: string, body: Record<string, unknown> | null): [number, unknown] {
    const now = new Date().toISOString();
    if (path === "/functions/v1/flows" && method === "POST") {
      const flow = typeof body?.flow_id === "string" ? flows.get(body.flow_id) : undefined;
      const needFlow = () => (flow ? null : [404, { error: err("NOT_FOUND", "No flow with that id belongs to you.") }] as [number, unknown]);
      switch (body?.action) {
        case "list":
          return [200, { flows: [...flows.values()].reverse() }];
        case "create": {
          const created = {
            id: randomUUID(),
            name: body.name,
            definition: {},
            live_id: null,
            use_owner_keys: body.use_owner_keys ?? false,
            per_minute_limit: body.per_minute_limit ?? 10,
            daily_limit: body.daily_limit ?? 100,
            daily_execution_count: 0,
            daily_execution_reset: null,
            published_at: null,
            published: false,
            created_at: now,
            updated_at: now,
          };
          flows.set(created.id, created);
          return [200, { flow: created }];
        }
        case "update": {
          const missing = needFlow();
          if (missing) return missing;
          for (const field of ["name", "use_owner_keys", "per_minute_limit", "daily_limit"]) {
            if (body[field] !== undefined) flow![field] = body[field];
          }
          flow!.updated_at = now;
          return [200, { flow }];
        }
        case "publish":
        case "rotate_token": {
          const missing = needFlow();
          if (missing) return missing;
          if (body.action === "rotate_token" && !flow!.published) {
            return [404, { error: err("NOT_FOUND", "No flow with that id belongs to you.") }];
          }
          const token = `shr_${randomBytes(32).toString("base64url")}`;
          state.issuedTokens.push(token);
          flow!.live_id ??= randomBytes(9).toString("base64url");
          flow!.published = true;
          flow!.published_at ??= now;
          return [200, { flow, live_id: flow!.live_id, share_token: token }];
        }
        case "revoke_token":
        case "unpublish": {
          const missing = needFlow();
          if (missing) return missing;
          // As flows/handler.ts: a flow nobody can open is not published; unpublish also drops the live id.
          flow!.published = false;
          flow!.published_at = null;
          if (body.action === "unpublish") flow!.live_id = null;
          flow!.updated_at = now;
          return [200, { flow }];
        }
        case "delete": {
          const missing = needFlow();
          if (missing) return missing;
          flows.delete(flow!.id as string);
          return [200, { ok: true }];
        }
        default:
          return [400, { error: err("INVALID_REQUEST", "action: invalid option") }];
      }
    }
    if (path === "/functions/v1/credentials-manager" && method === "POST" && body?.action === "events") {
      const events = state.events.slice(0, Number(body.limit ?? 100));
      return [200, { events: events.map((e) => ({ ...e, actor_email: EMAIL_OF.get(String(e.actor_id)) ?? null })) }];
    }
    const llm = path.match(/^\/functions\/v1\/llm-config\/([a-z-]+)(?:\/([^/?]+))?(?:\/([a-z]+))?(?:\?.*)?$/);
    if (!llm) return [404, { error: err("NOT_FOUND", "Not found.") }];
    const [, route, account, action] = llm;
    if (route === "me" && method === "GET") return [200, state.config];
    if (route === "save" && method === "POST") {
      if (body?.use_shared_key) {
        const key = sharedKeys.get(String(body.shared_key_account_name));
        if (!key) return [404, { error: err("SHARED_KEY_NOT_FOUND", "No shared key has that account name.") }];
        state.config = {
          ...state.config,
          use_shared_key: true,
          shared_key_account_name: key.account_name,
          shared_key_display_name: key.display_name,
          provider: key.provider,
          usage_today: 0,
        };
      } else {
        state.config = { ...state.config, use_shared_key: false, shared_key_account_name: null, provider: body?.provider };
      }
      return [200, { ok: true }];
    }
    if (route !== "shared-keys") return [404, { error: err("NOT_FOUND", "Not found.") }];
    if (!account) {
      if (method === "GET") return [200, { shared_keys: [...sharedKeys.values()].map(withAllowedUsers) }];
      if (method !== "POST" || !body) return [405, { error: err("METHOD_NOT_ALLOWED", "This method is not allowed here.") }];
      const invalidLimits = limitProblem(body, CREATE_FIELDS);
      if (invalidLimits) return [400, { error: err("INVALID_REQUEST", invalidLimits) }];
      if (!isService(body.provider)) return [400, { error: err("INVALID_REQUEST", "provider: invalid option") }];
      const problem = apiKeyFormatProblem(body.provider, String(body.api_key ?? ""));
      if (problem) return [400, { error: err("INVALID_REQUEST", problem) }];
      if (sharedKeys.has(String(body.account_name))) {
        return [400, { error: err("INVALID_REQUEST", "That account name is taken.") }];
      }
      const resolved = resolveEmails(body.allowed_emails);
      if (resolved.missing) return [400, { error: err("INVALID_REQUEST", `No account uses ${resolved.missing}. Ask them to sign up first.`) }];
      const created = {
        account_name: body.account_name,
        display_name: body.display_name,
        provider: body.provider,
        model: body.model ?? null,
        last_four: String(body.api_key).slice(-4),
        is_public: body.is_public ?? false,
        allowed_user_ids: [...new Set([...((body.allowed_user_ids as string[]) ?? []), ...resolved.ids])],
        daily_limit: body.daily_limit ?? null,
        per_user_daily_limit: body.per_user_daily_limit ?? null,
        daily_token_limit: body.daily_token_limit ?? null,
        per_user_daily_token_limit: body.per_user_daily_token_limit ?? null,
        created_at: now,
        updated_at: now,
      };
      sharedKeys.set(String(body.account_name), created);
      state.sharedKeySecrets.set(String(body.account_name), String(body.api_key));
      return [201, { shared_key: withAllowedUsers(created) }];
    }
    const key = sharedKeys.get(decodeURIComponent(account));
    if (!key) return [404, { error: err("SHARED_KEY_NOT_FOUND", "No shared key has that account name.") }];
    if (!action && method === "DELETE") {
      sharedKeys.delete(String(key.account_name));
      return [200, { ok: true }];
    }
    if (action === "usage" && method === "GET") {
      const usage = (state.usage.get(String(key.account_name)) ?? []).map((row) => ({ ...row, email: EMAIL_OF.get(row.user_id) ?? null }));
      return [200, { account_name: key.account_name, usage }];
    }
    if (method !== "POST" || !body) return [405, { error: err("METHOD_NOT_ALLOWED", "This method is not allowed here.") }];
    if (action === "access") {
      if (body.is_public !== undefined) key.is_public = body.is_public;
      const resolved = resolveEmails(body.allowed_emails);
      if (resolved.missing) return [400, { error: err("INVALID_REQUEST", `No account uses ${resolved.missing}. Ask them to sign up first.`) }];
      if (body.allowed_user_ids !== undefined || body.allowed_emails !== undefined) {
        key.allowed_user_ids = [...new Set([...((body.allowed_user_ids as string[]) ?? []), ...resolved.ids])];
      }
    } else if (action === "limits") {
      const invalidLimits = limitProblem(body, LIMIT_FIELDS);
      if (invalidLimits) return [400, { error: err("INVALID_REQUEST", invalidLimits) }];
      // As llm-config: each limit the body names is set (null removes it), the others stay.
      for (const field of LIMIT_FIELDS) if (body[field] !== undefined) key[field] = body[field];
    } else if (action === "key") {
      key.last_four = String(body.api_key).slice(-4);
      state.sharedKeySecrets.set(String(key.account_name), String(body.api_key));
    } else {
      return [404, { error: err("NOT_FOUND", "Not found.") }];
    }
    key.updated_at = new Date(Date.parse(String(key.updated_at)) + 1000).toISOString();
    return [200, { shared_key: withAllowedUsers(key) }];
  }

  const server: Server = createServer(async (request, response) => {
    const send = (status: number, body: unknown) => {
      response.writeHead(status, {
        "content-type": "application/json",
        "access-control-allow-origin": "*",
        "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
        "access-control-allow-headers": "authorization, x-client-info, apikey, content-type",
      });
      response.end(JSON.stringify(body));
    };
    if (request.method === "OPTIONS") return send(204, null);
    const body = await readBody(request);
    const method = request.method ?? "GET";
    const path = request.url ?? "";
    state.calls.push({ method, path, body });
    if (nextFailure) {
      const failure = nextFailure;
      nextFailure = null;
      return send(failure.status, { error: failure.error });
    }
    if (request.headers.authorization !== "Bearer user-token") {
      return send(401, { error: err("UNAUTHORIZED", "Sign in again: the request had no valid user session.") });
    }
    const [status, answer] = handle(method, path, body);
    send(status, answer);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let shared: SupabaseClient | null = null;

  return Object.assign(state, {
    url,
    failNext(status: number, error: ErrorBody) {
      nextFailure = { status, error };
    },
    client() {
      shared ??= createClient(url, "anon-key", {
        auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false, storageKey: "fake-sharing-user" },
        global: { headers: { Authorization: "Bearer user-token" } },
      });
      return shared;
    },
    reset() {
      flows.clear();
      sharedKeys.clear();
      state.calls.length = 0;
      state.issuedTokens.length = 0;
      state.sharedKeySecrets.clear();
      state.usage.clear();
      state.events.length = 0;
      state.config = { use_shared_key: false, use_owner_name: false };
      nextFailure = null;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}
