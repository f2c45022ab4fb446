/**
 * Team shared keys: one request's worth of a shared key, taken atomically in the
 * database (allow-list, per-user and total daily limits on calls and on tokens, usage count and
 * audit in one round trip). The answers' tokens are added afterwards (`chargeSharedKey` in
 * upstream/usageRecorder.ts).
 */
import type { AuthenticatedUser } from "../http/auth.ts";
import { AppError } from "../core/errors.ts";
import { keyringParam } from "../vault/keyring.ts";
import type { Service } from "../contract/providers.ts";
import type { Runtime } from "../core/runtime.ts";

export interface SharedKeyUse {
  /** The key's id, which the answer's tokens are charged to. */
  sharedKeyId: string;
  apiKey: string;
  model: string | null;
  remainingForUser: number | null;
  remainingTotal: number | null;
}

interface UseRow {
  outcome: "ok" | "not_found" | "limit_exceeded" | "token_limit_exceeded" | "unavailable";
  shared_key_id: string | null;
  secret: string | null;
  model: string | null;
  remaining_user: number | null;
  remaining_total: number | null;
}

/**
 * Takes `calls` uses of `accountName` for `user`, one per upstream call the request will make,
 * refused whole when they would pass a limit on calls, or when the tokens used today already
 * reached a token limit. Throws SHARED_KEY_NOT_FOUND (unknown, or not on the allow-list: the same
 * answer, so names cannot be enumerated), SHARED_KEY_LIMIT_EXCEEDED, or CREDENTIALS_UNAVAILABLE
 * when the stored key does not open.
 */
export async function useSharedKey(
  rt: Runtime,
  user: AuthenticatedUser,
  accountName: string,
  service: Service,
  calls = 1,
): Promise<SharedKeyUse> {
  const [row] = await rt.db.query<UseRow>(
    "select * from private.use_shared_key($1, $2::uuid, $3, $4::text::jsonb, $5::integer)",
    [accountName, user.id, service, keyringParam(rt.config), calls],
  );
  switch (row?.outcome) {
    case "ok":
      return {
        sharedKeyId: row.shared_key_id!,
        apiKey: row.secret!,
        model: row.model,
        remainingForUser: row.remaining_user,
        remainingTotal: row.remaining_total,
      };
    case "unavailable":
      throw new AppError("CREDENTIALS_UNAVAILABLE", {
        cause: new Error("the shared key's ciphertext does not open"),
      });
    case "limit_exceeded":
      throw new AppError("SHARED_KEY_LIMIT_EXCEEDED");
    case "token_limit_exceeded":
      throw new AppError("SHARED_KEY_LIMIT_EXCEEDED", {
        message: "This shared key has reached its daily token limit. Try again tomorrow.",
      });
    default:
      throw new AppError("SHARED_KEY_NOT_FOUND");
  }
}
