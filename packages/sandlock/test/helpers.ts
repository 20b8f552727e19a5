import { readFileSync } from 'node:fs';
import { eventually, SYSTEM_DIRS } from '../../../tools/test-support/index.js';
import { Sandbox } from '../src/index.js';

/** The system directories a dynamically linked program needs, where they exist. */
export const SYSTEM_READ = SYSTEM_DIRS;

/** A builder that can already run /bin/sh and coreutils. */
export function systemBuilder() {
  return Sandbox.builder().fsRead(...SYSTEM_READ);
}

/** Whether a process exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The state letter of a process (R, S, T, Z, …) from /proc/PID/stat. */
export function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2)[0]!;
}

export { eventually };
