/**
 * The single table of error codes: HTTP status, whether retrying can help, and the message a
 * person sees. Nothing else in the project invents a status code; docs/api.md is generated
 * from this table.
 */
import { PROVIDERS, type Service } from "./providers.ts";

export interface ErrorSpec {
  httpStatus: number;
  recoverable: boolean;
  userMessage: string;
}

/** The wire envelope, in JSON bodies and inside SSE `error` events alike. */
export interface ErrorEnvelope {
  error: { code: string; message: string; recoverable: boolean } & Record<string, unknown>;
}

type ProviderPrefix = Uppercase<Service>;
type ProviderCode<P extends ProviderPrefix> =
  | `${P}_NOT_CONFIGURED`
  | `${P}_INVALID_KEY`
  | `${P}_API_ERROR`
  | `${P}_RATE_LIMITED`
  | `${P}_QUOTA_EXCEEDED`
  | `${P}_UNREACHABLE`
  | `${P}_TIMEOUT`;

/** Where a person adds credit for a provider, for QUOTA_EXCEEDED's message. */
const BILLING_PAGES: Partial<Record<Service, string>> = {
  openai: "https://platform.openai.com/settings/organization/billing",
  gemini: "https://aistudio.google.com/app/plan_information",
  anthropic: "https://console.anthropic.com/settings/billing",
  openrouter: "https://openrouter.ai/settings/credits",
  perplexity: "https://www.perplexity.ai/account/api/billing",
};

/** Every provider gets the same seven codes; only the label in the message changes. */
function providerFamily<P extends ProviderPrefix>(
  prefix: P,
  service: Service,
): Record<ProviderCode<P>, ErrorSpec> {
  const label = PROVIDERS[service].label;
  const where = `Settings → Integrations → ${label}`;
  return {
    [`${prefix}_NOT_CONFIGURED`]: {
      httpStatus: 400,
      recoverable: false,
      userMessage: `${label} API key not configured. Add your key in ${where}.`,
    },
    [`${prefix}_INVALID_KEY`]: {
      httpStatus: 401,
      recoverable: false,
      userMessage: `Invalid ${label} API key. Check or replace it in ${where}.`,
    },
    [`${prefix}_API_ERROR`]: {
      httpStatus: 502,
      recoverable: true,
      userMessage: `${label} API error. Try again in a moment.`,
    },
    [`${prefix}_RATE_LIMITED`]: {
      httpStatus: 429,
      recoverable: true,
      userMessage: `${label} rate limit reached for your key. Try again shortly.`,
    },
    [`${prefix}_QUOTA_EXCEEDED`]: {
      httpStatus: 402,
      recoverable: false,
      userMessage: `Your ${label} account has no credit or quota left for this key. Add credit ${
        BILLING_PAGES[service] ? `at ${BILLING_PAGES[service]}` : "with the provider"
      }, then try again.`,
    },
    [`${prefix}_UNREACHABLE`]: {
      httpStatus: 502,
      recoverable: true,
      userMessage:
        `${label} could not be reached. Check the network or the endpoint address, then try again.`,
    },
    [`${prefix}_TIMEOUT`]: {
      httpStatus: 504,
      recoverable: true,
      userMessage: `${label} did not answer in time. Try again.`,
    },
  } as Record<ProviderCode<P>, ErrorSpec>;
}

const GENERAL = {
  UNAUTHORIZED: {
    httpStatus: 401,
    recoverable: false,
    userMessage: "Sign in again: the request had no valid user session.",
  },
  FORBIDDEN: {
    httpStatus: 403,
    recoverable: false,
    userMessage: "You do not have access to this resource.",
  },
  INVALID_REQUEST: {
    httpStatus: 400,
    recoverable: false,
    userMessage: "The request was not valid.",
  },
  NOT_FOUND: { httpStatus: 404, recoverable: false, userMessage: "Not found." },
  METHOD_NOT_ALLOWED: {
    httpStatus: 405,
    recoverable: false,
    userMessage: "This method is not allowed here.",
  },
  PAYLOAD_TOO_LARGE: {
    httpStatus: 413,
    recoverable: false,
    userMessage: "The request body is too large.",
  },
  UNSUPPORTED_MEDIA_TYPE: {
    httpStatus: 415,
    recoverable: false,
    userMessage: "Send the request body as application/json.",
  },
  CREDENTIALS_UNAVAILABLE: {
    httpStatus: 503,
    recoverable: true,
    userMessage: "Your stored keys could not be read right now. Try again in a moment.",
  },
  SERVER_SHUTTING_DOWN: {
    httpStatus: 503,
    recoverable: true,
    userMessage: "The server is shutting down. Try again in a moment.",
  },
  STREAM_TIME_LIMIT: {
    httpStatus: 504,
    recoverable: false,
    userMessage:
      "The answer ran past this server's time limit for one stream (STREAM_TIME_LIMIT_MS) and was cut short. Ask for a shorter answer.",
  },
  CONFIG_ERROR: {
    httpStatus: 500,
    recoverable: false,
    userMessage: "The server is missing a required setting. Contact the administrator.",
  },
  INTERNAL_ERROR: {
    httpStatus: 500,
    recoverable: true,
    userMessage: "Something went wrong on our side. Try again.",
  },
} as const satisfies Record<string, ErrorSpec>;

const SHARING = {
  SHARE_TOKEN_INVALID: {
    httpStatus: 403,
    recoverable: false,
    userMessage: "This share link is not valid. Ask the owner for a new link.",
  },
  OWNER_KEYS_NOT_ENABLED: {
    httpStatus: 403,
    recoverable: false,
    userMessage: "The owner has not enabled shared keys for this flow.",
  },
  RATE_LIMITED: {
    httpStatus: 429,
    recoverable: true,
    userMessage: "Too many runs in the last minute. Try again shortly.",
  },
  DAILY_QUOTA_EXCEEDED: {
    httpStatus: 403,
    recoverable: false,
    userMessage: "This flow has reached its daily run limit. Try again tomorrow.",
  },
  SHARED_KEY_NOT_FOUND: {
    httpStatus: 404,
    recoverable: false,
    userMessage: "No shared key with that account name is available to you.",
  },
  SHARED_KEY_ACCESS_DENIED: {
    httpStatus: 403,
    recoverable: false,
    userMessage: "You are not on this shared key's allow-list. Ask its owner for access.",
  },
  SHARED_KEY_LIMIT_EXCEEDED: {
    httpStatus: 429,
    recoverable: true,
    userMessage: "This shared key has reached its daily limit. Try again tomorrow.",
  },
  OWNER_NAME_SHARING_DISABLED: {
    httpStatus: 403,
    recoverable: false,
    userMessage: "Owner-name sharing is turned off on this deployment. Use a shared key instead.",
  },
  RUN_LIMIT_EXCEEDED: {
    httpStatus: 429,
    recoverable: false,
    userMessage: "This run reached its age or call limit. Start a new run.",
  },
  RUN_NOT_FOUND: {
    httpStatus: 404,
    recoverable: false,
    userMessage: "No run with that id belongs to you.",
  },
} as const satisfies Record<string, ErrorSpec>;

/** code -> spec. Provider families are spelled out by `providerFamily`. */
export const ERROR_TABLE = {
  ...GENERAL,
  ...SHARING,
  ...providerFamily("OPENAI", "openai"),
  ...providerFamily("GEMINI", "gemini"),
  ...providerFamily("ANTHROPIC", "anthropic"),
  ...providerFamily("MANUS", "manus"),
  ...providerFamily("PERPLEXITY", "perplexity"),
  ...providerFamily("OPENROUTER", "openrouter"),
  ...providerFamily("CUSTOM", "custom"),
};

export type ErrorCode = keyof typeof ERROR_TABLE;

/** `ERROR_CODES.OPENAI_NOT_CONFIGURED === "OPENAI_NOT_CONFIGURED"`, named as in per-user keys. */
export const ERROR_CODES = Object.freeze(
  Object.fromEntries(Object.keys(ERROR_TABLE).map((code) => [code, code])),
) as { readonly [C in ErrorCode]: C };

export type ProviderErrorKind =
  | "NOT_CONFIGURED"
  | "INVALID_KEY"
  | "API_ERROR"
  | "RATE_LIMITED"
  | "QUOTA_EXCEEDED"
  | "UNREACHABLE"
  | "TIMEOUT";

/** The code for one provider and one kind of failure, e.g. ("gemini", "INVALID_KEY"). */
export function providerErrorCode(service: Service, kind: ProviderErrorKind): ErrorCode {
  return `${service.toUpperCase()}_${kind}` as ErrorCode;
}

/** HTTP status for a code. */
export function getHttpStatus(code: ErrorCode): number {
  return ERROR_TABLE[code].httpStatus;
}

/** The envelope for a code; `message` replaces the table's user message when given. */
export function buildErrorResponse(
  code: ErrorCode,
  message?: string,
  details?: Record<string, unknown>,
): ErrorEnvelope {
  const spec = ERROR_TABLE[code];
  return {
    error: {
      ...details,
      code,
      message: message ?? spec.userMessage,
      recoverable: spec.recoverable,
    },
  };
}
