import { CLOCK_THREAD_CPUTIME_ID, fieldNumber, readProc, trySyscall, USER_HZ } from '@sandlock/sys';

/**
 * How long a limit may go unenforced because the sandbox's /proc files or
 * pidfds cannot be read for a reason other than its exit (EMFILE, ENFILE,
 * ENOMEM, EACCES…), in ms: past it, the sandbox is killed.
 */
export const UNMEASURED_KILL_MS = 2000;

/** The `Name:  123 kB` lines named, summed, in bytes (missing lines count 0). */
export function sumKilobytes(text: string, names: readonly string[]): number {
  let total = 0;
  for (const name of names) total += (fieldNumber(text, name) ?? 0) * 1024;
  return total;
}

/** Whether a `Name:` line is present. */
export function hasField(text: string, name: string): boolean {
  return text.startsWith(`${name}:`) || text.includes(`\n${name}:`);
}

/** The command name of a process (`/proc/PID/comm`), or '?' (for a message only). */
export function commandOf(pid: number): string {
  try {
    return readProc(`/proc/${pid}/comm`)?.trim() ?? '?';
  } catch {
    return '?';
  }
}

/**
 * CPU time in clock ticks (USER_HZ, 100 per second on Linux) from the text of
 * /proc/PID/stat: `own` is what the process used with all its threads (utime +
 * stime, fields 14-15), `reaped` what its children used that it has waited for
 * (cutime + cstime, fields 16-17).
 */
export function cpuTicks(stat: string): { own: number; reaped: number } {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  return {
    own: Number(fields[11]) + Number(fields[12]),
    reaped: Number(fields[13]) + Number(fields[14]),
  };
}

/** USER_HZ: the unit of the times in /proc/PID/stat. */
export const CLOCK_TICKS_PER_SECOND = USER_HZ;

const timespec = Buffer.alloc(16);

/**
 * CPU time of the calling thread in ms (clock_gettime(CLOCK_THREAD_CPUTIME_ID)):
 * what a check really cost, unlike wall time, which grows when the sandbox
 * keeps every CPU busy.
 */
export function threadCpuMs(): number {
  if (trySyscall('clock_gettime', CLOCK_THREAD_CPUTIME_ID, timespec) !== 0) return 0;
  return Number(timespec.readBigInt64LE(0)) * 1000 + Number(timespec.readBigInt64LE(8)) / 1e6;
}
