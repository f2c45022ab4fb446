/**
 * Error answers as the providers send them (bodies and headers copied from their documentation
 * and real responses), for the recording fakes to answer with.
 */
import type { FakeRoute } from "./fakeUpstream.ts";

export interface ProviderErrorAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const googleInvalidKey = {
  error: {
    code: 400,
    message: "API key not valid. Please pass a valid API key.",
    status: "INVALID_ARGUMENT",
    details: [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        reason: "API_KEY_INVALID",
        domain: "googleapis.com",
        metadata: { service: "generativelanguage.googleapis.com" },
      },
      {
        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
        locale: "en-US",
        message: "API key not valid. Please pass a valid API key.",
      },
    ],
  },
};

export const PROVIDER_ERRORS = {
  openaiInsufficientQuota: {
    status: 429,
    body: {
      error: {
        message:
          "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        type: "insufficient_quota",
        param: null,
        code: "insufficient_quota",
      },
    },
    headers: { "x-request-id": "req_quota_1" },
  },
  openaiRateLimited: {
    status: 429,
    body: {
      error: {
        message: "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3.",
        type: "requests",
        param: null,
        code: "rate_limit_exceeded",
      },
    },
    headers: { "x-request-id": "req_rate_1", "retry-after": "3" },
  },
  /** Gemini's native API: one object. */
  geminiInvalidKey: { status: 400, body: googleInvalidKey },
  /** Gemini's OpenAI-compatible endpoint: the same, as a JSON array. */
  geminiInvalidKeyArray: { status: 400, body: [googleInvalidKey] },
  geminiPermissionDenied: {
    status: 403,
    body: {
      error: {
        code: 403,
        message:
          "Method doesn't allow unregistered callers (callers without established identity).",
        status: "PERMISSION_DENIED",
      },
    },
  },
  /** A request error on Gemini's OpenAI-compatible endpoint: passed through, unwrapped. */
  geminiBadModelArray: {
    status: 400,
    body: [{
      error: {
        code: 400,
        message: "* GenerateContentRequest.model: unexpected model name format\n",
        status: "INVALID_ARGUMENT",
      },
    }],
  },
  anthropicCreditBalance: {
    status: 400,
    body: {
      type: "error",
      error: {
        type: "invalid_request_error",
        message:
          "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
      },
      request_id: "req_011CreditLow",
    },
    headers: { "request-id": "req_011CreditLow" },
  },
  anthropicOverloaded: {
    status: 529,
    body: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } },
    headers: { "request-id": "req_011Overloaded" },
  },
  anthropicInvalidKey: {
    status: 401,
    body: { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } },
    headers: { "request-id": "req_011BadKey" },
  },
  openrouterNoCredits: {
    status: 402,
    body: {
      error: {
        code: 402,
        message: "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
      },
    },
  },
} satisfies Record<string, ProviderErrorAnswer>;

/** A fake route answering with one of the errors above. */
export function providerErrorRoute(answer: ProviderErrorAnswer): FakeRoute {
  return () =>
    new Response(JSON.stringify(answer.body), {
      status: answer.status,
      headers: { "content-type": "application/json", ...answer.headers },
    });
}
