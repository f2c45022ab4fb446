/**
 * The wire contract of the credentials-manager edge function, and the one function that calls it
 * through `supabase.functions.invoke`. Errors come back as `CredentialsError` with a message a
 * person can act on; nothing here ever logs or stores a key.
 */
import type { PanelClient } from "./panelClient.ts";
import { FunctionsFetchError, FunctionsHttpError, FunctionsRelayError } from "@supabase/functions-js";
import type { ServiceStatus, ValidationStatus } from "../../supabase/functions/_shared/contract/keyStatus.ts";
import type { CredentialKey, Service } from "../../supabase/functions/_shared/contract/providers.ts";
import { friendlyMessage } from "./errorMessages.ts";

export const CREDENTIALS_FUNCTION = "credentials-manager";

export type { ServiceStatus, ValidationStatus };

/** The server's error envelope body. */
export interface ErrorBody {
  code: string;
  message: string;
  recoverable: boolean;
}

/** What `validate` answers: the refreshed status plus the outcome of the check. */
export interface ValidationResult extends ServiceStatus {
  valid: boolean;
  upstream_status: number | null;
  error?: ErrorBody;
}

/** What `test` answers for a key that is not stored: the provider's verdict, nothing saved. */
export interface KeyTestResult {
  service: Service;
  valid: boolean;
  validation_status: ValidationStatus;
  upstream_status: number | null;
  error?: ErrorBody;
}

export type CredentialsRequest =
  | { action: "set"; service: Service; key: CredentialKey; value: string }
  | { action: "delete"; service: Service; key: CredentialKey }
  | { action: "get_status"; service: Service }
  | { action: "list" }
  | { action: "validate"; service: Service }
  | { action: "test"; service: Service; value: string; base_url?: string }
  | { action: "set_active"; service: Service; is_active: boolean }
  | { action: "events"; limit?: number };

/** A failed call, with the server's code (or a client-side one) and a friendly message. */
export class CredentialsError extends Error {
  readonly code: string;
  readonly recoverable: boolean;

  constructor(code: string, message: string, recoverable = false) {
    super(message);
    this.name = "CredentialsError";
    this.code = code;
    this.recoverable = recoverable;
  }
}

/** Reads the `{"error": {...}}` envelope out of a FunctionsHttpError's response, if there is one. */
async function envelopeOf(error: FunctionsHttpError): Promise<Partial<ErrorBody> | null> {
  const response = error.context as Response | undefined;
  if (!response || typeof response.json !== "function") return null;
  try {
    const body = await response.clone().json();
    return body && typeof body === "object" && body.error && typeof body.error === "object"
      ? body.error
      : null;
  } catch {
    return null;
  }
}

/** Turns whatever `functions.invoke` reported into a CredentialsError. */
export async function toCredentialsError(error: unknown): Promise<CredentialsError> {
  if (error instanceof CredentialsError) return error;
  if (error instanceof FunctionsHttpError) {
    const envelope = await envelopeOf(error);
    const status = (error.context as Response | undefined)?.status;
    const code = envelope?.code ?? (status === 401 ? "UNAUTHORIZED" : "INTERNAL_ERROR");
    return new CredentialsError(
      code,
      friendlyMessage(code, envelope?.message),
      envelope?.recoverable ?? true,
    );
  }
  if (error instanceof FunctionsFetchError || error instanceof FunctionsRelayError) {
    return new CredentialsError("NETWORK_ERROR", friendlyMessage("NETWORK_ERROR"), true);
  }
  return new CredentialsError("INTERNAL_ERROR", friendlyMessage("INTERNAL_ERROR"), true);
}

/** One call to credentials-manager; resolves with the JSON body or throws CredentialsError. */
export async function callCredentials<T>(client: PanelClient, body: CredentialsRequest): Promise<T> {
  let result;
  try {
    result = await client.functions.invoke<T>(CREDENTIALS_FUNCTION, { body, method: "POST" });
  } catch (error) {
    throw await toCredentialsError(error);
  }
  if (result.error) throw await toCredentialsError(result.error);
  if (result.data === null || typeof result.data !== "object") {
    throw new CredentialsError("INTERNAL_ERROR", friendlyMessage("INTERNAL_ERROR"), true);
  }
  return result.data;
}
