/**
 * Writes and status reads on a user's own credentials. Reads run as the `authenticated` role with
 * the caller's claims (`asUser`), so row level security decides whose rows they see. Writes go
 * through the server's definer functions in `private` with the verified user id (`forUser`): no
 * client role writes ciphertext, last four, validation results or audit rows. None of these
 * statements can read the ciphertext.
 */
import { asUser, type Database, type DbUser, forUser } from "../core/db.ts";
import { type KeyringConfig, keyringParam } from "./keyring.ts";
import type { CredentialKey, Service } from "../contract/providers.ts";
import type {
  CredentialEvent,
  KeyUsage,
  ServiceStatus,
  ValidationStatus,
} from "../contract/keyStatus.ts";

export interface CredentialRow {
  service: Service;
  credential_key: CredentialKey;
  last_four: string;
  updated_at: Date;
  last_validated_at: Date | null;
  validation_status: ValidationStatus | null;
  last_used_at: Date | null;
  created_at: Date;
  is_active: boolean;
}

export type { ServiceStatus };

const STATUS_COLUMNS = `service, credential_key, last_four, updated_at, last_validated_at,
  validation_status, last_used_at, created_at, is_active`;

/** What a status read learns besides the rows: the usage of each service's own key. */
export interface StatusExtras {
  usage: Partial<Record<Service, KeyUsage>>;
  /** The saved custom base URL (decrypted by the vault; a URL, not a key). */
  baseUrl?: string | null;
}

interface UsageRow {
  service: Service;
  requests_today: number;
  tokens_today: number;
  requests_30d: number;
  tokens_30d: number;
}

// Requests and tokens that went through the caller's own key per service (key_source 'user'),
// today (UTC) and over the 30 days up to today. RLS limits usage_daily to the caller's rows.
const USAGE_SQL = `with today as (select (now() at time zone 'utc')::date as day)
  select u.service,
         coalesce(sum(u.request_count) filter (where u.day = today.day), 0)::float8 as requests_today,
         coalesce(sum(u.total_tokens) filter (where u.day = today.day), 0)::float8 as tokens_today,
         coalesce(sum(u.request_count), 0)::float8 as requests_30d,
         coalesce(sum(u.total_tokens), 0)::float8 as tokens_30d
    from public.usage_daily as u, today
   where u.key_source = 'user' and u.day > today.day - 30 and ($1::text is null or u.service = $1)
   group by u.service`;

const NO_USAGE: KeyUsage = {
  today: { requests: 0, tokens: 0 },
  last_30_days: { requests: 0, tokens: 0 },
};

const iso = (
  value: Date | string | null,
) => (value === null ? null : new Date(value).toISOString());

/** Summarizes one service's rows the way the panel shows it. Never includes a secret. */
export function summarize(
  service: Service,
  rows: CredentialRow[],
  extras: StatusExtras = { usage: {} },
): ServiceStatus {
  const own = rows.filter((row) => row.service === service);
  const apiKey = own.find((row) => row.credential_key === "api_key") ?? null;
  const status: ServiceStatus["status"] = { api_key: apiKey !== null };
  if (service === "custom") status.base_url = own.some((row) => row.credential_key === "base_url");
  return {
    service,
    configured: Object.values(status).every(Boolean),
    status,
    last_four: apiKey?.last_four ?? null,
    updated_at: iso(apiKey?.updated_at ?? null),
    last_validated_at: iso(apiKey?.last_validated_at ?? null),
    validation_status: apiKey?.validation_status ?? null,
    last_used_at: iso(apiKey?.last_used_at ?? null),
    created_at: iso(apiKey?.created_at ?? null),
    is_active: apiKey?.is_active ?? true,
    ...(service === "custom" ? { base_url: extras.baseUrl ?? null } : {}),
    usage: extras.usage[service] ?? NO_USAGE,
  };
}

/**
 * Seals and upserts one value (through the server: no client role writes ciphertext). A new
 * value clears its validation result; a new `base_url` clears the service's key check too
 * (`private.store_credential`, 20261201120000_validation_outcomes.sql).
 */
export async function storeCredential(
  db: Database,
  user: DbUser,
  config: KeyringConfig,
  service: Service,
  key: CredentialKey,
  value: string,
): Promise<void> {
  const lastFour = key === "api_key" ? value.slice(-4) : "";
  await forUser(db, user, (tx) =>
    tx.query(
      "select private.store_credential($1::uuid, $2, $3, $4, $5, $6::text::jsonb)",
      [user.id, service, key, value, lastFour, keyringParam(config)],
    ));
}

/** Deletes one value (or, with key `api_key` on `custom`, the whole endpoint). Returns rows removed. */
export async function deleteCredential(
  db: Database,
  user: DbUser,
  service: Service,
  key: CredentialKey,
): Promise<number> {
  const keys = service === "custom" && key === "api_key" ? ["api_key", "base_url"] : [key];
  const rows = await forUser(db, user, (tx) =>
    tx.query<{ removed: number }>(
      "select private.delete_credentials($1::uuid, $2, $3::text::text[]) as removed",
      [user.id, service, `{${keys.join(",")}}`],
    ));
  return rows[0]?.removed ?? 0;
}

/** The caller's rows and their keys' usage, optionally for one service, in one transaction. */
export async function readStatusRows(
  db: Database,
  user: DbUser,
  service?: Service,
): Promise<{ rows: CredentialRow[]; usage: StatusExtras["usage"] }> {
  return await asUser(db, user, async (tx) => {
    const rows = await tx.query<CredentialRow>(
      `select ${STATUS_COLUMNS} from public.user_credentials
        where ($1::text is null or service = $1)`,
      [service ?? null],
    );
    const usage: StatusExtras["usage"] = {};
    for (const row of await tx.query<UsageRow>(USAGE_SQL, [service ?? null])) {
      usage[row.service] = {
        today: { requests: row.requests_today, tokens: row.tokens_today },
        last_30_days: { requests: row.requests_30d, tokens: row.tokens_30d },
      };
    }
    return { rows, usage };
  });
}

/** Turns the caller's api_key for `service` off (kept, never used) or on; records the switch. */
export async function setCredentialActive(
  db: Database,
  user: DbUser,
  service: Service,
  active: boolean,
): Promise<number> {
  const rows = await forUser(db, user, (tx) =>
    tx.query<{ changed: number }>(
      "select private.set_credential_active($1::uuid, $2, $3) as changed",
      [user.id, service, active],
    ));
  return rows[0]?.changed ?? 0;
}

/** Records the outcome of a key check on the caller's api_key row (server-side only). */
export async function recordValidation(
  db: Database,
  user: DbUser,
  service: Service,
  status: ValidationStatus,
): Promise<void> {
  await forUser(
    db,
    user,
    (tx) =>
      tx.query("select private.record_validation($1::uuid, $2, $3)", [user.id, service, status]),
  );
}

/** The audit trail of the caller's keys, newest first (RLS: events whose owner is the caller). */
export async function readEvents(
  db: Database,
  user: DbUser,
  limit: number,
): Promise<CredentialEvent[]> {
  const rows = await asUser(db, user, (tx) =>
    tx.query<CredentialEvent & { created_at: Date }>(
      `select id::integer as id, created_at, actor_id, service, event, via, detail
         from public.credential_events order by created_at desc, id desc limit $1::integer`,
      [limit],
    ));
  return rows.map((row) => ({ ...row, created_at: new Date(row.created_at).toISOString() }));
}
