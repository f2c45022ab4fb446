/**
 * execute (owner-funded shared flows): one model call of a shared flow's run, paid by the flow's
 * owner. POST {shareToken, runId, provider, request}, where `request` is an OpenAI chat/completions
 * body (it may stream). The database decides whether the share token may spend the owner's keys,
 * counts the run and bounds it (age, calls, the collaborator who opened it, the owner's fixed
 * provider, model and max_tokens cap); the client's claims decide nothing, and a body carrying API
 * keys is refused.
 */
import { z } from "zod";
import { checkAndLogRun, ownerKeyForRun } from "../_shared/sharing/flowRuns.ts";
import {
  defineHandler,
  fail,
  type Handler,
  parseWith,
  readJsonBody,
} from "../_shared/http/pipeline.ts";
import { resolveProviderKey } from "../_shared/sharing/keyResolution.ts";
import { PROVIDERS, SERVICES } from "../_shared/contract/providers.ts";
import { forwardWithKey } from "../_shared/upstream/proxy.ts";
import { runtimeFromEnv, type RuntimeSource } from "../_shared/core/runtime.ts";
import { SHARE_TOKEN_PATTERN } from "../_shared/sharing/shareTokens.ts";

const proxiedServices = SERVICES.filter((service) => PROVIDERS[service].openAICompatible);

const requestSchema = z.strictObject({
  shareToken: z.string().regex(SHARE_TOKEN_PATTERN, "not a share token"),
  runId: z.uuid(),
  provider: z.enum(proxiedServices as [string, ...string[]]).default("openai"),
  request: z.looseObject({
    model: z.string().min(1).max(200),
    messages: z.array(z.unknown()).min(1),
    max_tokens: z.int().min(1).max(10_000_000).nullish(),
    max_completion_tokens: z.int().min(1).max(10_000_000).nullish(),
  }),
});

/** Field names that mean the client is trying to bring its own key into an owner-funded call. */
const KEY_FIELD = /^(api[_-]?keys?|apikeys?|authorization|x-api-key|secret|provider[_-]?keys?)$/i;

function carriesKeys(value: unknown, depth = 0): boolean {
  if (depth > 20 || value === null || typeof value !== "object") return false;
  return Object.entries(value).some(([name, inner]) =>
    KEY_FIELD.test(name) || carriesKeys(inner, depth + 1)
  );
}

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("execute", runtime, async (request, rt) => {
    if (request.method !== "POST") fail("METHOD_NOT_ALLOWED");
    const user = await rt.authenticate(request.headers.get("authorization"));
    const raw = await readJsonBody(request);
    if (carriesKeys(raw)) {
      fail("INVALID_REQUEST", "Do not send API keys: the flow's owner pays for this run.");
    }
    const { shareToken, runId, request: body, provider } = parseWith(requestSchema, raw);
    const service = provider as (typeof proxiedServices)[number];

    // Consent and quota: one round trip, fresh on every call. The owner's key then comes from the
    // vault like any key (cached within the documented 10 s bound for key changes).
    const requested = body.max_completion_tokens ?? body.max_tokens ?? null;
    const admission = await checkAndLogRun(rt, shareToken, runId, user.id, null, {
      provider: service,
      model: body.model,
      maxTokens: requested,
    });
    // The owner's cap applies to a request that names no limit of its own.
    const upstreamBody = requested === null && admission.maxTokensLimit !== null
      ? { ...body, max_tokens: admission.maxTokensLimit }
      : body;
    const ownRun = admission.ownerId === user.id;
    const key = ownRun
      ? await resolveProviderKey(rt, user, service)
      : { credentials: await ownerKeyForRun(rt, admission, service), source: "owner" as const };

    const upstreamRequest = new Request(request.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: request.headers.get("accept") ?? "*/*",
      },
      body: JSON.stringify(upstreamBody),
      signal: request.signal,
    });
    return await forwardWithKey(upstreamRequest, rt, { service, path: "/chat/completions" }, {
      userId: ownRun ? user.id : admission.ownerId,
      key,
      responseHeaders: {
        "x-ratelimit-remaining-minute": String(admission.remainingMinute),
        "x-ratelimit-remaining-day": String(admission.remainingDay),
      },
    });
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
