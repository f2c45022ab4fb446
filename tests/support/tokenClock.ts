/**
 * A token's `exp` for tests that watch it expire: at least two whole seconds away, so a token
 * minted just before a second boundary is still alive when it is first verified.
 */
export function expSoon(): number {
  return Math.floor(Date.now() / 1000) + 3;
}

/** Waits until `exp` (seconds since the epoch) has passed, whatever the time is now. */
export function untilExpired(exp: number): Promise<void> {
  const wait = Math.max(0, exp * 1000 - Date.now() + 100);
  return new Promise((resolve) => setTimeout(resolve, wait));
}
