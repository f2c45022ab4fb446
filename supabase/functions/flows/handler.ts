/**
 * flows: owners create, update, publish and share their flows (seed 000). Publishing returns the
 * live id and the share token once; the database keeps only the token's hash. `load_live` is the
 * one public action: live id plus share token give the flow, the way a live-flow page loads it.
 */
import { z } from "zod";
import { asUser, type DbUser, type Queryable } from "../_shared/db.ts";
import { AppError } from "../_shared/errors.ts";
import {
  defineHandler,
  fail,
  type Handler,
  jsonResponse,
  parseWith,
  readJsonBody,
} from "../_shared/http.ts";
import { runtimeFromEnv, type RuntimeSource } from "../_shared/runtime.ts";
import { newLiveId, newShareToken, SHARE_TOKEN_PATTERN } from "../_shared/shareTokens.ts";

const flowId = z.uuid();
const settings = {
  name: z.string().trim().min(1).max(200),
  definition: z.record(z.string(), z.unknown()),
  use_owner_keys: z.boolean(),
  per_minute_limit: z.number().int().min(1).max(10_000),
  daily_limit: z.number().int().min(1).max(1_000_000),
};

const requestSchema = z.discriminatedUnion("action", [
  z.strictObject({
    action: z.literal("create"),
    name: settings.name,
    definition: settings.definition.optional(),
    use_owner_keys: settings.use_owner_keys.optional(),
    per_minute_limit: settings.per_minute_limit.optional(),
    daily_limit: settings.daily_limit.optional(),
  }),
  z.strictObject({
    action: z.literal("update"),
    flow_id: flowId,
    name: settings.name.optional(),
    definition: settings.definition.optional(),
    use_owner_keys: settings.use_owner_keys.optional(),
    per_minute_limit: settings.per_minute_limit.optional(),
    daily_limit: settings.daily_limit.optional(),
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

const FLOW_COLUMNS = `id, name, definition, live_id, use_owner_keys, per_minute_limit, daily_limit,
  daily_execution_count, daily_execution_reset, published_at, created_at, updated_at,
  (published_at is not null) as published`;

async function one(tx: Queryable, text: string, params: unknown[]) {
  const [row] = await tx.query(text, params);
  if (!row) throw new AppError("NOT_FOUND", { message: "No flow with that id belongs to you." });
  return row;
}

/** Owner actions, each one statement as the owner: RLS keeps everyone else's flows out of reach. */
function ownerAction(
  tx: Queryable,
  body: Exclude<FlowRequest, { action: "load_live" }>,
): Promise<Record<string, unknown>> {
  switch (body.action) {
    case "create":
      return one(
        tx,
        `insert into public.flows (name, definition, use_owner_keys, per_minute_limit, daily_limit)
         values ($1, coalesce($2::text::jsonb, '{}'::jsonb), coalesce($3::boolean, false),
                 coalesce($4::integer, 10), coalesce($5::integer, 100))
         returning ${FLOW_COLUMNS}`,
        [
          body.name,
          body.definition === undefined ? null : JSON.stringify(body.definition),
          body.use_owner_keys ?? null,
          body.per_minute_limit ?? null,
          body.daily_limit ?? null,
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
           updated_at = now()
         where id = $1::uuid
         returning ${FLOW_COLUMNS}`,
        [
          body.flow_id,
          body.name ?? null,
          body.definition === undefined ? null : JSON.stringify(body.definition),
          body.use_owner_keys ?? null,
          body.per_minute_limit ?? null,
          body.daily_limit ?? null,
        ],
      ).then((flow) => ({ flow }));
    case "publish":
    case "rotate_token": {
      const shareToken = newShareToken();
      const liveId = body.action === "publish" ? newLiveId() : null;
      return one(
        tx,
        `update public.flows set
           live_id = coalesce(live_id, $2),
           share_token_hash = extensions.digest($3, 'sha256'),
           published_at = coalesce(published_at, now()),
           updated_at = now()
         where id = $1::uuid and ($4::boolean or published_at is not null)
         returning ${FLOW_COLUMNS}`,
        [body.flow_id, liveId, shareToken, body.action === "publish"],
      ).then((flow) => ({ flow, live_id: flow.live_id, share_token: shareToken }));
    }
    case "revoke_token":
      return one(
        tx,
        `update public.flows set share_token_hash = null, updated_at = now()
          where id = $1::uuid returning ${FLOW_COLUMNS}`,
        [body.flow_id],
      ).then((flow) => ({ flow }));
    case "unpublish":
      return one(
        tx,
        `update public.flows set live_id = null, share_token_hash = null, published_at = null, updated_at = now()
          where id = $1::uuid returning ${FLOW_COLUMNS}`,
        [body.flow_id],
      ).then((flow) => ({ flow }));
    case "delete":
      return one(tx, "delete from public.flows where id = $1::uuid returning id", [body.flow_id])
        .then(() => ({ ok: true }));
    case "list":
      return tx.query(`select ${FLOW_COLUMNS} from public.flows order by created_at desc`, [])
        .then((flows) => ({ flows }));
  }
}

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("flows", runtime, async (request, rt) => {
    if (request.method !== "POST") fail("METHOD_NOT_ALLOWED");
    const authorization = request.headers.get("authorization");
    const raw = await readJsonBody(request);
    const isPublicLoad = (raw as { action?: unknown } | null)?.action === "load_live";
    const user = isPublicLoad ? null : await rt.authenticate(authorization);
    const body = parseWith(requestSchema, raw);

    if (body.action === "load_live") {
      const [flow] = await rt.db.query(
        "select * from private.load_live_flow($1, $2)",
        [body.live_id, body.share_token],
      );
      if (!flow) throw new AppError("SHARE_TOKEN_INVALID");
      return jsonResponse({ flow });
    }
    const owner: DbUser = user!;
    return jsonResponse(await asUser(rt.db, owner, (tx) => ownerAction(tx, body)));
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
