/**
 * flows: owners create, update, publish and share their flows (owner-funded shared flows).
 * Publishing returns the live id and the share token once; the database keeps only the token's
 * hash. `load_live` is the one public action: live id plus share token give the flow, the way a
 * live-flow page loads it.
 */
import { z } from "zod";
import { asUser, type DbUser, forUser, type Queryable } from "../_shared/core/db.ts";
import { AppError } from "../_shared/core/errors.ts";
import {
  defineHandler,
  fail,
  type Handler,
  jsonResponse,
  optionalUser,
  parseWith,
  readJsonBody,
} from "../_shared/http/pipeline.ts";
import { type Runtime, runtimeFromEnv, type RuntimeSource } from "../_shared/core/runtime.ts";
import { SERVICES } from "../_shared/contract/providers.ts";
import { newLiveId, newShareToken, SHARE_TOKEN_PATTERN } from "../_shared/sharing/shareTokens.ts";

const flowId = z.uuid();
const settings = {
  name: z.string().trim().min(1).max(200),
  definition: z.record(z.string(), z.unknown()),
  use_owner_keys: z.boolean(),
  per_minute_limit: z.number().int().min(1).max(10_000),
  daily_limit: z.number().int().min(1).max(1_000_000),
  // Bounds on one run of the flow on the owner's keys, and what its calls may ask for.
  run_max_age_seconds: z.number().int().min(1).max(86_400),
  run_call_limit: z.number().int().min(1).max(10_000),
  allowed_provider: z.enum(SERVICES).nullable(),
  allowed_model: z.string().trim().min(1).max(200).nullable(),
  max_tokens_limit: z.number().int().min(1).max(1_000_000).nullable(),
};
const runBounds = {
  run_max_age_seconds: settings.run_max_age_seconds.optional(),
  run_call_limit: settings.run_call_limit.optional(),
  allowed_provider: settings.allowed_provider.optional(),
  allowed_model: settings.allowed_model.optional(),
  max_tokens_limit: settings.max_tokens_limit.optional(),
};

const requestSchema = z.discriminatedUnion("action", [
  z.strictObject({
    action: z.literal("create"),
    name: settings.name,
    definition: settings.definition.optional(),
    use_owner_keys: settings.use_owner_keys.optional(),
    per_minute_limit: settings.per_minute_limit.optional(),
    daily_limit: settings.daily_limit.optional(),
    ...runBounds,
  }),
  z.strictObject({
    action: z.literal("update"),
    flow_id: flowId,
    name: settings.name.optional(),
    definition: settings.definition.optional(),
    use_owner_keys: settings.use_owner_keys.optional(),
    per_minute_limit: settings.per_minute_limit.optional(),
    daily_limit: settings.daily_limit.optional(),
    ...runBounds,
  }),
  z.strictObject({ action: z.literal("publish"), flow_id: flowId }),
  z.strictObject({ action: z.literal("rotate_token"), flow_id: flowId }),
  z.strictObject({ action: z.literal("revoke_token"), flow_id: flowId }),
  z.strictObject({ action: z.literal("unpublish"), flow_id: flowId }),
  z.strictObject({ action: z.literal("delete"), flow_id: flowId }),
  z.strictObject({ action: z.literal("list") }),
  z.strictObject({
    action: z.literal("load_live"),
    live_id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/),
    share_token: z.string().regex(SHARE_TOKEN_PATTERN),
  }),
]);

type FlowRequest = z.infer<typeof requestSchema>;
type ShareAction = Extract<
  FlowRequest,
  { action: "publish" | "rotate_token" | "revoke_token" | "unpublish" }
>;
type OwnerAction = Exclude<FlowRequest, { action: "load_live" } | ShareAction>;

/**
 * Publishing, token rotation, revocation and unpublishing, through the server's definer function:
 * no client role writes a share token hash (a chosen, weak token) or a live id.
 */
async function shareAction(tx: Queryable, owner: DbUser, body: ShareAction) {
  const shareToken = body.action === "publish" || body.action === "rotate_token"
    ? newShareToken()
    : null;
  const flow = await one(
    tx,
    `select ${FLOW_COLUMNS} from private.set_flow_share($1::uuid, $2::uuid, $3, $4, $5)`,
    [
      owner.id,
      body.flow_id,
      body.action,
      shareToken,
      body.action === "publish" ? newLiveId() : null,
    ],
  );
  return shareToken ? { flow, live_id: flow.live_id, share_token: shareToken } : { flow };
}

const FLOW_COLUMNS = `id, name, definition, live_id, use_owner_keys, per_minute_limit, daily_limit,
  run_max_age_seconds, run_call_limit, allowed_provider, allowed_model, max_tokens_limit,
  daily_execution_count, daily_execution_reset, published_at, created_at, updated_at,
  (published_at is not null) as published`;

async function one(tx: Queryable, text: string, params: unknown[]) {
  const [row] = await tx.query(text, params);
  if (!row) throw new AppError("NOT_FOUND", { message: "No flow with that id belongs to you." });
  return row;
}

/** Owner actions, each one statement as the owner: RLS keeps everyone else's flows out of reach. */
function ownerAction(tx: Queryable, body: OwnerAction): Promise<Record<string, unknown>> {
  switch (body.action) {
    case "create":
      return one(
        tx,
        `insert into public.flows (name, definition, use_owner_keys, per_minute_limit, daily_limit,
                                   run_max_age_seconds, run_call_limit, allowed_provider, allowed_model,
                                   max_tokens_limit)
         values ($1, coalesce($2::text::jsonb, '{}'::jsonb), coalesce($3::boolean, false),
                 coalesce($4::integer, 10), coalesce($5::integer, 100),
                 coalesce($6::integer, 3600), coalesce($7::integer, 50), $8, $9, $10::integer)
         returning ${FLOW_COLUMNS}`,
        [
          body.name,
          body.definition === undefined ? null : JSON.stringify(body.definition),
          body.use_owner_keys ?? null,
          body.per_minute_limit ?? null,
          body.daily_limit ?? null,
          body.run_max_age_seconds ?? null,
          body.run_call_limit ?? null,
          body.allowed_provider ?? null,
          body.allowed_model ?? null,
          body.max_tokens_limit ?? null,
        ],
      ).then((flow) => ({ flow }));
    case "update":
      return one(
        tx,
        `update public.flows set
           name = coalesce($2, name),
           definition = coalesce($3::text::jsonb, definition),
           use_owner_keys = coalesce($4::boolean, use_owner_keys),
           per_minute_limit = coalesce($5::integer, per_minute_limit),
           daily_limit = coalesce($6::integer, daily_limit),
           run_max_age_seconds = coalesce($7::integer, run_max_age_seconds),
           run_call_limit = coalesce($8::integer, run_call_limit),
           allowed_provider = case when $9::boolean then $10 else allowed_provider end,
           allowed_model = case when $11::boolean then $12 else allowed_model end,
           max_tokens_limit = case when $13::boolean then $14::integer else max_tokens_limit end
         where id = $1::uuid
         returning ${FLOW_COLUMNS}`,
        [
          body.flow_id,
          body.name ?? null,
          body.definition === undefined ? null : JSON.stringify(body.definition),
          body.use_owner_keys ?? null,
          body.per_minute_limit ?? null,
          body.daily_limit ?? null,
          body.run_max_age_seconds ?? null,
          body.run_call_limit ?? null,
          body.allowed_provider !== undefined,
          body.allowed_provider ?? null,
          body.allowed_model !== undefined,
          body.allowed_model ?? null,
          body.max_tokens_limit !== undefined,
          body.max_tokens_limit ?? null,
        ],
      ).then((flow) => ({ flow }));
    case "delete":
      return one(tx, "delete from public.flows where id = $1::uuid returning id", [body.flow_id])
        .then(() => ({ ok: true }));
    case "list":
      return tx.query(`select ${FLOW_COLUMNS} from public.flows order by created_at desc`, [])
        .then((flows) => ({ flows }));
  }
}

/** Who may call an action: anyone (`none`, the header is not looked at), or a verified user. */
type Auth = "none" | "optional" | "required";

interface Route {
  auth: Auth;
  /** Validates the body for this action, then runs it as `user` (null only when auth allows). */
  run(rt: Runtime, raw: unknown, user: DbUser | null): Promise<Record<string, unknown>>;
}

type Body<A extends FlowRequest["action"]> = Extract<FlowRequest, { action: A }>;

/** A route for a signed-in owner: the step gets the owner, never a null. */
function ownerRoute<A extends FlowRequest["action"]>(
  step: (rt: Runtime, owner: DbUser, body: Body<A>) => Promise<Record<string, unknown>>,
): Route {
  return {
    auth: "required",
    run: (rt, raw, user) => {
      if (!user) fail("UNAUTHORIZED");
      return step(rt, user, parseWith(requestSchema, raw) as Body<A>);
    },
  };
}

const share = ownerRoute<ShareAction["action"]>((rt, owner, body) =>
  forUser(rt.db, owner, (tx) => shareAction(tx, owner, body))
);
const owned = ownerRoute<OwnerAction["action"]>((rt, owner, body) =>
  asUser(rt.db, owner, (tx) => ownerAction(tx, body))
);

/** action → auth → step; each body is validated by `requestSchema` (one message for all). */
const ROUTES: Record<FlowRequest["action"], Route> = {
  create: owned,
  update: owned,
  delete: owned,
  list: owned,
  publish: share,
  rotate_token: share,
  revoke_token: share,
  unpublish: share,
  load_live: {
    auth: "none",
    run: async (rt, raw) => {
      const body = parseWith(requestSchema, raw) as Body<"load_live">;
      const [flow] = await rt.db.query(
        "select * from private.load_live_flow($1, $2)",
        [body.live_id, body.share_token],
      );
      if (!flow) throw new AppError("SHARE_TOKEN_INVALID");
      return { flow };
    },
  },
};

/** The route for a body's action; an unknown action needs a user first, then fails validation. */
function routeFor(raw: unknown): Route {
  const action = (raw as { action?: unknown } | null)?.action;
  return typeof action === "string" && Object.hasOwn(ROUTES, action)
    ? ROUTES[action as FlowRequest["action"]]
    : owned;
}

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("flows", runtime, async (request, rt) => {
    if (request.method !== "POST") fail("METHOD_NOT_ALLOWED");
    const raw = await readJsonBody(request);
    const route = routeFor(raw);
    const user = route.auth === "none"
      ? null
      : route.auth === "optional"
      ? await optionalUser(request, rt)
      : await rt.authenticate(request.headers.get("authorization"));
    return jsonResponse(await route.run(rt, raw, user));
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
