/**
 * Friendly messages for error codes. The server's envelope already carries a message written
 * for people (from _shared/contract/errorCodes.ts); the codes below get a panel-specific wording because
 * the person can do something about them right here.
 */
import { PROVIDERS, SERVICES } from "../../supabase/functions/_shared/contract/providers.ts";

const PANEL_MESSAGES: Record<string, string> = {
  UNAUTHORIZED: "Your session has expired. Sign in again to manage your keys.",
  NETWORK_ERROR: "Could not reach the server. Check your connection and try again.",
  CREDENTIALS_UNAVAILABLE: "Your stored keys could not be read right now. Try again in a moment.",
  INTERNAL_ERROR: "Something went wrong on our side. Try again.",
  PAYLOAD_TOO_LARGE: "That value is too long.",
  OWNER_KEYS_NOT_ENABLED: "This flow does not run on its owner's keys. The owner can turn on owner-funded runs.",
  SHARED_KEY_ACCESS_DENIED: "You are not on this shared key's allow-list. Ask its owner to add your email or user id.",
  SHARED_KEY_LIMIT_EXCEEDED: "This shared key has used up its daily limit. Try again tomorrow, or use your own key.",
  SHARED_KEY_NOT_FOUND: "No shared key has that account name. Check the spelling with its owner.",
  OWNER_NAME_SHARING_DISABLED: "Sharing by owner name is turned off here. Use a shared key instead.",
  SHARE_TOKEN_INVALID: "This share link no longer works. Ask the owner for a new link.",
  RATE_LIMITED: "Too many runs in the last minute. Wait a moment and try again.",
  DAILY_QUOTA_EXCEEDED: "This flow has reached its daily run limit. Raise the limit or try again tomorrow.",
};

/** What a person reads for a provider-specific code, e.g. OPENAI_INVALID_KEY. */
function providerMessage(code: string): string | null {
  const service = SERVICES.find((s) => code.startsWith(`${s.toUpperCase()}_`));
  if (!service) return null;
  const label = PROVIDERS[service].label;
  const kind = code.slice(service.length + 1);
  switch (kind) {
    case "INVALID_KEY":
      return `${label} rejected this key. Check it, or create a new one and save it here.`;
    case "NOT_CONFIGURED":
      return `No ${label} key is saved yet. Add one below.`;
    case "RATE_LIMITED":
      return `${label} is rate limiting this key. Try again shortly.`;
    case "TIMEOUT":
      return `${label} did not answer in time. Try again.`;
    case "API_ERROR":
      return `${label} could not be reached or answered with an error. Try again in a moment.`;
    default:
      return null;
  }
}

/** The message to show for `code`; `serverMessage` is used when the panel has no better wording. */
export function friendlyMessage(code: string, serverMessage?: string): string {
  return PANEL_MESSAGES[code] ?? providerMessage(code) ?? serverMessage ??
    "Something went wrong. Try again.";
}
