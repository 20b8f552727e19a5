// File descriptors: the supervising process keeps its own in reserve, and a
// sandbox starts with fewer. A sandbox that ran this process out of
// descriptors would blind every limit it enforces from /proc (they fail
// closed, see @sandlock/resource) and stop new sandboxes from starting.
import { getRlimit, type Rlimit, setRlimit } from '@sandlock/sys';

/**
 * The soft limit on open files (RLIMIT_NOFILE) a sandbox starts with when its
 * policy sets no `maxOpenFiles`: 1024, what systemd gives services and what
 * select(2) can handle. The hard limit stays this process's, so a program
 * that needs more raises its own soft limit.
 */
export const SANDBOX_OPEN_FILES = 1024n;

let reserved: Rlimit | null = null;

/**
 * Raises this process's soft RLIMIT_NOFILE to its hard limit, once (Node does
 * so at startup; an embedder may not have), and returns the limit.
 */
export function reserveDescriptors(): Rlimit {
  if (reserved === null) {
    const limit = getRlimit('NOFILE');
    if (limit.soft < limit.hard) {
      limit.soft = limit.hard;
      setRlimit('NOFILE', limit);
    }
    reserved = limit;
  }
  return reserved;
}

/** The open-file limit a sandbox starts with: the policy's `maxOpenFiles`, or SANDBOX_OPEN_FILES. */
export function sandboxOpenFiles(maxOpenFiles: number | null): Rlimit {
  if (maxOpenFiles !== null) {
    const limit = BigInt(maxOpenFiles);
    return { soft: limit, hard: limit };
  }
  const own = reserveDescriptors();
  return { soft: own.hard < SANDBOX_OPEN_FILES ? own.hard : SANDBOX_OPEN_FILES, hard: own.hard };
}
