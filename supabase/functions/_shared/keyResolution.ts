/**
 * Which key pays for a request. Today: the caller's own key, nothing else. The sharing modes
 * (owner-funded flows, team shared keys, owner-name sharing) plug in here, each only with the
 * owner's explicit consent; there is never a fallback to a global or environment key.
 */
import type { AuthenticatedUser } from "./auth.ts";
import { requireApiKey } from "./credentials.ts";
import type { StoredCredentials } from "./credentialVault.ts";
import type { Service } from "./providers.ts";
import type { Runtime } from "./runtime.ts";

/** Whose key it is, as reported in the `x-key-source` response header. */
export type KeySource = "user" | "owner" | "shared";

export interface ResolvedKey {
  credentials: StoredCredentials & { api_key: string };
  source: KeySource;
}

/** The key for `user` on `service`; throws `<SERVICE>_NOT_CONFIGURED` when there is none. */
export async function resolveProviderKey(
  rt: Runtime,
  user: AuthenticatedUser,
  service: Service,
): Promise<ResolvedKey> {
  return { credentials: await requireApiKey(rt, user.id, service), source: "user" };
}
