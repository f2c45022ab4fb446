/**
 * The per-user key helpers: `getOpenAIApiKey(authHeader)` and one per provider. Each verifies the
 * caller's JWT and returns that user's own key, or `null`: no key stored, lookup timed out,
 * database down, or a bad token. There is no fallback; the environment is never read for a key.
 *
 * Handlers that must tell those cases apart (503 vs 400) call `requireApiKey` instead.
 */
import { AppError } from "../core/errors.ts";
import { describeError, log } from "../core/log.ts";
import type { Service } from "../contract/providers.ts";
import { resolveRuntime, runtimeFromEnv, type RuntimeSource } from "../core/runtime.ts";
import { missingKeyError, type StoredCredentials } from "./keyReader.ts";

/** The user's credentials for `service`; throws `<SERVICE>_NOT_CONFIGURED` when there is no key. */
export async function requireApiKey(
  source: RuntimeSource,
  userId: string,
  service: Service,
): Promise<StoredCredentials & { api_key: string }> {
  const { credentials, disabled } = await resolveRuntime(source).vault.lookupContext(
    userId,
    service,
  );
  if (!credentials.api_key) throw missingKeyError(service, disabled);
  return credentials as StoredCredentials & { api_key: string };
}

/** The caller's key for `service`, or null. Logs a warning (never the key) when the lookup failed. */
export async function getUserApiKey(
  authHeader: string | null,
  service: Service,
  source: RuntimeSource = runtimeFromEnv,
): Promise<string | null> {
  try {
    const runtime = resolveRuntime(source);
    // verifyToken, not authenticate: the vault lookup confirms the user exists in the same round trip.
    const user = await runtime.verifyToken(authHeader);
    return (await runtime.vault.lookup(user.id, service)).api_key ?? null;
  } catch (error) {
    if (!(error instanceof AppError && error.code === "UNAUTHORIZED")) {
      log.warn("credential helper returned null", { service, error: describeError(error) });
    }
    return null;
  }
}

type KeyGetter = (authHeader: string | null, source?: RuntimeSource) => Promise<string | null>;
const getterFor = (service: Service): KeyGetter => (authHeader, source) =>
  getUserApiKey(authHeader, service, source);

export const getOpenAIApiKey = getterFor("openai");
export const getGeminiApiKey = getterFor("gemini");
export const getAnthropicApiKey = getterFor("anthropic");
export const getManusApiKey = getterFor("manus");
export const getPerplexityApiKey = getterFor("perplexity");
export const getOpenRouterApiKey = getterFor("openrouter");
export const getCustomApiKey = getterFor("custom");
