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
import {
  defineHandler,
  type Handler,
  jsonResponse,
  readUserJson,
} from "../_shared/http/pipeline.ts";
import { runtimeFromEnv, type RuntimeSource } from "../_shared/core/runtime.ts";

const requestSchema = z.discriminatedUnion("action", [
  z.strictObject({ action: z.literal("list") }),
  z.strictObject({ action: z.literal("get"), conversation_id: z.uuid() }),
  z.strictObject({ action: z.literal("delete"), conversation_id: z.uuid() }),
]);

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("conversation-manager", runtime, async (request, rt) => {
    const { user, body } = await readUserJson(request, rt, requestSchema);

    switch (body.action) {
      case "list":
        return jsonResponse({ conversations: await listConversations(rt.db, user) });
      case "get":
        return jsonResponse({
          conversation: await getConversation(rt.db, user, body.conversation_id),
        });
      case "delete":
        await deleteConversation(rt.db, user, body.conversation_id);
        return jsonResponse({ ok: true, deleted: body.conversation_id });
    }
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
