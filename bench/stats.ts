/** Small timing helpers shared by the benchmark sections. */

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/** Runs `fn` `iterations` times (after `warmup` runs) and returns each duration in ms. */
export async function sample(
  fn: () => Promise<unknown>,
  iterations: number,
  warmup = 20,
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    await fn();
    out.push(performance.now() - start);
  }
  return out;
}

/** Formats ms with a unit that keeps the figure readable (µs under 1 ms). */
export function ms(value: number): string {
  return value < 1 ? `${(value * 1000).toFixed(1)} µs` : `${value.toFixed(3)} ms`;
}
