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
import type { Caller } from "../_shared/http/actions.ts";
import { storeCredential } from "../_shared/vault/keyWriter.ts";
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
  deleteSharedKey,
  listSharedKeys,
  replaceSharedKeySecret,
  saveConfig,
  setSharedKeyAccess,
  setSharedKeyLimits,
  sharedKeyAccess,
  sharedKeyProvider,
  sharedKeyUsage,
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

/** What a route's step gets: the caller, the request's URL and, under a shared key, its name. */
interface RouteCaller extends Caller {
  url: URL;
  account: string;
}

interface Route {
  /** Reads and validates the JSON body, or reads nothing for a route without one. */
  readBody(request: Request): Promise<unknown>;
  step(caller: RouteCaller, body: unknown): Promise<Response>;
}

/** A route whose body `schema` validates (`null`: no body is read) before `step` runs. */
function route<T>(
  schema: z.ZodType<T> | null,
  step: (caller: RouteCaller, body: T) => Promise<Response>,
): Route {
  return {
    readBody: async (request) => schema && parseWith(schema, await readJsonBody(request)),
    step: (caller, body) => step(caller, body as T),
  };
}

/** A shared key answer, with its allow-list's emails. */
async function sharedKeyAnswer(rt: Runtime, row: { allowed_user_ids: string[] }) {
  const [withEmails] = await withAllowedUsers(rt.db, [row]);
  return { shared_key: withEmails };
}

async function save(
  { rt, user }: RouteCaller,
  body: z.infer<typeof saveSchema>,
): Promise<Response> {
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

/** path (`:account` a shared key's name) → method → body schema → step. */
const ROUTES: Record<string, Record<string, Route>> = {
  save: { POST: route(saveSchema, save) },
  me: {
    GET: route(null, async ({ rt, user }) =>
      jsonResponse(
        await configSummary(rt.db, user.id) ?? { use_shared_key: false, use_owner_name: false },
      )),
  },
  "shared-keys": {
    GET: route(
      null,
      async ({ rt, user }) =>
        jsonResponse({
          shared_keys: await withAllowedUsers(rt.db, await listSharedKeys(rt.db, user)),
        }),
    ),
    POST: route(createSharedKeySchema, async ({ rt, user }, body) => {
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
      return jsonResponse(
        await sharedKeyAnswer(rt, created as { allowed_user_ids: string[] }),
        { status: 201 },
      );
    }),
  },
  "shared-keys/:account": {
    DELETE: route(null, async ({ rt, user, account }) => {
      await deleteSharedKey(rt.db, user, account);
      return jsonResponse({ ok: true });
    }),
  },
  "shared-keys/:account/access": {
    POST: route(accessSchema, async ({ rt, user, account }, body) => {
      const allowed = await allowList(rt, body.allowed_user_ids, body.allowed_emails);
      const row = await setSharedKeyAccess(rt.db, user, account, {
        is_public: body.is_public,
        allowed_user_ids: allowed,
      });
      return jsonResponse(await sharedKeyAnswer(rt, row));
    }),
  },
  "shared-keys/:account/limits": {
    POST: route(
      limitsSchema,
      async ({ rt, user, account }, body) =>
        jsonResponse(
          await sharedKeyAnswer(rt, await setSharedKeyLimits(rt.db, user, account, body)),
        ),
    ),
  },
  "shared-keys/:account/key": {
    POST: route(replaceKeySchema, async ({ rt, user, account }, body) => {
      checkKeyFormat(await sharedKeyProvider(rt.db, user, account), body.api_key);
      return jsonResponse({
        shared_key: await replaceSharedKeySecret(rt.db, user, rt.config, account, body.api_key),
      });
    }),
  },
  "shared-keys/:account/usage": {
    GET: route(null, async ({ rt, user, url, account }) => {
      const days = Math.min(Math.max(Number(url.searchParams.get("days") ?? "7") || 7, 1), 90);
      const usage = await sharedKeyUsage(rt.db, user, account, days);
      const emails = await emailsOf(rt.db, usage.map((row) => row.user_id));
      return jsonResponse({
        account_name: account,
        usage: usage.map((row) => ({ ...row, email: emails.get(row.user_id) ?? null })),
      });
    }),
  },
};

/**
 * The route's key for a path below `/llm-config`: `save`, `shared-keys`, or
 * `shared-keys/:account/<action>`, the account name validated first (400 when malformed).
 */
function routeKey(url: URL): { key: string; account: string } {
  const path = url.pathname.replace(/^.*?\/llm-config/, "").replace(/\/+$/, "");
  const [, name, account, action, ...rest] = path.split("/");
  if (rest.length > 0) fail("NOT_FOUND");
  if (!account) return { key: name ?? "", account: "" };
  if (name === "shared-keys") parseWith(accountName, account);
  return { key: `${name}/:account${action === undefined ? "" : `/${action}`}`, account };
}

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("llm-config", runtime, async (request, rt) => {
    const user = await rt.authenticate(request.headers.get("authorization"));
    const url = new URL(request.url);
    const { key, account } = routeKey(url);
    const methods = Object.hasOwn(ROUTES, key) ? ROUTES[key] : fail("NOT_FOUND");
    const route = Object.hasOwn(methods, request.method)
      ? methods[request.method]
      : fail("METHOD_NOT_ALLOWED");
    const body = await route.readBody(request);
    return await route.step({ rt, user, url, account }, body);
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
