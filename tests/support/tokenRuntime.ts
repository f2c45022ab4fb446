/**
 * A runtime that knows one token, for unit tests of who a request's caller is: `Bearer good` is
 * `alice`, any other token is 401.
 */
import { AppError } from "../../supabase/functions/_shared/core/errors.ts";
import type { Runtime } from "../../supabase/functions/_shared/core/runtime.ts";

export const alice = { id: "00000000-0000-4000-8000-000000000001" };

export const tokenRuntime = {
  authenticate: (authorization: string | null) => {
    if (authorization === "Bearer good") return Promise.resolve(alice);
    return Promise.reject(new AppError("UNAUTHORIZED"));
  },
} as unknown as Runtime;

/** A POST with `authorization` when given, else with no such header. */
export const requestWith = (authorization?: string) =>
  new Request("http://local/x", {
    method: "POST",
    headers: authorization === undefined ? {} : { authorization },
  });
