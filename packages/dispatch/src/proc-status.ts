// What a handler reads of a thread's /proc/<tid>/status: light (no koffi), as
// the rest of @sandlock/dispatch/module.
import { closeSync, openSync, readSync } from 'node:fs';

let buffer = Buffer.allocUnsafe(4096);

/**
 * The text of /proc/<tid>/status (throws as readFileSync would): opened,
 * read to its end into a buffer kept between calls, closed. readFileSync
 * also stats the file (procfs gives size 0) and copies it twice; handlers
 * read a caller's status several times per file they make.
 */
export function readStatus(tid: number | 'self' | 'thread-self'): string {
  const fd = openSync(`/proc/${tid}/status`, 'r');
  try {
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        const larger = Buffer.allocUnsafe(buffer.length * 2);
        buffer.copy(larger, 0, 0, length);
        buffer = larger;
      }
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) return buffer.toString('latin1', 0, length);
      length += read;
    }
  } finally {
    closeSync(fd);
  }
}

/** The thread group (process) a thread id belongs to, from /proc/<tid>/status. */
export function threadGroupOf(tid: number): number {
  return threadGroupOrNull(tid) ?? tid;
}

/** The thread group of a thread id, or null when /proc/<tid>/status cannot be read. */
export function threadGroupOrNull(tid: number): number | null {
  try {
    const status = readStatus(tid);
    const match = /^Tgid:\s+(\d+)$/m.exec(status);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** The thread's umask (`Umask:`, Linux 4.7 and later), 0o022 when it cannot be read. */
export function umaskOf(tid: number): number {
  try {
    const status = readStatus(tid);
    const match = /^Umask:\s+([0-7]+)$/m.exec(status);
    return match ? Number.parseInt(match[1]!, 8) : 0o022;
  } catch {
    return 0o022;
  }
}
