/**
 * llm-config (key modes, team shared keys): a user's LLM config mode and the team shared keys they
 * own.
 *   POST /llm-config/save                             personal, shared or owner-name mode
 *   GET  /llm-config/me                               the summary (key_last_four, usage_today, ...)
 *   GET  /llm-config/shared-keys                      shared keys the caller owns
 *   POST /llm-config/shared-keys                      create one
 *   POST /llm-config/shared-keys/<account>/access     is_public, allowed_user_ids, allowed_emails
 *   POST /llm-config/shared-keys/<account>/limits     daily_limit, per_user_daily_limit (requests),
 *                                                     daily_token_limit, per_user_daily_token_limit
 *   POST /llm-config/shared-keys/<account>/key        replace the key
 *   GET  /llm-config/shared-keys/<account>/usage      requests and tokens per user per day
 *   DELETE /llm-config/shared-keys/<account>
 */
import { z } from "zod";
import type { AuthenticatedUser } from "../_shared/http/auth.ts";
import { storeCredential } from "../_shared/vault/keyWriter.ts";
import { asUser } from "../_shared/core/db.ts";
import { AppError } from "../_shared/core/errors.ts";
import {
  defineHandler,
  fail,
  type Handler,
  jsonResponse,
  parseWith,
  readJsonBody,
} from "../_shared/http/pipeline.ts";
import {
  configSummary,
  createSharedKey,
  replaceSharedKeySecret,
  saveConfig,
  SHARED_KEY_COLUMNS,
  sharedKeyAccess,
  storeOwnerNameKey,
} from "../_shared/sharing/llmConfigStore.ts";
import { apiKeyFormatProblem, SERVICES } from "../_shared/contract/providers.ts";
import { emailsOf, idsForEmails, withAllowedUsers } from "../_shared/sharing/userEmails.ts";
import { type Runtime, runtimeFromEnv, type RuntimeSource } from "../_shared/core/runtime.ts";

const accountName = z.string().regex(/^[a-z0-9][a-z0-9_-]{2,99}$/, "3-100 of a-z, 0-9, _ and -");
const ownerName = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9_.-]{1,99}$/,
  "2-100 of A-Z, a-z, 0-9, _, . and -",
);
const apiKey = z.string().min(1).max(512);
const limit = z.number().int().min(1).max(1_000_000).nullable();
/** Provider-reported tokens per UTC day (the column's own check has the same bounds). */
const tokenLimit = z.number().int().min(1).max(1_000_000_000).nullable();

const saveSchema = z.strictObject({
  use_shared_key: z.boolean().default(false),
  shared_key_account_name: accountName.nullish(),
  use_owner_name: z.boolean().default(false),
  key_owner_name: ownerName.nullish(),
  provider: z.enum(SERVICES).nullish(),
  model: z.string().max(200).nullish(),
  api_key: apiKey.nullish(),
  base_url: z.url().max(2048).nullish(),
  region: z.string().max(100).nullish(),
  deployment: z.string().max(200).nullish(),
  extra_headers: z.record(z.string().max(100), z.string().max(1000)).nullish(),
  response_format: z.string().max(50).default("auto"),
  daily_limit: limit.optional(),
});

const createSharedKeySchema = z.strictObject({
  account_name: accountName,
  display_name: z.string().trim().min(1).max(200),
  provider: z.enum(SERVICES),
  model: z.string().max(200).nullish(),
  api_key: apiKey,
  is_public: z.boolean().default(false),
  allowed_user_ids: z.array(z.uuid()).max(10_000).default([]),
  allowed_emails: z.array(z.email().max(320)).max(10_000).default([]),
  daily_limit: limit.optional(),
  per_user_daily_limit: limit.optional(),
  daily_token_limit: tokenLimit.optional(),
  per_user_daily_token_limit: tokenLimit.optional(),
});

/** `allowed_emails` are resolved to ids on the server and join `allowed_user_ids`. */
const accessSchema = z.strictObject({
  is_public: z.boolean().optional(),
  allowed_user_ids: z.array(z.uuid()).max(10_000).optional(),
  allowed_emails: z.array(z.email().max(320)).max(10_000).optional(),
});

/** The allow-list an access or create request asks for: its ids plus its emails' ids. */
async function allowList(
  rt: Runtime,
  ids: string[] | undefined,
  emails: string[] | undefined,
): Promise<string[] | undefined> {
  if (ids === undefined && emails === undefined) return undefined;
  const fromEmails = await idsForEmails(rt.db, emails ?? []);
  return [...new Set([...(ids ?? []), ...fromEmails].map((id) => id.toLowerCase()))];
}
const limitsSchema = z.strictObject({
  daily_limit: limit.optional(),
  per_user_daily_limit: limit.optional(),
  daily_token_limit: tokenLimit.optional(),
  per_user_daily_token_limit: tokenLimit.optional(),
});
const replaceKeySchema = z.strictObject({ api_key: apiKey });

function checkKeyFormat(provider: (typeof SERVICES)[number], value: string): void {
  const problem = apiKeyFormatProblem(provider, value);
  if (problem) fail("INVALID_REQUEST", problem);
}

async function save(rt: Runtime, user: AuthenticatedUser, request: Request): Promise<Response> {
  const body = parseWith(saveSchema, await readJsonBody(request));
  if (body.use_shared_key && body.use_owner_name) fail("INVALID_REQUEST", "Choose one mode.");
  if (body.use_owner_name && !rt.config.allowOwnerNameSharing) {
    throw new AppError("OWNER_NAME_SHARING_DISABLED");
  }

  let provider = body.provider ?? null;
  if (body.use_shared_key) {
    if (!body.shared_key_account_name) {
      fail("INVALID_REQUEST", "shared_key_account_name is required.");
    }
    const access = await sharedKeyAccess(rt.db, body.shared_key_account_name, user.id);
    // Unknown and forbidden get the same answer, so account names cannot be enumerated.
    if (!access.allowed) throw new AppError("SHARED_KEY_NOT_FOUND");
    provider = access.provider;
  } else {
    if (!provider) fail("INVALID_REQUEST", "provider is required.");
    if (body.use_owner_name && !body.key_owner_name) {
      fail("INVALID_REQUEST", "key_owner_name is required.");
    }
    if (body.api_key) checkKeyFormat(provider, body.api_key);
  }

  if (body.api_key && provider && !body.use_shared_key) {
    if (body.use_owner_name) {
      await storeOwnerNameKey(
        rt.db,
        rt.config,
        body.key_owner_name!,
        provider,
        body.api_key,
        user.id,
      );
    } else {
      await storeCredential(rt.db, user, rt.config, provider, "api_key", body.api_key);
    }
  }
  await saveConfig(rt.db, user, {
    use_shared_key: body.use_shared_key,
    shared_key_account_name: body.use_shared_key ? body.shared_key_account_name! : null,
    use_owner_name: body.use_owner_name,
    key_owner_name: body.use_owner_name ? body.key_owner_name! : null,
    provider,
    model: body.model ?? null,
    base_url: body.base_url ?? null,
    region: body.region ?? null,
    deployment: body.deployment ?? null,
    extra_headers: body.extra_headers ?? null,
    response_format: body.response_format,
    daily_limit: body.daily_limit ?? null,
  });
  rt.vault.forgetUser(user.id);
  return jsonResponse({ ok: true });
}

async function sharedKeyRoute(
  rt: Runtime,
  user: AuthenticatedUser,
  request: Request,
  account: string,
  action: string | undefined,
): Promise<Response> {
  const name = parseWith(accountName, account);
  const method = request.method;
  const updateOne = async (assignments: string, params: unknown[]) => {
    const [row] = await asUser(rt.db, user, (tx) =>
      tx.query(
        `update public.shared_keys set ${assignments}, updated_at = now()
          where account_name = $1 returning ${SHARED_KEY_COLUMNS}`,
        [name, ...params],
      ));
    if (!row) throw new AppError("SHARED_KEY_NOT_FOUND");
    const [withEmails] = await withAllowedUsers(rt.db, [row as { allowed_user_ids: string[] }]);
    return jsonResponse({ shared_key: withEmails });
  };

  if (action === undefined && method === "DELETE") {
    const rows = await asUser(
      rt.db,
      user,
      (tx) =>
        tx.query("delete from public.shared_keys where account_name = $1 returning account_name", [
          name,
        ]),
    );
    if (rows.length === 0) throw new AppError("SHARED_KEY_NOT_FOUND");
    return jsonResponse({ ok: true });
  }
  if (action === "access" && method === "POST") {
    const body = parseWith(accessSchema, await readJsonBody(request));
    const allowed = await allowList(rt, body.allowed_user_ids, body.allowed_emails);
    return await updateOne(
      "is_public = coalesce($2::boolean, is_public), allowed_user_ids = coalesce($3::text::uuid[], allowed_user_ids)",
      [body.is_public ?? null, allowed ? `{${allowed.join(",")}}` : null],
    );
  }
  if (action === "limits" && method === "POST") {
    const body = parseWith(limitsSchema, await readJsonBody(request));
    // Each limit the body names is set (null removes it); the others are left as they are.
    const columns = [
      "daily_limit",
      "per_user_daily_limit",
      "daily_token_limit",
      "per_user_daily_token_limit",
    ] as const;
    return await updateOne(
      columns.map((column, i) =>
        `${column} = case when $${2 * i + 2}::boolean then $${
          2 * i + 3
        }::integer else ${column} end`
      ).join(", "),
      columns.flatMap((column) => [body[column] !== undefined, body[column] ?? null]),
    );
  }
  if (action === "key" && method === "POST") {
    const body = parseWith(replaceKeySchema, await readJsonBody(request));
    const [existing] = await asUser(
      rt.db,
      user,
      (tx) =>
        tx.query<{ provider: (typeof SERVICES)[number] }>(
          "select provider from public.shared_keys where account_name = $1",
          [name],
        ),
    );
    if (!existing) throw new AppError("SHARED_KEY_NOT_FOUND");
    checkKeyFormat(existing.provider, body.api_key);
    return jsonResponse({
      shared_key: await replaceSharedKeySecret(rt.db, user, rt.config, name, body.api_key),
    });
  }
  if (action === "usage" && method === "GET") {
    const days = Math.min(
      Math.max(Number(new URL(request.url).searchParams.get("days") ?? "7") || 7, 1),
      90,
    );
    const usage = await asUser(
      rt.db,
      user,
      (tx) =>
        tx.query<{ user_id: string; day: string; requests: number; tokens: number }>(
          `select u.user_id, to_char(u.day, 'YYYY-MM-DD') as day, u.requests,
                  u.tokens::float8 as tokens
           from public.shared_key_usage as u
           join public.shared_keys as k on k.id = u.shared_key_id
          where k.account_name = $1 and k.owner_id = (select auth.uid())
            and u.day > (now() at time zone 'utc')::date - $2::integer
          order by u.day desc, u.requests desc`,
          [name, days],
        ),
    );
    const emails = await emailsOf(rt.db, usage.map((row) => row.user_id));
    return jsonResponse({
      account_name: name,
      usage: usage.map((row) => ({ ...row, email: emails.get(row.user_id) ?? null })),
    });
  }
  fail(
    action === undefined || ["access", "limits", "key", "usage"].includes(action)
      ? "METHOD_NOT_ALLOWED"
      : "NOT_FOUND",
  );
}

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("llm-config", runtime, async (request, rt) => {
    const user = await rt.authenticate(request.headers.get("authorization"));
    const path = new URL(request.url).pathname.replace(/^.*?\/llm-config/, "").replace(/\/+$/, "");
    const [, route, account, action, ...rest] = path.split("/");
    if (rest.length > 0) fail("NOT_FOUND");

    if (route === "save" && !account) {
      if (request.method !== "POST") fail("METHOD_NOT_ALLOWED");
      return await save(rt, user, request);
    }
    if (route === "me" && !account) {
      if (request.method !== "GET") fail("METHOD_NOT_ALLOWED");
      return jsonResponse(
        await configSummary(rt.db, user.id) ?? { use_shared_key: false, use_owner_name: false },
      );
    }
    if (route === "shared-keys" && !account) {
      if (request.method === "GET") {
        const keys = await asUser(
          rt.db,
          user,
          (tx) =>
            tx.query(
              `select ${SHARED_KEY_COLUMNS} from public.shared_keys order by created_at`,
              [],
            ),
        );
        return jsonResponse({
          shared_keys: await withAllowedUsers(rt.db, keys as { allowed_user_ids: string[] }[]),
        });
      }
      if (request.method !== "POST") fail("METHOD_NOT_ALLOWED");
      const body = parseWith(createSharedKeySchema, await readJsonBody(request));
      checkKeyFormat(body.provider, body.api_key);
      const { allowed_emails, ...fields } = body;
      const created = await createSharedKey(rt.db, user, rt.config, {
        ...fields,
        allowed_user_ids: (await allowList(rt, body.allowed_user_ids, allowed_emails))!,
        model: body.model ?? null,
        daily_limit: body.daily_limit ?? null,
        per_user_daily_limit: body.per_user_daily_limit ?? null,
        daily_token_limit: body.daily_token_limit ?? null,
        per_user_daily_token_limit: body.per_user_daily_token_limit ?? null,
      });
      const [withEmails] = await withAllowedUsers(rt.db, [
        created as { allowed_user_ids: string[] },
      ]);
      return jsonResponse({ shared_key: withEmails }, { status: 201 });
    }
    if (route === "shared-keys") return await sharedKeyRoute(rt, user, request, account, action);
    fail("NOT_FOUND");
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
