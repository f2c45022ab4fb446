/**
 * Which key pays for a request: the one place that decides. The caller's LLM config mode governs
 * the provider it names; every other provider uses the caller's own key. A key serves someone
 * other than its owner only with the owner's explicit consent (a shared key's allow-list, an
 * owner-funded flow in `flowRuns.ts`), or through owner-name mode when the deployment turned it
 * on. There is never a fallback: a refused or missing key is an error, not another key.
 */
import type { AuthenticatedUser } from "../http/auth.ts";
import { missingKeyError, type StoredCredentials } from "../vault/keyReader.ts";
import { AppError } from "../core/errors.ts";
import type { Service } from "../contract/providers.ts";
import type { Runtime } from "../core/runtime.ts";
import { useSharedKey } from "./sharedKeys.ts";

/** Whose key it is, as reported in the `x-key-source` response header. */
export type KeySource = "user" | "owner" | "shared";

export interface ResolvedKey {
  credentials: StoredCredentials & { api_key: string };
  source: KeySource;
  /**
   * The team shared key that pays, when one does: the answer's tokens are charged to it
   * (`chargeSharedKey`), since its token limits decide the next call.
   */
  sharedKeyId?: string;
}

export interface ResolveOptions {
  /**
   * Upstream calls the request will make with the key (a batch of embeddings makes one per
   * chunk). A shared key counts each of them against its limits before any is made.
   */
  upstreamCalls?: number;
}

/** The key for `user` on `service`; throws `<SERVICE>_NOT_CONFIGURED` or a sharing error. */
export async function resolveProviderKey(
  rt: Runtime,
  user: AuthenticatedUser,
  service: Service,
  options: ResolveOptions = {},
): Promise<ResolvedKey> {
  const { credentials, mode, disabled } = await rt.vault.lookupContext(user.id, service);
  switch (mode.kind) {
    case "shared": {
      const use = await useSharedKey(
        rt,
        user,
        mode.accountName,
        service,
        options.upstreamCalls ?? 1,
      );
      return {
        credentials: { api_key: use.apiKey },
        source: "shared",
        sharedKeyId: use.sharedKeyId,
      };
    }
    case "owner_name": {
      if (!rt.config.allowOwnerNameSharing) throw new AppError("OWNER_NAME_SHARING_DISABLED");
      if (!mode.ownerNameKey) throw missingKeyError(service, false);
      return { credentials: { api_key: mode.ownerNameKey }, source: "shared" };
    }
    case "personal": {
      if (!credentials.api_key) throw missingKeyError(service, disabled);
      return { credentials: credentials as ResolvedKey["credentials"], source: "user" };
    }
  }
}
