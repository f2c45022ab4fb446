import { assert, assertEquals } from "../support/assert.ts";
import {
  buildErrorResponse,
  ERROR_CODES,
  ERROR_TABLE,
  getHttpStatus,
  providerErrorCode,
} from "../../supabase/functions/_shared/contract/errorCodes.ts";
import { SERVICES } from "../../supabase/functions/_shared/contract/providers.ts";

Deno.test("errorCodes gives the per-user key codes their statuses", () => {
  assertEquals(getHttpStatus(ERROR_CODES.OPENAI_NOT_CONFIGURED), 400);
  assertEquals(getHttpStatus(ERROR_CODES.OPENAI_INVALID_KEY), 401);
  assertEquals(getHttpStatus(ERROR_CODES.OPENAI_API_ERROR), 502);
  assertEquals(getHttpStatus(ERROR_CODES.GEMINI_NOT_CONFIGURED), 400);
  assertEquals(getHttpStatus(ERROR_CODES.GEMINI_INVALID_KEY), 401);
  assertEquals(getHttpStatus(ERROR_CODES.UNAUTHORIZED), 401);
  assertEquals(getHttpStatus(ERROR_CODES.INVALID_REQUEST), 400);
  assertEquals(getHttpStatus(ERROR_CODES.CREDENTIALS_UNAVAILABLE), 503);
  assertEquals(getHttpStatus(ERROR_CODES.CONFIG_ERROR), 500);
});

Deno.test("errorCodes has the full family for every provider", () => {
  for (const service of SERVICES) {
    assertEquals(getHttpStatus(providerErrorCode(service, "NOT_CONFIGURED")), 400);
    assertEquals(getHttpStatus(providerErrorCode(service, "INVALID_KEY")), 401);
    assertEquals(getHttpStatus(providerErrorCode(service, "API_ERROR")), 502);
    assertEquals(getHttpStatus(providerErrorCode(service, "RATE_LIMITED")), 429);
    assertEquals(getHttpStatus(providerErrorCode(service, "TIMEOUT")), 504);
    assert(ERROR_TABLE[providerErrorCode(service, "RATE_LIMITED")].recoverable);
  }
});

Deno.test("errorCodes messages say where to fix a missing key", () => {
  assertEquals(
    buildErrorResponse("OPENAI_NOT_CONFIGURED").error.message,
    "OpenAI API key not configured. Add your key in Settings → Integrations → OpenAI.",
  );
  assert(
    buildErrorResponse("MANUS_NOT_CONFIGURED").error.message.includes(
      "Settings → Integrations → Manus",
    ),
  );
});

Deno.test("buildErrorResponse builds the one envelope", () => {
  assertEquals(buildErrorResponse("CREDENTIALS_UNAVAILABLE"), {
    error: {
      code: "CREDENTIALS_UNAVAILABLE",
      message: ERROR_TABLE.CREDENTIALS_UNAVAILABLE.userMessage,
      recoverable: true,
    },
  });
  assertEquals(ERROR_CODES.OPENAI_NOT_CONFIGURED, "OPENAI_NOT_CONFIGURED");
});
