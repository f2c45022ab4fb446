/**
 * credentials-manager: a signed-in user stores, checks and deletes their own provider keys.
 * POST JSON with an `action`: set, delete, get_status, list, validate, test, set_active, events.
 * It never returns the plaintext or the ciphertext. `test` checks a key that is not stored yet
 * (the panel's "Test before save") and stores nothing; `events` reads the audit trail of the
 * caller's own keys.
 */
import { z } from "zod";
import { baseUrlProblem } from "../_shared/upstream/baseUrl.ts";
import type { AuthenticatedUser } from "../_shared/http/auth.ts";
import type { ServiceStatus } from "../_shared/contract/keyStatus.ts";
import {
  deleteCredential,
  readEvents,
  readStatusRows,
  recordValidation,
  setCredentialActive,
  storeCredential,
  summarize,
} from "../_shared/vault/keyWriter.ts";
import { requireApiKey } from "../_shared/vault/keyGetters.ts";
import { buildErrorResponse, providerErrorCode } from "../_shared/contract/errorCodes.ts";
import { defineHandler, fail, type Handler, readUserJson } from "../_shared/http/pipeline.ts";
import { action, actionTable, type Caller } from "../_shared/http/actions.ts";
import {
  apiKeyFormatProblem,
  CREDENTIAL_KEYS,
  type Service,
  SERVICES,
} from "../_shared/contract/providers.ts";
import { outboundUrlProblem } from "../_shared/upstream/outbound.ts";
import { type Runtime, runtimeFromEnv, type RuntimeSource } from "../_shared/core/runtime.ts";
import { validateKey } from "../_shared/upstream/providerCalls.ts";
import { emailsOf } from "../_shared/sharing/userEmails.ts";

const service = z.enum(SERVICES);
const credentialKey = z.enum(CREDENTIAL_KEYS).default("api_key");

type TestRequest = { service: Service; value: string; base_url?: string };
type SetRequest = { service: Service; key: (typeof CREDENTIAL_KEYS)[number]; value: string };

/** Format checks of an unsaved key and, for `custom`, the base URL it is tried against. */
function testProblem(request: TestRequest, allowPrivateBaseUrls: boolean): string | null {
  if (request.base_url !== undefined && request.service !== "custom") {
    return "Only the custom endpoint has a base URL.";
  }
  return apiKeyFormatProblem(request.service, request.value) ??
    (request.base_url === undefined
      ? null
      : baseUrlProblem(request.base_url, allowPrivateBaseUrls));
}

/**
 * Format checks that need the service: key prefixes, and base URLs only for `custom`, whose host
 * must also resolve to addresses the deployment allows (outbound.ts checks again on every call).
 */
async function valueProblem(request: SetRequest, rt: Runtime): Promise<string | null> {
  if (request.key === "base_url") {
    if (request.service !== "custom") return "Only the custom endpoint has a base URL.";
    return baseUrlProblem(request.value, rt.config.allowPrivateBaseUrls) ??
      await outboundUrlProblem(request.value, rt.config.privateAddresses, rt.resolve);
  }
  return apiKeyFormatProblem(request.service, request.value);
}

/**
 * The caller's status of `services`, with each key's usage and, for `custom`, the saved base URL
 * (read back through the vault, since only the server can decrypt it).
 */
async function statuses(
  rt: Runtime,
  user: AuthenticatedUser,
  services: readonly Service[],
): Promise<ServiceStatus[]> {
  const only = services.length === 1 ? services[0] : undefined;
  const { rows, usage } = await readStatusRows(rt.db, user, only);
  const hasBaseUrl = services.includes("custom") &&
    rows.some((row) => row.service === "custom" && row.credential_key === "base_url");
  const baseUrl = hasBaseUrl ? (await rt.vault.lookup(user.id, "custom")).base_url : null;
  return services.map((s) => summarize(s, rows, { usage, baseUrl }));
}

const statusOf = async (rt: Runtime, user: AuthenticatedUser, service: Service) =>
  (await statuses(rt, user, [service]))[0];

/** The answer's `error` for a validation outcome that carries one. */
const outcomeError = ({ error }: Awaited<ReturnType<typeof validateKey>>) =>
  error ? { error: buildErrorResponse(error.code, undefined, error.details).error } : {};

/** action → body fields → step. */
const ACTIONS = actionTable({
  set: action(
    { service, key: credentialKey, value: z.string() },
    async ({ rt, user }: Caller, body) => {
      const problem = await valueProblem(body, rt);
      if (problem) fail("INVALID_REQUEST", problem);
      await storeCredential(rt.db, user, rt.config, body.service, body.key, body.value);
      rt.vault.forget(user.id, body.service);
      return { ok: true, ...await statusOf(rt, user, body.service) };
    },
  ),
  delete: action({ service, key: credentialKey }, async ({ rt, user }: Caller, body) => {
    const removed = await deleteCredential(rt.db, user, body.service, body.key);
    rt.vault.forget(user.id, body.service);
    return { ok: true, removed, ...await statusOf(rt, user, body.service) };
  }),
  get_status: action({ service }, ({ rt, user }: Caller, body) => statusOf(rt, user, body.service)),
  list: action({}, async ({ rt, user }: Caller) => {
    const all = await statuses(rt, user, SERVICES);
    return { services: Object.fromEntries(all.map((s) => [s.service, s])) };
  }),
  validate: action({ service }, async ({ rt, user }: Caller, body) => {
    const stored = await requireApiKey(rt, user.id, body.service);
    const outcome = await validateKey(rt.config, rt.fetch, body.service, stored);
    await recordValidation(rt.db, user, body.service, outcome.status);
    return {
      ...await statusOf(rt, user, body.service),
      valid: outcome.status === "valid",
      upstream_status: outcome.upstreamStatus,
      ...outcomeError(outcome),
    };
  }),
  test: action(
    { service, value: z.string(), base_url: z.string().optional() },
    async ({ rt, user }: Caller, body) => {
      const problem = testProblem(body, rt.config.allowPrivateBaseUrls);
      if (problem) fail("INVALID_REQUEST", problem);
      // A custom endpoint is tried at the base URL given, else at the one already stored.
      const baseUrl = body.service === "custom"
        ? body.base_url ?? (await rt.vault.lookup(user.id, "custom")).base_url
        : undefined;
      const outcome = await validateKey(rt.config, rt.fetch, body.service, {
        api_key: body.value,
        ...(baseUrl ? { base_url: baseUrl } : {}),
      });
      return {
        service: body.service,
        valid: outcome.status === "valid",
        validation_status: outcome.status,
        upstream_status: outcome.upstreamStatus,
        ...outcomeError(outcome),
      };
    },
  ),
  set_active: action({ service, is_active: z.boolean() }, async ({ rt, user }: Caller, body) => {
    const changed = await setCredentialActive(rt.db, user, body.service, body.is_active);
    if (changed === 0) fail(providerErrorCode(body.service, "NOT_CONFIGURED"));
    rt.vault.forget(user.id, body.service);
    return { ok: true, ...await statusOf(rt, user, body.service) };
  }),
  events: action(
    { limit: z.number().int().min(1).max(500).default(100) },
    async ({ rt, user }: Caller, body) => {
      const events = await readEvents(rt.db, user, body.limit);
      const emails = await emailsOf(rt.db, events.flatMap((e) => (e.actor_id ? [e.actor_id] : [])));
      return {
        events: events.map((e) => ({
          ...e,
          actor_email: e.actor_id ? emails.get(e.actor_id) ?? null : null,
        })),
      };
    },
  ),
});

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("credentials-manager", runtime, async (request, rt) => {
    const { user, body } = await readUserJson(request, rt, ACTIONS.schema);
    return await ACTIONS.run({ rt, user }, body);
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
