/**
 * The one state model the badge, the count and the card share (src/lib/keyState.ts), over every
 * validation status the server can record, including quota statuses.
 */
import { describe, expect, test } from "vitest";
import { keyStateOf, stateOfValidation, summaryOf } from "../../src/lib/keyState.ts";
import type { ServiceStatus } from "../../src/lib/credentialsApi.ts";

const stored = (over: Partial<ServiceStatus> = {}): ServiceStatus => ({
  service: "openai",
  configured: true,
  status: { api_key: true },
  last_four: "abcd",
  updated_at: null,
  last_validated_at: null,
  validation_status: null,
  last_used_at: null,
  ...over,
});

describe("key state model", () => {
  test("keyStateOf does map every recorded validation status, and only valid is connected", () => {
    expect(stateOfValidation(null)).toBe("unchecked");
    expect(stateOfValidation("valid")).toBe("working");
    expect(stateOfValidation("invalid")).toBe("rejected");
    expect(stateOfValidation("unreachable")).toBe("unreachable");
    for (const quota of ["quota_exceeded", "quota_exhausted", "insufficient_quota"]) {
      expect(stateOfValidation(quota)).toBe("quota_exhausted");
    }
    expect(stateOfValidation("something_new")).toBe("unreachable");
    expect(keyStateOf(stored({ validation_status: "valid", is_active: false }), false)).toBe("disabled");
    expect(keyStateOf(undefined, false)).toBe("loading");
    expect(keyStateOf(undefined, true)).toBe("load_error");
    expect(keyStateOf(stored({ configured: false, status: { api_key: false } }), false)).toBe("not_set");
    expect(keyStateOf(stored({ configured: false, status: { api_key: true, base_url: false } }), false)).toBe(
      "incomplete",
    );
  });

  test("summaryOf does count only working keys and name the others", () => {
    expect(summaryOf(["working", "rejected", "rejected", "quota_exhausted", "not_set", "unchecked", "disabled"]))
      .toBe("1 of 7 providers connected (2 rejected, 1 out of quota, 1 not tested, 1 turned off).");
  });
});
