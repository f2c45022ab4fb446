/**
 * useUserCredentials: the signed-in user's provider keys, through the credentials-manager edge
 * function. Keys only ever travel in the request body of `set`; the hook keeps statuses (last four,
 * validation results), never a key.
 */
import type { PanelClient } from "../lib/panelClient.ts";
import { useCallback, useEffect, useRef, useState } from "react";
import {
  apiKeyFormatProblem,
  type CredentialKey,
  type Service,
} from "../../supabase/functions/_shared/contract/providers.ts";
import {
  callCredentials,
  CredentialsError,
  type KeyTestResult,
  type ServiceStatus,
  type ValidationResult,
} from "../lib/credentialsApi.ts";
import { useSupabaseClient } from "../supabaseContext.tsx";

export type CredentialAction = "load" | "set" | "delete" | "validate" | "test" | "toggle";

export type CredentialStatusMap = Partial<Record<Service, ServiceStatus>>;

export interface UseUserCredentials {
  /** Last known status per service; empty until the first load finishes. */
  credentialStatus: CredentialStatusMap;
  /** Re-reads one service (get_status) or all of them (list). */
  getCredentialStatus(service?: Service): Promise<CredentialStatusMap>;
  /** Checks the format, then stores `value`; resolves with the new status. Never keeps the value. */
  setCredential(service: Service, value: string, key?: CredentialKey): Promise<ServiceStatus>;
  /** Removes a key (on `custom`, the api_key removes the whole endpoint). */
  deleteCredential(service: Service, key?: CredentialKey): Promise<ServiceStatus>;
  /** True when every value the service needs is stored. */
  isServiceConfigured(service: Service): boolean;
  /** Asks the provider whether the stored key works; the result is also stored. */
  validateCredential(service: Service): Promise<ValidationResult>;
  /** Asks the provider whether a key that is not saved works; nothing is stored. */
  testCredential(service: Service, value: string, baseUrl?: string): Promise<KeyTestResult>;
  /** Turns a stored key off (never used, kept) or back on. */
  setCredentialActive(service: Service, active: boolean): Promise<ServiceStatus>;
  /** True once a load has answered; until then statuses are unknown, never "not connected". */
  hasLoaded: boolean;
  /** True while any call is in flight. */
  isLoading: boolean;
  /** The action in flight per service, for per-section loading states. */
  pending: Partial<Record<Service, CredentialAction>>;
  /** The last load failure (action failures are thrown to the caller instead). */
  loadError: CredentialsError | null;
}

export interface UseUserCredentialsOptions {
  /** Load every status on mount (default true). */
  loadOnMount?: boolean;
}

/** Manages the signed-in user's keys; the client comes from the argument or a SupabaseProvider. */
export function useUserCredentials(
  client?: PanelClient | null,
  options: UseUserCredentialsOptions = {},
): UseUserCredentials {
  const supabase = useSupabaseClient(client);
  const loadOnMount = options.loadOnMount ?? true;
  const [credentialStatus, setStatus] = useState<CredentialStatusMap>({});
  const [pending, setPending] = useState<Partial<Record<Service, CredentialAction>>>({});
  const [inFlight, setInFlight] = useState(0);
  const [loadError, setLoadError] = useState<CredentialsError | null>(null);
  const [hasLoaded, setHasLoaded] = useState(false);
  const mounted = useRef(true);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  /** Runs one call with the loading counters around it. */
  const track = useCallback(async <T,>(
    service: Service | null,
    action: CredentialAction,
    run: () => Promise<T>,
  ): Promise<T> => {
    setInFlight((n) => n + 1);
    if (service) setPending((p) => ({ ...p, [service]: action }));
    try {
      return await run();
    } finally {
      if (mounted.current) {
        setInFlight((n) => n - 1);
        if (service) {
          setPending((p) => {
            const next = { ...p };
            delete next[service];
            return next;
          });
        }
      }
    }
  }, []);

  const remember = useCallback((status: ServiceStatus) => {
    if (mounted.current) setStatus((s) => ({ ...s, [status.service]: toStatus(status) }));
  }, []);

  const getCredentialStatus = useCallback(async (service?: Service) => {
    return await track(service ?? null, "load", async () => {
      try {
        let fresh: CredentialStatusMap;
        if (service) {
          const status = await callCredentials<ServiceStatus>(supabase, { action: "get_status", service });
          fresh = { [service]: toStatus(status) };
        } else {
          const body = await callCredentials<{ services: CredentialStatusMap }>(supabase, { action: "list" });
          fresh = Object.fromEntries(
            Object.entries(body.services ?? {}).map(([name, status]) => [name, toStatus(status!)]),
          );
        }
        if (mounted.current) {
          setStatus((s) => ({ ...s, ...fresh }));
          setLoadError(null);
          if (!service) setHasLoaded(true);
        }
        return fresh;
      } catch (error) {
        if (mounted.current && error instanceof CredentialsError) setLoadError(error);
        throw error;
      }
    });
  }, [supabase, track]);

  const setCredential = useCallback(
    async (service: Service, rawValue: string, key: CredentialKey = "api_key") => {
      // A pasted key often carries a trailing newline or space: it is never part of the key.
      const value = rawValue.trim();
      if (key === "api_key") {
        const problem = apiKeyFormatProblem(service, value);
        if (problem) throw new CredentialsError("INVALID_FORMAT", problem);
      }
      return await track(service, "set", async () => {
        const status = await callCredentials<ServiceStatus>(supabase, { action: "set", service, key, value });
        remember(status);
        return status;
      });
    },
    [supabase, track, remember],
  );

  const deleteCredential = useCallback(
    async (service: Service, key: CredentialKey = "api_key") =>
      await track(service, "delete", async () => {
        const status = await callCredentials<ServiceStatus>(supabase, { action: "delete", service, key });
        remember(status);
        return status;
      }),
    [supabase, track, remember],
  );

  const validateCredential = useCallback(
    async (service: Service) =>
      await track(service, "validate", async () => {
        const result = await callCredentials<ValidationResult>(supabase, { action: "validate", service });
        remember(result);
        return result;
      }),
    [supabase, track, remember],
  );

  const testCredential = useCallback(
    async (service: Service, rawValue: string, baseUrl?: string) => {
      const value = rawValue.trim();
      const problem = apiKeyFormatProblem(service, value);
      if (problem) throw new CredentialsError("INVALID_FORMAT", problem);
      return await track(service, "test", () =>
        callCredentials<KeyTestResult>(supabase, {
          action: "test",
          service,
          value,
          ...(baseUrl ? { base_url: baseUrl } : {}),
        }));
    },
    [supabase, track],
  );

  const setCredentialActive = useCallback(
    async (service: Service, active: boolean) =>
      await track(service, "toggle", async () => {
        const status = await callCredentials<ServiceStatus>(supabase, { action: "set_active", service, is_active: active });
        remember(status);
        return status;
      }),
    [supabase, track, remember],
  );

  const isServiceConfigured = useCallback(
    (service: Service) => credentialStatus[service]?.configured === true && credentialStatus[service]?.is_active !== false,
    [credentialStatus],
  );

  useEffect(() => {
    if (loadOnMount) getCredentialStatus().catch(() => {/* kept in loadError */});
  }, [loadOnMount, getCredentialStatus]);

  return {
    credentialStatus,
    getCredentialStatus,
    setCredential,
    deleteCredential,
    isServiceConfigured,
    validateCredential,
    testCredential,
    setCredentialActive,
    hasLoaded,
    isLoading: inFlight > 0,
    pending,
    loadError,
  };
}

/** Keeps only the status fields (drops `ok`, `removed`, `valid`...) so the map has one shape. */
function toStatus(status: ServiceStatus): ServiceStatus {
  return {
    service: status.service,
    configured: status.configured,
    status: status.status,
    last_four: status.last_four,
    updated_at: status.updated_at,
    last_validated_at: status.last_validated_at,
    validation_status: status.validation_status,
    last_used_at: status.last_used_at,
    created_at: status.created_at ?? null,
    is_active: status.is_active ?? true,
    base_url: status.base_url ?? null,
    ...(status.usage ? { usage: status.usage } : {}),
  };
}
