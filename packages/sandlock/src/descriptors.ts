// File descriptors: the supervising process keeps its own in reserve, and a
// sandbox starts with fewer. A sandbox that ran this process out of
// descriptors would blind every limit it enforces from /proc (they fail
// closed, see @sandlock/resource) and stop new sandboxes from starting.
import { getRlimit, type Rlimit, setRlimit } from '@sandlock/sys';

/**
 * The soft limit on open files (RLIMIT_NOFILE) a sandbox starts with when its
 * policy sets no `maxOpenFiles`: 1024, what systemd gives services and what
 * select(2) can handle. The hard limit stays this process's (but see
 * sandboxOpenFiles), so a program that needs more raises its own soft limit.
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

/**
 * The open-file limit a sandbox starts with: the policy's `maxOpenFiles`
 * (both limits), or SANDBOX_OPEN_FILES with this process's hard limit. Under
 * a memory limit (`bounded`) the hard limit is SANDBOX_OPEN_FILES too: the
 * kernel lets a user have as many descriptors in flight in SCM_RIGHTS
 * messages as the sender's soft limit (too_many_unix_fds() in
 * net/unix/garbage.c), and a socket in flight holds buffers no count of the
 * sandbox's descriptors sees (measured: 20,002 sockets holding 2.2 GiB
 * under `-m 64M` at a soft limit of 20,000; 1,026 holding 114 MiB at 1,024).
 */
export function sandboxOpenFiles(maxOpenFiles: number | null, bounded = false): Rlimit {
  if (maxOpenFiles !== null) {
    const limit = BigInt(maxOpenFiles);
    return { soft: limit, hard: limit };
  }
  reserveDescriptors();
  // Read again: the host may have lowered its hard limit since, and a
  // sandbox may not be given more than it has (prlimit64 fails with EPERM).
  const own = getRlimit('NOFILE');
  const soft = own.hard < SANDBOX_OPEN_FILES ? own.hard : SANDBOX_OPEN_FILES;
  return { soft, hard: bounded ? soft : own.hard };
}
