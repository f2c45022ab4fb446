/**
 * Functions with several actions in one JSON body (`{"action": ...}`): a table of action → body
 * fields → step in place of a switch. The table's rows make one discriminated union, so a bad
 * body gets the same kind of message whatever its action, and each step gets its own action's
 * body, typed.
 */
import { z } from "zod";
import type { AuthenticatedUser } from "./auth.ts";
import { jsonResponse, optionalUser } from "./pipeline.ts";
import type { Runtime } from "../core/runtime.ts";

/**
 * Who may call an action: anyone (`none`, the header is not looked at), the token's user when a
 * token is sent (`optional`), or a verified user (`required`).
 */
export type Auth = "none" | "optional" | "required";

/** What the step of an action for signed-in users gets. */
export interface Caller {
  rt: Runtime;
  user: AuthenticatedUser;
}

type Shape = Record<string, z.ZodType>;

/** An action's body as its step gets it: the row's fields, validated (unknown fields refused). */
export type ActionInput<S extends Shape> = z.output<z.ZodObject<S, z.core.$strict>>;

export interface Action<Ctx, S extends Shape = Shape> {
  readonly fields: S;
  readonly auth: Auth;
  readonly step: (ctx: Ctx, body: ActionInput<S>) => Promise<unknown>;
}

/** One row of an action table: the body's fields besides `action`, and the step that answers. */
export function action<Ctx, S extends Shape>(
  fields: S,
  step: (ctx: Ctx, body: ActionInput<S>) => Promise<unknown>,
  auth: Auth = "required",
): Action<Ctx, S> {
  return { fields, step, auth };
}

// deno-lint-ignore no-explicit-any
type Rows = Record<string, Action<any, any>>;

/** What every step of the table is given (the rows agree on it). */
type ContextOf<T extends Rows> = Parameters<T[keyof T]["step"]>[0];

/** Any body the table accepts: `{action: <row name>, ...that row's fields}`. */
export type ActionBody<T extends Rows> = {
  [A in keyof T & string]: { action: A } & ActionInput<T[A]["fields"]>;
}[keyof T & string];

export interface ActionTable<T extends Rows> {
  /** Every row's body as one discriminated union on `action`. */
  readonly schema: z.ZodType<ActionBody<T>>;
  /** The caller a body's action asks for; an unknown one asks for a user, then fails validation. */
  caller(request: Request, rt: Runtime, raw: unknown): Promise<AuthenticatedUser | null>;
  /** Runs the step of a validated body's action; its result is the 200 JSON answer. */
  run(ctx: ContextOf<T>, body: ActionBody<T>): Promise<Response>;
}

/** Builds the table's schema once; `rows` maps each action name to its row. */
export function actionTable<T extends Rows>(rows: T): ActionTable<T> {
  const options = Object.entries(rows).map(([name, row]) =>
    z.strictObject({ action: z.literal(name), ...row.fields })
  );
  type Option = (typeof options)[number];
  const schema = z.discriminatedUnion(
    "action",
    options as [Option, ...Option[]],
  ) as unknown as z.ZodType<ActionBody<T>>;
  const rowOf = (name: unknown): Action<ContextOf<T>> | undefined =>
    typeof name === "string" && Object.hasOwn(rows, name) ? rows[name] : undefined;
  return {
    schema,
    async caller(request, rt, raw) {
      const auth = rowOf((raw as { action?: unknown } | null)?.action)?.auth ?? "required";
      if (auth === "none") return null;
      if (auth === "optional") return await optionalUser(request, rt);
      return await rt.authenticate(request.headers.get("authorization"));
    },
    async run(ctx, body) {
      return jsonResponse(await rowOf(body.action)!.step(ctx, body));
    },
  };
}
