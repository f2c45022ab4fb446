/**
 * Team shared keys (seed 004): one request's worth of a shared key, taken atomically in the
 * database (allow-list, per-user and total daily limits, usage count and audit in one round trip).
 */
import type { AuthenticatedUser } from "./auth.ts";
import { AppError } from "./errors.ts";
import type { Service } from "./providers.ts";
import type { Runtime } from "./runtime.ts";

export interface SharedKeyUse {
  apiKey: string;
  model: string | null;
  remainingForUser: number | null;
  remainingTotal: number | null;
}

interface UseRow {
  outcome: "ok" | "not_found" | "access_denied" | "limit_exceeded";
  secret: string | null;
  model: string | null;
  remaining_user: number | null;
  remaining_total: number | null;
}

/** Takes one use of `accountName` for `user`; throws SHARED_KEY_NOT_FOUND / _ACCESS_DENIED / _LIMIT_EXCEEDED. */
export async function useSharedKey(
  rt: Runtime,
  user: AuthenticatedUser,
  accountName: string,
  service: Service,
): Promise<SharedKeyUse> {
  const [row] = await rt.db.query<UseRow>(
    "select * from private.use_shared_key($1, $2::uuid, $3, $4, $5::integer, $6)",
    [
      accountName,
      user.id,
      service,
      rt.config.encryptionKey,
      rt.config.encryptionKeyVersion,
      rt.config.previousEncryptionKey,
    ],
  );
  switch (row?.outcome) {
    case "ok":
      return {
        apiKey: row.secret!,
        model: row.model,
        remainingForUser: row.remaining_user,
        remainingTotal: row.remaining_total,
      };
    case "access_denied":
      throw new AppError("SHARED_KEY_ACCESS_DENIED");
    case "limit_exceeded":
      throw new AppError("SHARED_KEY_LIMIT_EXCEEDED");
    default:
      throw new AppError("SHARED_KEY_NOT_FOUND");
  }
}
