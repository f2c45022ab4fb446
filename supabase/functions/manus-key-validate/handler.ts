/**
 * manus-key-validate: POST (empty body or `{}`) checks the user's own Manus key against the Manus
 * API (MANUS_BASE_URL). `keySource` is always "user": there is no server key to fall back to.
 */
import { z } from "zod";
import { readStatusRows, recordValidation, summarize } from "../_shared/vault/keyWriter.ts";
import { requireApiKey } from "../_shared/vault/keyGetters.ts";
import { buildErrorResponse } from "../_shared/contract/errorCodes.ts";
import {
  defineHandler,
  fail,
  type Handler,
  jsonResponse,
  MAX_BODY_BYTES,
  readBodyBytes,
  readJsonBody,
  readUserJson,
} from "../_shared/http/pipeline.ts";
import { runtimeFromEnv, type RuntimeSource } from "../_shared/core/runtime.ts";
import { validateKey } from "../_shared/upstream/providerCalls.ts";

const requestSchema = z.strictObject({});
const KEY_SOURCE_HEADER = { "x-key-source": "user" };

/**
 * An empty body means `{}`; anything else must be a JSON object with no fields. A body without a
 * content type is read through the bounded reader too (413 past MAX_BODY_BYTES).
 */
async function readOptionalBody(request: Request): Promise<unknown> {
  const length = request.headers.get("content-length");
  if (!request.body || length === "0") return {};
  if (!request.headers.get("content-type")) {
    const bytes = await readBodyBytes(request, MAX_BODY_BYTES);
    if (!bytes || new TextDecoder().decode(bytes).trim() === "") return {};
    fail("UNSUPPORTED_MEDIA_TYPE");
  }
  return await readJsonBody(request);
}

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("manus-key-validate", runtime, async (request, rt) => {
    // The body is an empty object at most; validating it still refuses unknown fields.
    const { user } = await readUserJson(request, rt, requestSchema, readOptionalBody);
    // Validation is about the caller's own stored key, never a shared one.
    const credentials = await requireApiKey(rt, user.id, "manus");
    const outcome = await validateKey(rt.config, rt.fetch, "manus", credentials);
    await recordValidation(rt.db, user, "manus", outcome.status);
    const { rows, usage } = await readStatusRows(rt.db, user, "manus");
    const status = summarize("manus", rows, { usage });
    return jsonResponse({
      ...status,
      keySource: "user",
      valid: outcome.status === "valid",
      upstream_status: outcome.upstreamStatus,
      ...(outcome.code ? { error: buildErrorResponse(outcome.code).error } : {}),
    }, { headers: KEY_SOURCE_HEADER });
    // Error answers say whose key was (not) used too, e.g. MANUS_NOT_CONFIGURED.
  }, { body: { keySource: "user" }, headers: KEY_SOURCE_HEADER });
}

export const handler: Handler = createHandler(runtimeFromEnv);
