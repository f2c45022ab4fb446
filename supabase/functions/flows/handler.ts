/**
 * flows: owners create, update, publish and share their flows (owner-funded shared flows).
 * Publishing returns the live id and the share token once; the database keeps only the token's
 * hash. `load_live` is the one public action: live id plus share token give the flow, the way a
 * live-flow page loads it.
 */
import { z } from "zod";
import type { AuthenticatedUser } from "../_shared/http/auth.ts";
import {
  defineHandler,
  fail,
  type Handler,
  parseWith,
  readJsonBody,
} from "../_shared/http/pipeline.ts";
import { action, actionTable } from "../_shared/http/actions.ts";
import { type Runtime, runtimeFromEnv, type RuntimeSource } from "../_shared/core/runtime.ts";
import { SERVICES } from "../_shared/contract/providers.ts";
import {
  createFlow,
  deleteFlow,
  type FlowShareAction,
  listFlows,
  loadLiveFlow,
  setFlowShare,
  updateFlow,
} from "../_shared/sharing/flowStore.ts";
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

/** What a step gets: the caller is null only for the public action. */
interface FlowCaller {
  rt: Runtime;
  user: AuthenticatedUser | null;
}

/** The owner an owner action runs as (the table has already required a verified user). */
const owner = (user: AuthenticatedUser | null) => user ?? fail("UNAUTHORIZED");

/** A sharing action: publishing and rotating hand out a new token, shown this once. */
const shareAction = (which: FlowShareAction) =>
  action({ flow_id: flowId }, async ({ rt, user }: FlowCaller, body) => {
    const shareToken = which === "publish" || which === "rotate_token" ? newShareToken() : null;
    const liveId = which === "publish" ? newLiveId() : null;
    const flow = await setFlowShare(rt.db, owner(user), body.flow_id, which, shareToken, liveId);
    return shareToken ? { flow, live_id: flow.live_id, share_token: shareToken } : { flow };
  });

/** action → body fields → step; every action but `load_live` needs a signed-in owner. */
const ACTIONS = actionTable({
  create: action({
    name: settings.name,
    definition: settings.definition.optional(),
    use_owner_keys: settings.use_owner_keys.optional(),
    per_minute_limit: settings.per_minute_limit.optional(),
    daily_limit: settings.daily_limit.optional(),
    ...runBounds,
  }, async ({ rt, user }: FlowCaller, body) => ({
    flow: await createFlow(rt.db, owner(user), body),
  })),
  update: action({
    flow_id: flowId,
    name: settings.name.optional(),
    definition: settings.definition.optional(),
    use_owner_keys: settings.use_owner_keys.optional(),
    per_minute_limit: settings.per_minute_limit.optional(),
    daily_limit: settings.daily_limit.optional(),
    ...runBounds,
  }, async ({ rt, user }: FlowCaller, { flow_id, ...changes }) => ({
    flow: await updateFlow(rt.db, owner(user), flow_id, changes),
  })),
  publish: shareAction("publish"),
  rotate_token: shareAction("rotate_token"),
  revoke_token: shareAction("revoke_token"),
  unpublish: shareAction("unpublish"),
  delete: action({ flow_id: flowId }, async ({ rt, user }: FlowCaller, body) => {
    await deleteFlow(rt.db, owner(user), body.flow_id);
    return { ok: true };
  }),
  list: action({}, async ({ rt, user }: FlowCaller) => ({
    flows: await listFlows(rt.db, owner(user)),
  })),
  load_live: action(
    {
      live_id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/),
      share_token: z.string().regex(SHARE_TOKEN_PATTERN),
    },
    async ({ rt }: FlowCaller, body) => ({
      flow: await loadLiveFlow(rt.db, body.live_id, body.share_token),
    }),
    "none",
  ),
});

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("flows", runtime, async (request, rt) => {
    if (request.method !== "POST") fail("METHOD_NOT_ALLOWED");
    const raw = await readJsonBody(request);
    // The action decides who may call: the caller is settled before the body is validated.
    const user = await ACTIONS.caller(request, rt, raw);
    return await ACTIONS.run({ rt, user }, parseWith(ACTIONS.schema, raw));
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
