import { existsSync, readFileSync } from 'node:fs';
import { Sandbox } from '../src/index.js';

/** The system directories a dynamically linked program needs, where they exist. */
export const SYSTEM_READ = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) =>
  existsSync(path),
);

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

/** Polls `condition` every 10 ms for up to `ms`; resolves with its last value. */
export async function eventually(condition: () => boolean, ms = 2000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}
