/** The bit mask sched_setaffinity(2) takes for `cpus` (64-bit words, little-endian). */
export function cpuMask(cpus: readonly number[]): Buffer {
  const words = Math.max(1, Math.ceil((Math.max(-1, ...cpus) + 1) / 64));
  const mask = Buffer.alloc(words * 8);
  for (const cpu of cpus) {
    const word = Math.floor(cpu / 64);
    mask.writeBigUInt64LE(mask.readBigUInt64LE(word * 8) | (1n << BigInt(cpu % 64)), word * 8);
  }
  return mask;
}
