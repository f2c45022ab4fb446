/** Awaiting an `openai` SDK call that must fail with the SDK's APIError. */
import { APIError } from "openai";
import { assert } from "./assert.ts";

/** Resolves to the APIError `work` rejected with; fails the test when it did not reject with one. */
export async function expectApiError(work: Promise<unknown>): Promise<APIError> {
  try {
    await work;
  } catch (error) {
    assert(error instanceof APIError, `expected APIError, got ${error}`);
    return error;
  }
  throw new Error("expected the call to fail");
}
