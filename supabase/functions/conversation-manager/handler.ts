/**
 * conversation-manager: POST `{action: "list"}`, `{action: "get", conversation_id}` (with its
 * messages and runs) or `{action: "delete", conversation_id}`. Row level security limits every
 * action to the caller's own conversations.
 */
import { z } from "zod";
import {
  deleteConversation,
  getConversation,
  listConversations,
} from "../_shared/conversations/store.ts";
import { defineHandler, type Handler, readUserJson } from "../_shared/http/pipeline.ts";
import { action, actionTable, type Caller } from "../_shared/http/actions.ts";
import { runtimeFromEnv, type RuntimeSource } from "../_shared/core/runtime.ts";

/** action → body fields → step. */
const ACTIONS = actionTable({
  list: action({}, async ({ rt, user }: Caller) => ({
    conversations: await listConversations(rt.db, user),
  })),
  get: action({ conversation_id: z.uuid() }, async ({ rt, user }: Caller, body) => ({
    conversation: await getConversation(rt.db, user, body.conversation_id),
  })),
  delete: action({ conversation_id: z.uuid() }, async ({ rt, user }: Caller, body) => {
    await deleteConversation(rt.db, user, body.conversation_id);
    return { ok: true, deleted: body.conversation_id };
  }),
});

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("conversation-manager", runtime, async (request, rt) => {
    const { user, body } = await readUserJson(request, rt, ACTIONS.schema);
    return await ACTIONS.run({ rt, user }, body);
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
