/**
 * The one state model of a provider key that the card's badge, its details and the panel's count
 * all read, derived from the status the server records (validation_status, is_active) and from
 * whether the statuses have loaded at all. Nothing here claims more than the last check showed:
 * only a key whose last check passed is "Connected".
 */
import type { ServiceStatus } from "./credentialsApi.ts";

export type KeyState =
  | "loading"
  | "load_error"
  | "not_set"
  | "incomplete"
  | "disabled"
  | "unchecked"
  | "working"
  | "rejected"
  | "unreachable"
  | "quota_exhausted";

/** How a state looks: the badge word, its tone, and the sentence under it. */
export interface KeyStateView {
  badge: string;
  tone: "ok" | "bad" | "warn" | "off";
  /** Whether the key counts in "N of 7 providers connected". */
  connected: boolean;
  /** The plural phrase in the summary ("2 rejected"), or null when the state is not listed there. */
  summary: string | null;
}

export const KEY_STATE_VIEWS: Record<KeyState, KeyStateView> = {
  loading: { badge: "Loading…", tone: "off", connected: false, summary: null },
  load_error: { badge: "Status unknown", tone: "warn", connected: false, summary: null },
  not_set: { badge: "Not set", tone: "off", connected: false, summary: null },
  incomplete: { badge: "Incomplete", tone: "warn", connected: false, summary: "incomplete" },
  disabled: { badge: "Turned off", tone: "off", connected: false, summary: "turned off" },
  unchecked: { badge: "Not tested", tone: "warn", connected: false, summary: "not tested" },
  working: { badge: "Connected", tone: "ok", connected: true, summary: null },
  rejected: { badge: "Rejected", tone: "bad", connected: false, summary: "rejected" },
  unreachable: { badge: "Could not check", tone: "warn", connected: false, summary: "could not be checked" },
  quota_exhausted: { badge: "Quota used up", tone: "bad", connected: false, summary: "out of quota" },
};

/**
 * What each validation status the server can record means. Statuses are matched by name so a
 * quota status (`quota_exceeded`, `quota_exhausted`, `insufficient_quota`) is never shown as
 * working; an unknown status is one we cannot vouch for, so it reads as "could not check".
 */
export function stateOfValidation(validationStatus: string | null | undefined): KeyState {
  if (validationStatus === null || validationStatus === undefined) return "unchecked";
  if (validationStatus === "valid") return "working";
  if (validationStatus === "invalid") return "rejected";
  if (/quota/.test(validationStatus)) return "quota_exhausted";
  return "unreachable";
}

/** The state of one service's key, given its status (absent until loaded) and the load outcome. */
export function keyStateOf(status: ServiceStatus | undefined, failedToLoad: boolean): KeyState {
  if (!status) return failedToLoad ? "load_error" : "loading";
  const hasKey = status.status.api_key === true;
  if (!status.configured) {
    return hasKey || status.status.base_url === true ? "incomplete" : "not_set";
  }
  if (status.is_active === false) return "disabled";
  return stateOfValidation(status.validation_status);
}

/** "1 of 7 providers connected." and, when some keys are not working, what they are. */
export function summaryOf(states: KeyState[]): string {
  const connected = states.filter((s) => KEY_STATE_VIEWS[s].connected).length;
  const others = new Map<string, number>();
  for (const state of states) {
    const phrase = KEY_STATE_VIEWS[state].summary;
    if (phrase) others.set(phrase, (others.get(phrase) ?? 0) + 1);
  }
  const rest = [...others].map(([phrase, n]) => `${n} ${phrase}`).join(", ");
  return `${connected} of ${states.length} providers connected${rest ? ` (${rest})` : ""}.`;
}
