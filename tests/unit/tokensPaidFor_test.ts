import { assertEquals } from "../support/assert.ts";
import {
  MAX_TOKENS_PER_CALL,
  tokensPaidFor,
} from "../../supabase/functions/_shared/upstream/tokenUsage.ts";

Deno.test("tokensPaidFor is prompt plus completion, or the reported total when larger", () => {
  assertEquals(tokensPaidFor({ promptTokens: 7, completionTokens: 11, totalTokens: 18 }), 18);
  // Anthropic reports no total; Gemini's total can hold more than its two parts.
  assertEquals(tokensPaidFor({ promptTokens: 25, completionTokens: 15, totalTokens: 0 }), 40);
  assertEquals(tokensPaidFor({ promptTokens: 4, completionTokens: 6, totalTokens: 13 }), 13);
  assertEquals(tokensPaidFor({ promptTokens: 3, completionTokens: 0, totalTokens: 3 }), 3);
  assertEquals(tokensPaidFor(null), 0);
});

Deno.test("tokensPaidFor clamps poisoned counts like every token count", () => {
  assertEquals(tokensPaidFor({ promptTokens: -5, completionTokens: "abc", totalTokens: NaN }), 0);
  assertEquals(
    tokensPaidFor({
      promptTokens: 99999999999999999999,
      completionTokens: MAX_TOKENS_PER_CALL,
      totalTokens: 1.5e300,
    }),
    MAX_TOKENS_PER_CALL,
  );
});
