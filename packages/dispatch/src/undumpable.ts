// While this process supervises a sandbox it is not dumpable (prctl(2),
// PR_SET_DUMPABLE 0): /proc/<pid>/environ, maps, mem, fd… become root's and
// the ptrace-mode checks refuse every process without CAP_SYS_PTRACE
// (__ptrace_may_access() in kernel/ptrace.c), so no process of the same user
// — a sandbox's, or anything an on-behalf operation could be tricked into
// opening — reads this process's environment or memory. No core dump is
// written meanwhile and debuggers cannot attach; the previous state comes
// back once nothing is supervised. SANDLOCK_HOST_DUMPABLE=1 in this
// process's environment opts out.
import { PR_GET_DUMPABLE, PR_SET_DUMPABLE, trySyscall } from '@sandlock/sys';

let holders = 0;
/** The state to give back, or -1 when this module did not change it. */
let previous = -1;

/** One more supervised sandbox: the process is not dumpable until {@link releaseUndumpable}. */
export function holdUndumpable(): void {
  if (holders++ > 0 || process.env.SANDLOCK_HOST_DUMPABLE === '1') return;
  const before = trySyscall('prctl', PR_GET_DUMPABLE, 0, 0, 0, 0);
  const result = trySyscall('prctl', PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (result < 0) {
    holders--;
    throw new Error(`sandlock: prctl(PR_SET_DUMPABLE, 0) failed: errno ${-result}`);
  }
  previous = before;
}

/** One supervised sandbox fewer: the last one gives the process its dumpable state back. */
export function releaseUndumpable(): void {
  if (holders === 0 || --holders > 0) return;
  if (previous > 0) trySyscall('prctl', PR_SET_DUMPABLE, previous, 0, 0, 0);
  previous = -1;
}
