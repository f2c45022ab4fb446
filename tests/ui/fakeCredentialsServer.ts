/**
 * A real HTTP server speaking credentials-manager's contract (the same actions, status shapes and
 * error envelopes as supabase/functions/credentials-manager/handler.ts), kept in memory. It records
 * every request so tests can assert what the panel sent, and what it did not send.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { apiKeyFormatProblem, isService, PROVIDERS, SERVICES, type Service } from "../../supabase/functions/_shared/contract/providers.ts";

export const ACCEPTED_OPENAI_KEY = "sk-test-accepted-0001";

export interface RecordedRequest {
  path: string;
  authorization: string | null;
  body: Record<string, unknown>;
}

interface Stored {
  api_key?: string;
  base_url?: string;
  last_validated_at?: string;
  validation_status?: "valid" | "invalid";
  created_at?: string;
  is_active?: boolean;
}

export interface FakeCredentialsServer {
  url: string;
  requests: RecordedRequest[];
  /** Makes the next request fail with this status and error envelope. */
  failNext(status: number, error: { code: string; message: string; recoverable: boolean }): void;
  /** Holds every answer until the returned function is called (to observe loading states). */
  hold(): () => void;
  /** A real supabase-js client pointed at this server with a user token. */
  client(): SupabaseClient;
  close(): Promise<void>;
}

function summarize(service: Service, stored: Stored | undefined) {
  const status: Record<string, boolean> = { api_key: stored?.api_key !== undefined };
  if (service === "custom") status.base_url = stored?.base_url !== undefined;
  return {
    service,
    configured: Object.values(status).every(Boolean),
    status,
    last_four: stored?.api_key?.slice(-4) ?? null,
    updated_at: stored?.api_key ? new Date().toISOString() : null,
    last_validated_at: stored?.last_validated_at ?? null,
    validation_status: stored?.validation_status ?? null,
    last_used_at: null,
    created_at: stored?.api_key ? stored.created_at ?? null : null,
    is_active: stored?.is_active ?? true,
    ...(service === "custom" ? { base_url: stored?.base_url ?? null } : {}),
  };
}

async function readBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return {};
  }
}

export async function startFakeCredentialsServer(): Promise<FakeCredentialsServer> {
  const vault = new Map<Service, Stored>();
  const requests: RecordedRequest[] = [];
  let nextFailure: { status: number; error: object } | null = null;
  let gate: Promise<void> | null = null;

  const server: Server = createServer(async (request, response) => {
    const send = (status: number, body: unknown) => {
      response.writeHead(status, {
        "content-type": "application/json",
        "access-control-allow-origin": "*",
        "access-control-allow-headers": "authorization, x-client-info, apikey, content-type",
      });
      response.end(JSON.stringify(body));
    };
    if (request.method === "OPTIONS") return send(204, null);
    const body = await readBody(request);
    requests.push({ path: request.url ?? "", authorization: request.headers.authorization ?? null, body });
    if (gate) await gate;
    if (request.url !== "/functions/v1/credentials-manager") {
      return send(404, { error: { code: "NOT_FOUND", message: "Not found.", recoverable: false } });
    }
    if (nextFailure) {
      const failure = nextFailure;
      nextFailure = null;
      return send(failure.status, { error: failure.error });
    }
    if (request.headers.authorization !== "Bearer user-token") {
      return send(401, {
        error: { code: "UNAUTHORIZED", message: "Sign in again: the request had no valid user session.", recoverable: false },
      });
    }
    const service = body.service;
    const invalid = (message: string) => send(400, { error: { code: "INVALID_REQUEST", message, recoverable: false } });
    if (body.action !== "list" && !isService(service)) return invalid("service: invalid option");
    const svc = service as Service;
    switch (body.action) {
      case "list":
        return send(200, { services: Object.fromEntries(SERVICES.map((s) => [s, summarize(s, vault.get(s))])) });
      case "get_status":
        return send(200, summarize(svc, vault.get(svc)));
      case "set": {
        const key = (body.key as string | undefined) ?? "api_key";
        const value = String(body.value ?? "");
        if (key === "api_key") {
          const problem = apiKeyFormatProblem(svc, value);
          if (problem) return invalid(problem);
          const previous = vault.get(svc);
          vault.set(svc, {
            ...previous,
            api_key: value,
            created_at: previous?.api_key ? previous.created_at : new Date().toISOString(),
            last_validated_at: undefined,
            validation_status: undefined,
          });
        } else {
          vault.set(svc, { ...vault.get(svc), base_url: value });
        }
        return send(200, { ok: true, ...summarize(svc, vault.get(svc)) });
      }
      case "delete": {
        const had = vault.has(svc);
        vault.delete(svc);
        return send(200, { ok: true, removed: had ? 1 : 0, ...summarize(svc, undefined) });
      }
      case "test": {
        const value = String(body.value ?? "");
        const problem = apiKeyFormatProblem(svc, value);
        if (problem) return invalid(problem);
        const valid = value === ACCEPTED_OPENAI_KEY;
        const label = PROVIDERS[svc].label;
        return send(200, {
          service: svc,
          valid,
          validation_status: valid ? "valid" : "invalid",
          upstream_status: valid ? 200 : 401,
          ...(valid ? {} : {
            error: {
              code: `${svc.toUpperCase()}_INVALID_KEY`,
              message: `Invalid ${label} API key. Check or replace it in Settings → Integrations → ${label}.`,
              recoverable: false,
            },
          }),
        });
      }
      case "set_active": {
        const stored = vault.get(svc);
        if (stored?.api_key) stored.is_active = body.is_active === true;
        return send(200, { ok: true, ...summarize(svc, stored) });
      }
      case "validate": {
        const stored = vault.get(svc);
        if (!stored?.api_key) {
          const label = PROVIDERS[svc].label;
          return send(400, {
            error: {
              code: `${svc.toUpperCase()}_NOT_CONFIGURED`,
              message: `${label} API key not configured. Add your key in Settings → Integrations → ${label}.`,
              recoverable: false,
            },
          });
        }
        const valid = stored.api_key === ACCEPTED_OPENAI_KEY;
        stored.last_validated_at = new Date().toISOString();
        stored.validation_status = valid ? "valid" : "invalid";
        const label = PROVIDERS[svc].label;
        return send(200, {
          ...summarize(svc, stored),
          valid,
          upstream_status: valid ? 200 : 401,
          ...(valid ? {} : {
            error: {
              code: `${svc.toUpperCase()}_INVALID_KEY`,
              message: `Invalid ${label} API key. Check or replace it in Settings → Integrations → ${label}.`,
              recoverable: false,
            },
          }),
        });
      }
      default:
        return invalid("action: invalid option");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let shared: SupabaseClient | null = null;

  return {
    url,
    requests,
    hold() {
      let release = () => {};
      gate = new Promise<void>((resolve) => {
        release = () => {
          gate = null;
          resolve();
        };
      });
      return release;
    },
    failNext(status, error) {
      nextFailure = { status, error };
    },
    client() {
      shared ??= createClient(url, "anon-key", {
        auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false, storageKey: "fake-user" },
        global: { headers: { Authorization: "Bearer user-token" } },
      });
      return shared;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The credentials-manager calls recorded so far, by action. */
export function actions(server: FakeCredentialsServer): string[] {
  return server.requests.map((r) => String(r.body.action));
}
