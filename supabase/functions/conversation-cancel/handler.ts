/**
 * conversation-cancel: POST `{run_id}` sets the run's cancel flag in the database, so it reaches
 * the run from any request or isolate. The streaming run polls the flag (RUN_CANCEL_POLL_MS,
 * 250 ms by default), aborts its upstream request, emits `cancelled` and closes. Only the run's
 * owner can set it: anyone else's run, like an unknown one, is RUN_NOT_FOUND.
 */
import { z } from "zod";
import { requestCancel } from "../_shared/conversations/store.ts";
import {
  defineHandler,
  type Handler,
  jsonResponse,
  readUserJson,
} from "../_shared/http/pipeline.ts";
import { runtimeFromEnv, type RuntimeSource } from "../_shared/core/runtime.ts";

const requestSchema = z.strictObject({ run_id: z.uuid() });

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("conversation-cancel", runtime, async (request, rt) => {
    const { user, body: input } = await readUserJson(request, rt, requestSchema);
    const status = await requestCancel(rt.db, user, input.run_id);
    // A run that already ended keeps its outcome; the flag only matters while it is running.
    return jsonResponse({
      run_id: input.run_id,
      status,
      cancel_requested: status === "running",
    });
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
