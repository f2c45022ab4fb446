/**
 * Owner-funded shared flows: the statements behind the flows function. Owner actions are one
 * statement each as the owner (RLS keeps everyone else's flows out of reach); sharing and the
 * public load go through the server's definer functions.
 */
import { asUser, type Database, type DbUser, forUser, type Queryable } from "../core/db.ts";
import { AppError } from "../core/errors.ts";
import type { Service } from "../contract/providers.ts";

/** A flow's settings as its owner sets them; a field left out keeps its value (or default). */
export interface FlowChanges {
  name?: string;
  definition?: Record<string, unknown>;
  use_owner_keys?: boolean;
  per_minute_limit?: number;
  daily_limit?: number;
  run_max_age_seconds?: number;
  run_call_limit?: number;
  allowed_provider?: Service | null;
  allowed_model?: string | null;
  max_tokens_limit?: number | null;
}

export type Flow = Record<string, unknown>;

/** How an owner changes a flow's sharing: each is one call of `private.set_flow_share`. */
export type FlowShareAction = "publish" | "rotate_token" | "revoke_token" | "unpublish";

const FLOW_COLUMNS = `id, name, definition, live_id, use_owner_keys, per_minute_limit, daily_limit,
  run_max_age_seconds, run_call_limit, allowed_provider, allowed_model, max_tokens_limit,
  daily_execution_count, daily_execution_reset, published_at, created_at, updated_at,
  (published_at is not null) as published`;

async function one(tx: Queryable, text: string, params: unknown[]): Promise<Flow> {
  const [row] = await tx.query<Flow>(text, params);
  if (!row) throw new AppError("NOT_FOUND", { message: "No flow with that id belongs to you." });
  return row;
}

const definitionParam = (changes: FlowChanges) =>
  changes.definition === undefined ? null : JSON.stringify(changes.definition);

/** Creates a flow owned by `owner`, with the defaults for what `flow` leaves out. */
export function createFlow(
  db: Database,
  owner: DbUser,
  flow: FlowChanges & { name: string },
): Promise<Flow> {
  return asUser(db, owner, (tx) =>
    one(
      tx,
      `insert into public.flows (name, definition, use_owner_keys, per_minute_limit, daily_limit,
                                 run_max_age_seconds, run_call_limit, allowed_provider, allowed_model,
                                 max_tokens_limit)
       values ($1, coalesce($2::text::jsonb, '{}'::jsonb), coalesce($3::boolean, false),
               coalesce($4::integer, 10), coalesce($5::integer, 100),
               coalesce($6::integer, 3600), coalesce($7::integer, 50), $8, $9, $10::integer)
       returning ${FLOW_COLUMNS}`,
      [
        flow.name,
        definitionParam(flow),
        flow.use_owner_keys ?? null,
        flow.per_minute_limit ?? null,
        flow.daily_limit ?? null,
        flow.run_max_age_seconds ?? null,
        flow.run_call_limit ?? null,
        flow.allowed_provider ?? null,
        flow.allowed_model ?? null,
        flow.max_tokens_limit ?? null,
      ],
    ));
}

/** Changes the given settings of the owner's flow; NOT_FOUND when it is not theirs. */
export function updateFlow(
  db: Database,
  owner: DbUser,
  flowId: string,
  changes: FlowChanges,
): Promise<Flow> {
  return asUser(db, owner, (tx) =>
    one(
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
        flowId,
        changes.name ?? null,
        definitionParam(changes),
        changes.use_owner_keys ?? null,
        changes.per_minute_limit ?? null,
        changes.daily_limit ?? null,
        changes.run_max_age_seconds ?? null,
        changes.run_call_limit ?? null,
        changes.allowed_provider !== undefined,
        changes.allowed_provider ?? null,
        changes.allowed_model !== undefined,
        changes.allowed_model ?? null,
        changes.max_tokens_limit !== undefined,
        changes.max_tokens_limit ?? null,
      ],
    ));
}

/** Deletes the owner's flow; NOT_FOUND when it is not theirs. */
export async function deleteFlow(db: Database, owner: DbUser, flowId: string): Promise<void> {
  await asUser(
    db,
    owner,
    (tx) => one(tx, "delete from public.flows where id = $1::uuid returning id", [flowId]),
  );
}

/** The owner's flows, newest first. */
export function listFlows(db: Database, owner: DbUser): Promise<Flow[]> {
  return asUser(
    db,
    owner,
    (tx) => tx.query<Flow>(`select ${FLOW_COLUMNS} from public.flows order by created_at desc`, []),
  );
}

/**
 * Publishes, rotates, revokes or unpublishes through the server's definer function: no client
 * role writes a share token hash (a chosen, weak token) or a live id. NOT_FOUND when not theirs.
 */
export function setFlowShare(
  db: Database,
  owner: DbUser,
  flowId: string,
  action: FlowShareAction,
  shareToken: string | null,
  liveId: string | null,
): Promise<Flow> {
  return forUser(db, owner, (tx) =>
    one(
      tx,
      `select ${FLOW_COLUMNS} from private.set_flow_share($1::uuid, $2::uuid, $3, $4, $5)`,
      [owner.id, flowId, action, shareToken, liveId],
    ));
}

/** The live flow a live id and share token open; SHARE_TOKEN_INVALID when they open none. */
export async function loadLiveFlow(
  db: Database,
  liveId: string,
  shareToken: string,
): Promise<Flow> {
  const [flow] = await db.query<Flow>("select * from private.load_live_flow($1, $2)", [
    liveId,
    shareToken,
  ]);
  if (!flow) throw new AppError("SHARE_TOKEN_INVALID");
  return flow;
}
