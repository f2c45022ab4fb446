import { assert, assertEquals } from "../support/assert.ts";
import { AppError } from "../../supabase/functions/_shared/core/errors.ts";
import { ERROR_TABLE } from "../../supabase/functions/_shared/contract/errorCodes.ts";
import type { Service } from "../../supabase/functions/_shared/contract/providers.ts";
import { PROVIDER_ERRORS, type ProviderErrorAnswer } from "../support/providerErrors.ts";
import { captureLogs } from "../support/runtime.ts";

function fromUpstream(service: Service, answer: ProviderErrorAnswer, secret?: string): AppError {
  return AppError.fromUpstream(service, {
    status: answer.status,
    headers: new Headers(answer.headers),
    text: JSON.stringify(answer.body),
  }, { secret });
}

Deno.test("AppError.fromUpstream maps each provider's error by what it said, not only its status", () => {
  const cases: [Service, ProviderErrorAnswer, string, number, boolean][] = [
    ["openai", PROVIDER_ERRORS.openaiInsufficientQuota, "OPENAI_QUOTA_EXCEEDED", 402, false],
    ["openai", PROVIDER_ERRORS.openaiRateLimited, "OPENAI_RATE_LIMITED", 429, true],
    ["gemini", PROVIDER_ERRORS.geminiInvalidKey, "GEMINI_INVALID_KEY", 401, false],
    ["gemini", PROVIDER_ERRORS.geminiInvalidKeyArray, "GEMINI_INVALID_KEY", 401, false],
    ["gemini", PROVIDER_ERRORS.geminiPermissionDenied, "GEMINI_INVALID_KEY", 401, false],
    ["anthropic", PROVIDER_ERRORS.anthropicCreditBalance, "ANTHROPIC_QUOTA_EXCEEDED", 402, false],
    ["anthropic", PROVIDER_ERRORS.anthropicOverloaded, "ANTHROPIC_API_ERROR", 502, true],
    ["anthropic", PROVIDER_ERRORS.anthropicInvalidKey, "ANTHROPIC_INVALID_KEY", 401, false],
    ["openrouter", PROVIDER_ERRORS.openrouterNoCredits, "OPENROUTER_QUOTA_EXCEEDED", 402, false],
  ];
  for (const [service, answer, code, status, recoverable] of cases) {
    const error = fromUpstream(service, answer);
    assertEquals([error.code, error.status], [code, status], `${service} ${answer.status}`);
    assertEquals(ERROR_TABLE[error.code].recoverable, recoverable, code);
    assertEquals(error.details?.upstream_status, answer.status);
    if (!recoverable) assertEquals(error.headers["x-should-retry"], "false", code);
  }
});

Deno.test("AppError.fromUpstream keeps the request id, the provider's type and code, and retry-after", () => {
  const quota = fromUpstream("openai", PROVIDER_ERRORS.openaiInsufficientQuota);
  assertEquals(quota.details, {
    upstream_status: 429,
    upstream_request_id: "req_quota_1",
    upstream_type: "insufficient_quota",
    upstream_code: "insufficient_quota",
  });
  assert(ERROR_TABLE.OPENAI_QUOTA_EXCEEDED.userMessage.includes("platform.openai.com"));
  assertEquals(quota.headers["retry-after"], undefined, "no point retrying a quota");
  const limited = fromUpstream("openai", PROVIDER_ERRORS.openaiRateLimited);
  assertEquals(limited.headers["retry-after"], "3");
  const gemini = fromUpstream("gemini", PROVIDER_ERRORS.geminiInvalidKeyArray);
  assertEquals(gemini.details?.upstream_type, "INVALID_ARGUMENT");
  assertEquals(gemini.details?.upstream_code, "API_KEY_INVALID");
  const anthropic = fromUpstream("anthropic", PROVIDER_ERRORS.anthropicOverloaded);
  assertEquals(anthropic.details?.upstream_request_id, "req_011Overloaded");
  assertEquals(anthropic.details?.upstream_type, "overloaded_error");
});

Deno.test("AppError.fromUpstream keeps no detail that carries the key", () => {
  const key = "sk-proj-abcdefghijklmnop1234";
  const echoed: ProviderErrorAnswer = {
    status: 401,
    body: { error: { message: `Incorrect API key provided: ${key}`, type: key, code: key } },
    headers: { "x-request-id": key },
  };
  const error = fromUpstream("openai", echoed, key);
  assertEquals(error.code, "OPENAI_INVALID_KEY");
  assertEquals(error.details, { upstream_status: 401 });
  const prose: ProviderErrorAnswer = {
    status: 401,
    body: { error: { message: "x", type: "invalid request <script>", code: "a".repeat(200) } },
  };
  assertEquals(fromUpstream("openai", prose).details, { upstream_status: 401 });
});

Deno.test("AppError.fromUpstream reads a body that is not JSON by its status alone", () => {
  const html = AppError.fromUpstream("custom", {
    status: 503,
    headers: new Headers(),
    text: "<html>Service Unavailable</html>",
  });
  assertEquals([html.code, html.details], ["CUSTOM_API_ERROR", { upstream_status: 503 }]);
});

Deno.test("AppError.fromNetwork is UNREACHABLE with a redacted log line, or TIMEOUT", async () => {
  const { result, lines } = await captureLogs(() =>
    Promise.resolve(
      AppError.fromNetwork("anthropic", new TypeError("connect refused sk-ant-secret123456"), {
        url: "https://api.example.test/v1/messages",
      }),
    )
  );
  assertEquals([result.code, result.status], ["ANTHROPIC_UNREACHABLE", 502]);
  assert(ERROR_TABLE.ANTHROPIC_UNREACHABLE.recoverable);
  assertEquals(lines.length, 1);
  assert(lines[0].includes("api.example.test"));
  assert(!lines[0].includes("sk-ant-secret123456"), "the log line is redacted");
  const timeout = AppError.fromNetwork("gemini", new DOMException("late", "TimeoutError"));
  assertEquals(timeout.code, "GEMINI_TIMEOUT");
  const { result: gone, lines: quiet } = await captureLogs(() =>
    Promise.resolve(AppError.fromNetwork("openai", new DOMException("client left", "AbortError")))
  );
  assertEquals([gone.code, quiet], ["OPENAI_API_ERROR", []], "a client that left is not an outage");
});
