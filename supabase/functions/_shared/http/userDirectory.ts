/**
 * Confirms that a verified token's user still exists. A signature proves the token was issued,
 * not that the account survived; a deleted user's token must get 401. Positive answers are cached
 * per isolate for the credential cache's bound (at most 10 s), so a warm request pays nothing.
 */
import type { Config } from "../core/config.ts";
import type { Database } from "../core/db.ts";
import { AppError, isAppError } from "../core/errors.ts";

export interface UserDirectory {
  /** Resolves when the user exists; throws UNAUTHORIZED, or CREDENTIALS_UNAVAILABLE on timeout. */
  confirm(userId: string): Promise<void>;
}

export function createUserDirectory(options: {
  db: Database;
  config: Pick<Config, "credentialCacheTtlMs" | "credentialLookupTimeoutMs">;
  now?: () => number;
  maxEntries?: number;
}): UserDirectory {
  const { db, config } = options;
  const now = options.now ?? (() => Date.now());
  const maxEntries = options.maxEntries ?? 50_000;
  const confirmedUntil = new Map<string, number>();
  const inFlight = new Map<string, Promise<void>>();

  async function check(userId: string): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AppError("CREDENTIALS_UNAVAILABLE")),
        config.credentialLookupTimeoutMs,
      );
    });
    try {
      const [row] = await Promise.race([
        db.query<{ user_exists: boolean }>(
          "select exists (select 1 from auth.users where id = $1::uuid) as user_exists",
          [userId],
        ),
        timeout,
      ]);
      if (!row?.user_exists) throw new AppError("UNAUTHORIZED");
    } catch (error) {
      throw isAppError(error) ? error : new AppError("CREDENTIALS_UNAVAILABLE", { cause: error });
    } finally {
      clearTimeout(timer);
    }
    if (confirmedUntil.size >= maxEntries) {
      confirmedUntil.delete(confirmedUntil.keys().next().value!);
    }
    confirmedUntil.set(userId, now() + config.credentialCacheTtlMs);
  }

  return {
    confirm(userId) {
      if ((confirmedUntil.get(userId) ?? 0) > now()) return Promise.resolve();
      let pending = inFlight.get(userId);
      if (!pending) {
        pending = check(userId).finally(() => inFlight.delete(userId));
        inFlight.set(userId, pending);
      }
      return pending;
    },
  };
}
