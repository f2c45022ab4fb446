/**
 * The one check on token counts a provider reports. A count is what the owner of a key pays
 * for, and it lands in integer columns, so whatever the upstream sent (a string, a negative,
 * 99999999999999999999) becomes a safe integer between 0 and MAX_TOKENS_PER_CALL, or null.
 */

/** No single upstream call reports more; also keeps every column far from its integer limit. */
export const MAX_TOKENS_PER_CALL = 10_000_000;

/** `value` as a token count, clamped to [0, MAX_TOKENS_PER_CALL]; null when it is not a count. */
export function tokenCount(value: unknown): number | null {
  const number = typeof value === "string" && /^\d{1,30}$/.test(value) ? Number(value) : value;
  if (typeof number !== "number" || !Number.isFinite(number) || number < 0) return null;
  return Math.min(Math.floor(number), MAX_TOKENS_PER_CALL);
}

/**
 * The tokens one answer cost the key's owner: prompt plus completion (input plus output), or the
 * reported total when that is larger (Gemini counts thoughts and tool prompts in it), clamped
 * like every count. Zero when the provider reported nothing.
 */
export function tokensPaidFor(
  usage: { promptTokens: unknown; completionTokens: unknown; totalTokens: unknown } | null,
): number {
  if (!usage) return 0;
  const parts = (tokenCount(usage.promptTokens) ?? 0) + (tokenCount(usage.completionTokens) ?? 0);
  return Math.min(Math.max(parts, tokenCount(usage.totalTokens) ?? 0), MAX_TOKENS_PER_CALL);
}
