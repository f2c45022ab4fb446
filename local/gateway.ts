/**
 * The local stack's HTTP front: what the Supabase gateway and Auth do for the functions, minus
 * everything this project does not need. It lives outside supabase/functions, so the dev token
 * endpoint can never be deployed.
 */
import { jwtVerify } from "jose";
import { z } from "zod";
import { bearerToken, createVerifiedTokenCache } from "../supabase/functions/_shared/http/auth.ts";
import type { Database } from "../supabase/functions/_shared/core/db.ts";
import { AppError } from "../supabase/functions/_shared/core/errors.ts";
import {
  errorResponse,
  jsonResponse,
  preflightResponse,
  toAppError,
} from "../supabase/functions/_shared/http/pipeline.ts";
import type { MountedFunction } from "./functionRegistry.ts";
import { userAccessToken } from "./secrets.ts";

export interface GatewayOptions {
  functions: Map<string, MountedFunction>;
  db: Database;
  jwtSecret: string;
  /** Served at /local-config.json for the settings panel. */
  publicConfig: Record<string, unknown>;
  /** Serves other GET paths (the built panel); null when there is nothing to serve. */
  staticFiles?: (request: Request) => Promise<Response | null>;
  /**
   * Host names the stack answers to besides loopback (its bind address). Any other Host header
   * is refused, so a web page whose name an attacker points at 127.0.0.1 (DNS rebinding) cannot
   * talk to the stack.
   */
  allowedHosts?: string[];
}

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];

/** The request's Host names the stack itself (Deno.serve builds `request.url` from it). */
function knownHost(request: Request, allowed: Set<string>): boolean {
  const host = request.headers.get("host");
  try {
    return allowed.has(new URL(host ? `http://${host}` : request.url).hostname);
  } catch {
    return false;
  }
}

/**
 * The dev token endpoint mints a session for any email, so a browser may call it only from a
 * page on this machine: an Origin whose host is one the stack answers to. Calls without an Origin
 * (curl, tests, servers) are not from a web page.
 */
function trustedOrigin(request: Request, allowed: Set<string>): string | null | false {
  const origin = request.headers.get("origin");
  if (origin === null) return null;
  try {
    return allowed.has(new URL(origin).hostname) ? origin : false;
  } catch {
    return false;
  }
}

function withOrigin(response: Response, origin: string | null): Response {
  const headers = new Headers(response.headers);
  headers.delete("access-control-allow-origin");
  if (origin) headers.set("access-control-allow-origin", origin);
  headers.set("vary", "origin");
  return new Response(response.body, { status: response.status, headers });
}

const devTokenRequest = z.strictObject({ email: z.email().max(254) });

async function issueDevToken(request: Request, options: GatewayOptions): Promise<Response> {
  const parsed = devTokenRequest.safeParse(await request.json().catch(() => null));
  if (!parsed.success) throw new AppError("INVALID_REQUEST", { message: 'Send {"email": "..."}.' });
  const email = parsed.data.email.toLowerCase();
  const [user] = await options.db.query<{ id: string; email: string }>(
    // No conflict target: hosted Supabase's email index is partial (users_email_partial_key).
    `with inserted as (
       insert into auth.users (id, email) values (gen_random_uuid(), $1)
       on conflict do nothing
       returning id, email
     )
     select id, email from inserted
     union all
     select id, email from auth.users where email = $1`,
    [email],
  );
  const accessToken = await userAccessToken(options.jwtSecret, user);
  return jsonResponse({ access_token: accessToken, token_type: "bearer", expires_in: 3600, user });
}

/**
 * `verify_jwt = true`: any valid project JWT (anon, service or user) gets through, as on the
 * platform. A token that passed is remembered until its `exp` (the functions' verified-token
 * cache), so a client's next requests skip the signature check.
 */
function gatewayJwtCheck(secret: string): (request: Request) => Promise<boolean> {
  const key = new TextEncoder().encode(secret);
  const passed = createVerifiedTokenCache<true>();
  return async (request) => {
    const token = bearerToken(request.headers.get("authorization"));
    if (!token) return false;
    if (passed.get(token)) return true;
    try {
      const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"] });
      passed.set(token, true, payload.exp);
      return true;
    } catch {
      return false;
    }
  };
}

/**
 * The platform hands a function its path starting at the function's name. The request itself is
 * handed on, its body unread and its headers and signal its own; only its `url` reads as that
 * path (a copy would turn the body into a stream read in JS and copy every header).
 */
function atFunctionPath(request: Request, path: URL): Request {
  return Object.defineProperty(request, "url", { value: path.href });
}

export function createGateway(options: GatewayOptions): (request: Request) => Promise<Response> {
  const allowed = new Set([...LOOPBACK_NAMES, ...(options.allowedHosts ?? [])]);
  const passesGatewayJwtCheck = gatewayJwtCheck(options.jwtSecret);
  return async (request) => {
    const url = new URL(request.url);
    try {
      if (!knownHost(request, allowed)) {
        throw new AppError("FORBIDDEN", {
          message: "This local stack answers only to its own host name (DNS rebinding guard).",
        });
      }
      if (url.pathname === "/health") {
        await options.db.query("select 1 as ok");
        return jsonResponse({ status: "ok" });
      }
      if (url.pathname === "/local-config.json") return jsonResponse(options.publicConfig);
      if (url.pathname === "/auth/v1/dev/token") {
        const origin = trustedOrigin(request, allowed);
        if (origin === false) {
          return withOrigin(
            errorResponse(
              new AppError("FORBIDDEN", {
                message: "Dev tokens are only for pages on this machine.",
              }),
            ),
            null,
          );
        }
        if (request.method === "OPTIONS") return withOrigin(preflightResponse(request), origin);
        if (request.method !== "POST") throw new AppError("METHOD_NOT_ALLOWED");
        return withOrigin(await issueDevToken(request, options), origin);
      }
      const match = url.pathname.match(/^\/functions\/v1\/([a-z0-9-]+)(\/.*)?$/);
      if (match) {
        const fn = options.functions.get(match[1]);
        if (!fn) throw new AppError("NOT_FOUND");
        if (
          fn.verifyJwt && request.method !== "OPTIONS" &&
          !(await passesGatewayJwtCheck(request))
        ) {
          return errorResponse(new AppError("UNAUTHORIZED"));
        }
        const inner = new URL(`/${fn.name}${match[2] ?? ""}${url.search}`, url);
        return await fn.handler(atFunctionPath(request, inner));
      }
      const file = request.method === "GET" ? await options.staticFiles?.(request) : null;
      if (file) return file;
      throw new AppError("NOT_FOUND");
    } catch (error) {
      return errorResponse(toAppError(error, "local-gateway"));
    }
  };
}
