/** Edit distance (Levenshtein) between two names. */
export function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/**
 * The known name closest to `given`, when it is close enough to be a typo
 * or holds `given` whole (`udp` for `no_udp`).
 */
export function nearest(given: string, known: Iterable<string>): string | undefined {
  let best: { name: string; score: number } | undefined;
  for (const name of known) {
    const score = given.length >= 3 && name.includes(given) ? 0 : distance(given, name);
    if (!best || score < best.score) best = { name, score };
  }
  return best && best.score <= Math.max(2, Math.floor(given.length / 3)) ? best.name : undefined;
}
