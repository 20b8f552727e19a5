// What a handler reads of a thread's /proc/<tid>/status: light (no koffi), as
// the rest of @sandlock/dispatch/module.
import { readFileSync } from 'node:fs';

/** The thread group (process) a thread id belongs to, from /proc/<tid>/status. */
export function threadGroupOf(tid: number): number {
  return threadGroupOrNull(tid) ?? tid;
}

/** The thread group of a thread id, or null when /proc/<tid>/status cannot be read. */
export function threadGroupOrNull(tid: number): number | null {
  try {
    const status = readFileSync(`/proc/${tid}/status`, 'latin1');
    const match = /^Tgid:\s+(\d+)$/m.exec(status);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** The thread's umask (`Umask:`, Linux 4.7 and later), 0o022 when it cannot be read. */
export function umaskOf(tid: number): number {
  try {
    const status = readFileSync(`/proc/${tid}/status`, 'latin1');
    const match = /^Umask:\s+([0-7]+)$/m.exec(status);
    return match ? Number.parseInt(match[1]!, 8) : 0o022;
  } catch {
    return 0o022;
  }
}
