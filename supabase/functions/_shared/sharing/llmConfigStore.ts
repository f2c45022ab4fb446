/**
 * LLM config modes (key modes) and team shared keys: the statements behind the llm-config
 * function. Owner actions run as the caller (RLS); what a caller may not read (someone else's
 * shared key, owner-name keys) goes through the server's definer functions.
 */
import { asUser, type Database, type DbUser, forUser } from "../core/db.ts";
import { type KeyringConfig, keyringParam } from "../vault/keyring.ts";
import { AppError } from "../core/errors.ts";
import type { Service } from "../contract/providers.ts";

export interface SharedKeyAccess {
  allowed: boolean;
  display_name: string;
  provider: Service;
  model: string | null;
  per_user_daily_limit: number | null;
}

/** Whether `userId` may use the shared key named `accountName`; throws SHARED_KEY_NOT_FOUND. */
export async function sharedKeyAccess(
  db: Database,
  accountName: string,
  userId: string,
): Promise<SharedKeyAccess> {
  const [row] = await db.query<SharedKeyAccess>(
    "select * from private.shared_key_access($1, $2::uuid)",
    [
      accountName,
      userId,
    ],
  );
  if (!row) throw new AppError("SHARED_KEY_NOT_FOUND");
  return row;
}

export interface ConfigRow {
  use_shared_key: boolean;
  shared_key_account_name: string | null;
  use_owner_name: boolean;
  key_owner_name: string | null;
  provider: Service | null;
  model: string | null;
  base_url: string | null;
  region: string | null;
  deployment: string | null;
  extra_headers: Record<string, string> | null;
  response_format: string;
  daily_limit: number | null;
}

/** Upserts the caller's config row. */
export async function saveConfig(
  db: Database,
  user: DbUser,
  row: ConfigRow,
): Promise<void> {
  await asUser(db, user, (tx) =>
    tx.query(
      `insert into public.llm_configs as c
         (user_id, use_shared_key, shared_key_account_name, use_owner_name, key_owner_name, provider, model,
          base_url, region, deployment, extra_headers, response_format, daily_limit)
       values ((select auth.uid()), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::jsonb, $11, $12::integer)
       on conflict (user_id) do update set
         use_shared_key = excluded.use_shared_key, shared_key_account_name = excluded.shared_key_account_name,
         use_owner_name = excluded.use_owner_name, key_owner_name = excluded.key_owner_name,
         provider = excluded.provider, model = excluded.model, base_url = excluded.base_url,
         region = excluded.region, deployment = excluded.deployment, extra_headers = excluded.extra_headers,
         response_format = excluded.response_format, daily_limit = excluded.daily_limit,
         is_active = true`,
      [
        row.use_shared_key,
        row.shared_key_account_name,
        row.use_owner_name,
        row.key_owner_name,
        row.provider,
        row.model,
        row.base_url,
        row.region,
        row.deployment,
        row.extra_headers === null ? null : JSON.stringify(row.extra_headers),
        row.response_format,
        row.daily_limit,
      ],
    ));
}

/** Stores the key under an owner name (owner-name mode: whoever names the owner name uses it). */
export async function storeOwnerNameKey(
  db: Database,
  config: KeyringConfig,
  ownerName: string,
  provider: Service,
  apiKey: string,
  updatedBy: string,
): Promise<void> {
  await db.query(
    "select private.store_owner_name_key($1, $2, $3, $4::uuid, $5::text::jsonb)",
    [ownerName, provider, apiKey, updatedBy, keyringParam(config)],
  );
}

/** The key modes' `GET /me` summary, or null when the caller has saved no config. */
export async function configSummary(
  db: Database,
  userId: string,
): Promise<Record<string, unknown> | null> {
  const [row] = await db.query<{ summary: Record<string, unknown> | null }>(
    "select private.llm_config_summary($1::uuid) as summary",
    [userId],
  );
  return row?.summary ?? null;
}

export interface NewSharedKey {
  account_name: string;
  display_name: string;
  provider: Service;
  model: string | null;
  api_key: string;
  is_public: boolean;
  allowed_user_ids: string[];
  daily_limit: number | null;
  per_user_daily_limit: number | null;
  /** Provider-reported tokens per UTC day, all users together; null or absent: no limit. */
  daily_token_limit?: number | null;
  per_user_daily_token_limit?: number | null;
}

export const SHARED_KEY_COLUMNS =
  `account_name, display_name, provider, model, last_four, is_public,
  allowed_user_ids, daily_limit, per_user_daily_limit, daily_token_limit,
  per_user_daily_token_limit, created_at, updated_at`;

const UNIQUE_VIOLATION = "23505";

/** Creates a shared key owned by the caller; an account name already taken is INVALID_REQUEST. */
export async function createSharedKey(
  db: Database,
  user: DbUser,
  config: KeyringConfig,
  key: NewSharedKey,
): Promise<Record<string, unknown>> {
  try {
    const [row] = await forUser(db, user, (tx) =>
      tx.query(
        `select ${SHARED_KEY_COLUMNS}
           from private.create_shared_key($1::uuid, $2, $3, $4, $5, $6, $7, $8::text::uuid[],
                                          $9::integer, $10::integer, $11::integer, $12::integer,
                                          $13::text::jsonb)`,
        [
          user.id,
          key.account_name,
          key.display_name,
          key.provider,
          key.model,
          key.api_key,
          key.is_public,
          `{${key.allowed_user_ids.join(",")}}`,
          key.daily_limit,
          key.per_user_daily_limit,
          key.daily_token_limit ?? null,
          key.per_user_daily_token_limit ?? null,
          keyringParam(config),
        ],
      ));
    return row;
  } catch (error) {
    if ((error as { code?: string }).code === UNIQUE_VIOLATION) {
      throw new AppError("INVALID_REQUEST", {
        message: "That account name is already taken.",
      });
    }
    throw error;
  }
}

/** Replaces the key behind the caller's shared key; SHARED_KEY_NOT_FOUND when not theirs. */
export async function replaceSharedKeySecret(
  db: Database,
  user: DbUser,
  config: KeyringConfig,
  accountName: string,
  apiKey: string,
): Promise<Record<string, unknown>> {
  const [row] = await forUser(db, user, (tx) =>
    tx.query(
      `select ${SHARED_KEY_COLUMNS}
         from private.replace_shared_key_secret($1::uuid, $2, $3, $4::text::jsonb)`,
      [user.id, accountName, apiKey, keyringParam(config)],
    ));
  if (!row) throw new AppError("SHARED_KEY_NOT_FOUND");
  return row;
}

/** A shared key as its owner sees it (SHARED_KEY_COLUMNS: never the key itself). */
export type SharedKeyRow = Record<string, unknown> & {
  allowed_user_ids: string[];
};

/** The shared keys the caller owns, oldest first. */
export function listSharedKeys(
  db: Database,
  user: DbUser,
): Promise<SharedKeyRow[]> {
  return asUser(db, user, (tx) =>
    tx.query<SharedKeyRow>(
      `select ${SHARED_KEY_COLUMNS} from public.shared_keys order by created_at`,
      [],
    ));
}

/** Deletes the caller's shared key; SHARED_KEY_NOT_FOUND when not theirs. */
export async function deleteSharedKey(
  db: Database,
  user: DbUser,
  accountName: string,
): Promise<void> {
  const rows = await asUser(
    db,
    user,
    (tx) =>
      tx.query(
        "delete from public.shared_keys where account_name = $1 returning account_name",
        [
          accountName,
        ],
      ),
  );
  if (rows.length === 0) throw new AppError("SHARED_KEY_NOT_FOUND");
}

/** The provider of the caller's shared key; SHARED_KEY_NOT_FOUND when not theirs. */
export async function sharedKeyProvider(
  db: Database,
  user: DbUser,
  accountName: string,
): Promise<Service> {
  const [row] = await asUser(db, user, (tx) =>
    tx.query<{ provider: Service }>(
      "select provider from public.shared_keys where account_name = $1",
      [accountName],
    ));
  if (!row) throw new AppError("SHARED_KEY_NOT_FOUND");
  return row.provider;
}

/** One update of the caller's shared key (`$1` is its name); SHARED_KEY_NOT_FOUND when not theirs. */
async function updateSharedKey(
  db: Database,
  user: DbUser,
  accountName: string,
  assignments: string,
  params: unknown[],
): Promise<SharedKeyRow> {
  const [row] = await asUser(db, user, (tx) =>
    tx.query<SharedKeyRow>(
      `update public.shared_keys set ${assignments}
        where account_name = $1 returning ${SHARED_KEY_COLUMNS}`,
      [accountName, ...params],
    ));
  if (!row) throw new AppError("SHARED_KEY_NOT_FOUND");
  return row;
}

/** Who may use the caller's shared key; a field left undefined keeps its value. */
export function setSharedKeyAccess(
  db: Database,
  user: DbUser,
  accountName: string,
  access: { is_public?: boolean; allowed_user_ids?: string[] },
): Promise<SharedKeyRow> {
  return updateSharedKey(
    db,
    user,
    accountName,
    "is_public = coalesce($2::boolean, is_public), allowed_user_ids = coalesce($3::text::uuid[], allowed_user_ids)",
    [
      access.is_public ?? null,
      access.allowed_user_ids ? `{${access.allowed_user_ids.join(",")}}` : null,
    ],
  );
}

/** Limits a shared key's owner sets: requests and provider-reported tokens per UTC day. */
const LIMIT_COLUMNS = [
  "daily_limit",
  "per_user_daily_limit",
  "daily_token_limit",
  "per_user_daily_token_limit",
] as const;

/** The caller's shared key's daily limits; undefined keeps a limit, null removes it. */
export function setSharedKeyLimits(
  db: Database,
  user: DbUser,
  accountName: string,
  limits: Partial<Record<(typeof LIMIT_COLUMNS)[number], number | null>>,
): Promise<SharedKeyRow> {
  return updateSharedKey(
    db,
    user,
    accountName,
    LIMIT_COLUMNS.map((column, i) =>
      `${column} = case when $${2 * i + 2}::boolean then $${2 * i + 3}::integer else ${column} end`
    ).join(", "),
    LIMIT_COLUMNS.flatMap((
      column,
    ) => [limits[column] !== undefined, limits[column] ?? null]),
  );
}

export interface SharedKeyUsageRow {
  user_id: string;
  day: string;
  requests: number;
  tokens: number;
}

/** Requests and tokens per user per UTC day on the caller's shared key in the last `days` days, newest first. */
export function sharedKeyUsage(
  db: Database,
  user: DbUser,
  accountName: string,
  days: number,
): Promise<SharedKeyUsageRow[]> {
  return asUser(db, user, (tx) =>
    tx.query<SharedKeyUsageRow>(
      `select u.user_id, to_char(u.day, 'YYYY-MM-DD') as day, u.requests,
              u.tokens::float8 as tokens
       from public.shared_key_usage as u
       join public.shared_keys as k on k.id = u.shared_key_id
      where k.account_name = $1 and k.owner_id = (select auth.uid())
        and u.day > (now() at time zone 'utc')::date - $2::integer
      order by u.day desc, u.requests desc`,
      [accountName, days],
    ));
}
