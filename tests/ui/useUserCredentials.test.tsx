/**
 * useUserCredentials against a real supabase-js client and a real HTTP fake of credentials-manager.
 */
import { act, renderHook, waitFor } from "@testing-library/react";
import { createClient } from "@supabase/supabase-js";
import type { ReactNode } from "react";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { useUserCredentials } from "../../src/hooks/useUserCredentials.ts";
import { CredentialsError } from "../../src/lib/credentialsApi.ts";
import { SupabaseProvider } from "../../src/supabaseContext.tsx";
import { ACCEPTED_OPENAI_KEY, actions, type FakeCredentialsServer, startFakeCredentialsServer } from "./fakeCredentialsServer.ts";

let server: FakeCredentialsServer;

beforeAll(async () => {
  server = await startFakeCredentialsServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  // A fresh vault per test: remove whatever an earlier test stored.
  const client = server.client();
  for (const service of ["openai", "custom"]) {
    await client.functions.invoke("credentials-manager", { body: { action: "delete", service, key: "api_key" } });
  }
  server.requests.length = 0;
});

async function loadedHook() {
  const client = server.client();
  const hook = renderHook(() => useUserCredentials(client));
  await waitFor(() => expect(hook.result.current.credentialStatus.openai).toBeDefined());
  return hook;
}

async function rejection(promise: Promise<unknown>): Promise<CredentialsError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(CredentialsError);
    return error as CredentialsError;
  }
  throw new Error("expected the call to fail");
}

describe("useUserCredentials", () => {
  test("useUserCredentials does load every status through credentials-manager on mount", async () => {
    const client = server.client();
    const { result } = renderHook(() => useUserCredentials(client));
    expect(result.current.isLoading).toBe(true);
    await waitFor(() => expect(result.current.isLoading).toBe(false));
    expect(Object.keys(result.current.credentialStatus)).toHaveLength(7);
    expect(result.current.isServiceConfigured("openai")).toBe(false);
    expect(server.requests).toEqual([
      { path: "/functions/v1/credentials-manager", authorization: "Bearer user-token", body: { action: "list" } },
    ]);
  });

  test("setCredential does store the key and keep only its last four", async () => {
    const { result } = await loadedHook();
    await act(() => result.current.setCredential("openai", "sk-live-abcdef1234"));
    expect(result.current.isServiceConfigured("openai")).toBe(true);
    expect(result.current.credentialStatus.openai?.last_four).toBe("1234");
    expect(JSON.stringify(result.current.credentialStatus)).not.toContain("sk-live-abcdef1234");
    expect(server.requests.at(-1)?.body).toEqual({
      action: "set",
      service: "openai",
      key: "api_key",
      value: "sk-live-abcdef1234",
    });
  });

  test("setCredential does refuse a badly formatted key without sending it", async () => {
    const { result } = await loadedHook();
    const error = await rejection(result.current.setCredential("openai", "pk-wrong-prefix-123"));
    expect(error.code).toBe("INVALID_FORMAT");
    expect(error.message).toBe('OpenAI keys start with "sk-".');
    expect(actions(server)).toEqual(["list"]);
  });

  test("deleteCredential does leave the service not configured", async () => {
    const { result } = await loadedHook();
    await act(() => result.current.setCredential("openai", "sk-live-abcdef1234"));
    await act(() => result.current.deleteCredential("openai"));
    expect(result.current.isServiceConfigured("openai")).toBe(false);
    expect(result.current.credentialStatus.openai?.last_four).toBeNull();
  });

  test("validateCredential does report a key the provider rejects", async () => {
    const { result } = await loadedHook();
    await act(() => result.current.setCredential("openai", "sk-rejected-key-9999"));
    let outcome;
    await act(async () => {
      outcome = await result.current.validateCredential("openai");
    });
    expect(outcome).toMatchObject({ valid: false, validation_status: "invalid", error: { code: "OPENAI_INVALID_KEY" } });
    expect(result.current.credentialStatus.openai?.validation_status).toBe("invalid");
  });

  test("validateCredential does record a key the provider accepts", async () => {
    const { result } = await loadedHook();
    await act(() => result.current.setCredential("openai", ACCEPTED_OPENAI_KEY));
    await act(() => result.current.validateCredential("openai"));
    expect(result.current.credentialStatus.openai?.validation_status).toBe("valid");
    expect(result.current.credentialStatus.openai?.last_validated_at).toMatch(/^\d{4}-/);
  });

  test("useUserCredentials does turn the error envelope into a friendly message", async () => {
    const { result } = await loadedHook();
    server.failNext(503, { code: "CREDENTIALS_UNAVAILABLE", message: "server wording", recoverable: true });
    const unavailable = await rejection(result.current.getCredentialStatus("openai"));
    expect(unavailable).toMatchObject({ code: "CREDENTIALS_UNAVAILABLE", recoverable: true });
    expect(unavailable.message).toBe("Your stored keys could not be read right now. Try again in a moment.");

    const notConfigured = await rejection(result.current.validateCredential("gemini"));
    expect(notConfigured.code).toBe("GEMINI_NOT_CONFIGURED");
    expect(notConfigured.message).toBe("No Gemini key is saved yet. Add one below.");

    server.failNext(400, { code: "INVALID_REQUEST", message: "Base URL must use https.", recoverable: false });
    const invalid = await rejection(result.current.setCredential("custom", "http://x", "base_url"));
    expect(invalid.message).toBe("Base URL must use https.");
  });

  test("useUserCredentials does ask to sign in again when the session is rejected", async () => {
    const client = createClient(server.url, "anon-key", {
      auth: { persistSession: false, autoRefreshToken: false, storageKey: "expired" },
      global: { headers: { Authorization: "Bearer expired-token" } },
    });
    const { result } = renderHook(() => useUserCredentials(client));
    await waitFor(() => expect(result.current.loadError).not.toBeNull());
    expect(result.current.loadError?.code).toBe("UNAUTHORIZED");
    expect(result.current.loadError?.message).toBe("Your session has expired. Sign in again to manage your keys.");
    expect(result.current.isLoading).toBe(false);
  });

  test("useUserCredentials does report an unreachable server as a network error", async () => {
    const client = createClient("http://127.0.0.1:9", "anon-key", {
      auth: { persistSession: false, autoRefreshToken: false, storageKey: "unreachable" },
    });
    const { result } = renderHook(() => useUserCredentials(client));
    await waitFor(() => expect(result.current.loadError).not.toBeNull());
    expect(result.current.loadError?.code).toBe("NETWORK_ERROR");
  });

  test("useUserCredentials does take its client from SupabaseProvider", async () => {
    const client = server.client();
    const wrapper = ({ children }: { children: ReactNode }) => <SupabaseProvider client={client}>{children}</SupabaseProvider>;
    const { result } = renderHook(() => useUserCredentials(), { wrapper });
    await waitFor(() => expect(result.current.credentialStatus.custom).toBeDefined());
    expect(actions(server)).toEqual(["list"]);
  });

  test("useUserCredentials does refuse to run without any client", () => {
    expect(() => renderHook(() => useUserCredentials())).toThrow(/SupabaseProvider/);
  });
});
