/** Median of a list of numbers. */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The value below which `fraction` of the list lies. */
export function percentile(values, fraction) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}

/**
 * Runs each case `runs` times, interleaved (a, b, a, b, …) so that noise on
 * the shared machine hits every case alike; returns milliseconds per run.
 */
export async function interleave(cases, runs, warmup = 10) {
  for (let i = 0; i < warmup; i++) for (const run of Object.values(cases)) await run();
  const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, run] of Object.entries(cases)) {
      const start = process.hrtime.bigint();
      await run();
      samples[name].push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  return samples;
}

export function summarize(samples) {
  return Object.fromEntries(
    Object.entries(samples).map(([name, values]) => [
      name,
      { median: median(values), p90: percentile(values, 0.9), runs: values.length },
    ]),
  );
}
