// Running this process out of file descriptors for a moment, as an attack on
// the supervising process would (EMFILE), without lowering its limits for
// good: the soft RLIMIT_NOFILE is lowered to a little above what is open,
// the rest is filled with /dev/null, and both are undone afterwards.
import { closeSync, openSync, readdirSync } from 'node:fs';
import { getRlimit, setRlimit } from '@sandlock/sys';

/** Opens /dev/null until EMFILE; returns the descriptors to close. */
function fillDescriptors(): number[] {
  const held: number[] = [];
  for (;;) {
    try {
      held.push(openSync('/dev/null', 'r'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EMFILE') return held;
      for (const fd of held) closeSync(fd);
      throw error;
    }
  }
}

/**
 * Runs `body` while this process has no descriptor left. Keep `body`
 * synchronous or short: anything else this process does meanwhile meets
 * EMFILE too.
 */
export async function withoutDescriptors<T>(body: () => T | Promise<T>): Promise<T> {
  const saved = getRlimit('NOFILE');
  const open = BigInt(readdirSync('/proc/self/fd').length);
  setRlimit('NOFILE', { soft: open + 16n, hard: saved.hard });
  let held: number[] = [];
  try {
    held = fillDescriptors();
    return await body();
  } finally {
    for (const fd of held) closeSync(fd);
    setRlimit('NOFILE', saved);
  }
}
