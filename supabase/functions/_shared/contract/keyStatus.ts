/**
 * The status of a user's credentials as credentials-manager reports it: the wire contract the
 * functions and the React panel share. Types only, no imports but providers.ts, so the panel can
 * import it too. Never contains a secret.
 */
import type { CredentialKey, Service } from "./providers.ts";

/**
 * The outcome of the last key check. `invalid`: the provider refused the key. `quota_exceeded`:
 * the key is recognised but its account has no credit or quota left (add credit, not a new key).
 * `unreachable`: the check said nothing about the key (network failure, timeout, outage, rate
 * limit).
 */
export type ValidationStatus = "valid" | "invalid" | "quota_exceeded" | "unreachable";

/** Every validation status, in the order a panel might list them. */
export const VALIDATION_STATUSES: readonly ValidationStatus[] = [
  "valid",
  "invalid",
  "quota_exceeded",
  "unreachable",
];

/** One service as the server summarizes it. */
export interface ServiceStatus {
  service: Service;
  configured: boolean;
  status: Partial<Record<CredentialKey, boolean>>;
  last_four: string | null;
  updated_at: string | null;
  last_validated_at: string | null;
  validation_status: ValidationStatus | null;
  last_used_at: string | null;
  /** When the api_key was first stored. */
  created_at?: string | null;
  /** False when the owner turned the key off without deleting it: it is never used then. */
  is_active?: boolean;
  /** The saved base URL (only `custom` has one); a URL, never a key. */
  base_url?: string | null;
  /** Requests and tokens through this key, from the usage the server records. */
  usage?: KeyUsage;
}

/** Requests and tokens one key served: today (UTC) and over the last 30 days including today. */
export interface KeyUsage {
  today: { requests: number; tokens: number };
  last_30_days: { requests: number; tokens: number };
}

/** One audit event on the caller's keys, as credentials-manager's `events` action lists it. */
export interface CredentialEvent {
  id: number;
  created_at: string;
  actor_id: string | null;
  /** The actor's email, added by the server for the owner's own audit trail. */
  actor_email?: string | null;
  service: string;
  event: string;
  via: string | null;
  detail: Record<string, unknown>;
}
