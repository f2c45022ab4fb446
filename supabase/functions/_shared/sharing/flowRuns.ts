/**
 * Owner-funded runs of shared flows: the server, never the client, decides whether a
 * share token may spend the owner's keys, and counts runs atomically in the database.
 */
import { missingKeyError, type StoredCredentials } from "../vault/keyReader.ts";
import { AppError } from "../core/errors.ts";
import type { Service } from "../contract/providers.ts";
import type { Runtime } from "../core/runtime.ts";

export interface RunAdmission {
  flowId: string;
  ownerId: string;
  remainingMinute: number;
  remainingDay: number;
  /** The owner's max_tokens cap, to apply when the request names none. */
  maxTokensLimit: number | null;
}

/** What one call of a run asks for, checked against the owner's fixed settings on the flow. */
export interface RunCall {
  provider?: string;
  model?: string;
  maxTokens?: number | null;
}

interface AdmissionRow {
  outcome:
    | "ok"
    | "invalid_token"
    | "owner_keys_not_enabled"
    | "rate_limited"
    | "daily_quota_exceeded"
    | "flow_settings"
    | "run_not_yours"
    | "run_exhausted";
  flow_id: string | null;
  owner_id: string | null;
  retry_after_seconds: number | null;
  remaining_minute: number | null;
  remaining_day: number | null;
  max_tokens_limit: number | null;
}

/**
 * Owner-funded flows' `check_and_log_run`: admits one upstream call of a run (a run id already
 * admitted is the same run, for the collaborator who opened it, within its age and call limits) or
 * throws SHARE_TOKEN_INVALID, OWNER_KEYS_NOT_ENABLED, INVALID_REQUEST (the call breaks the flow's
 * fixed provider, model or max_tokens cap), FORBIDDEN (another collaborator's run id),
 * RUN_LIMIT_EXCEEDED, RATE_LIMITED (with Retry-After) or DAILY_QUOTA_EXCEEDED. One round trip; the
 * owner's consent is read afresh on every call.
 */
export async function checkAndLogRun(
  rt: Runtime,
  shareToken: string,
  runId: string,
  actorId: string,
  now: Date | null = null,
  call: RunCall = {},
): Promise<RunAdmission> {
  const [row] = await rt.db.query<AdmissionRow>(
    `select * from private.check_and_log_run($1, $2::uuid, $3::uuid, $4, $5, $6::integer,
                                            $7::timestamptz)`,
    [
      shareToken,
      runId,
      actorId,
      call.provider ?? null,
      call.model ?? null,
      call.maxTokens ?? null,
      now?.toISOString() ?? null,
    ],
  );
  const retryAfter = { "retry-after": String(row?.retry_after_seconds ?? 60) };
  switch (row?.outcome) {
    case "ok":
      return {
        flowId: row.flow_id!,
        ownerId: row.owner_id!,
        remainingMinute: row.remaining_minute!,
        remainingDay: row.remaining_day!,
        maxTokensLimit: row.max_tokens_limit,
      };
    case "owner_keys_not_enabled":
      throw new AppError("OWNER_KEYS_NOT_ENABLED");
    case "flow_settings":
      throw new AppError("INVALID_REQUEST", {
        message: "The flow's owner fixed the provider, the model or a max_tokens cap; " +
          "this call does not match them.",
      });
    case "run_not_yours":
      throw new AppError("FORBIDDEN", {
        message: "This run id belongs to another collaborator. Start your own run.",
      });
    case "run_exhausted":
      throw new AppError("RUN_LIMIT_EXCEEDED");
    case "rate_limited":
      throw new AppError("RATE_LIMITED", {
        headers: { ...retryAfter, "x-ratelimit-remaining-minute": "0" },
      });
    case "daily_quota_exceeded":
      throw new AppError("DAILY_QUOTA_EXCEEDED", {
        headers: { ...retryAfter, "x-ratelimit-remaining-day": "0" },
      });
    default:
      throw new AppError("SHARE_TOKEN_INVALID");
  }
}

/** The owner's own key for a collaborator's admitted run; `<SERVICE>_NOT_CONFIGURED` when none. */
export async function ownerKeyForRun(
  rt: Runtime,
  admission: RunAdmission,
  service: Service,
): Promise<StoredCredentials & { api_key: string }> {
  const { credentials, disabled } = await rt.vault.lookupContext(admission.ownerId, service);
  if (!credentials.api_key) throw missingKeyError(service, disabled, "The flow's owner");
  return credentials as StoredCredentials & { api_key: string };
}
