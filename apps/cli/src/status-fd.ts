import { fstatSync, readdirSync, readlinkSync } from 'node:fs';
import { UsageError } from './args.js';

function linkOf(fd: number | string): string | null {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

/**
 * Why `fd` cannot be the status descriptor, or null. It must be one the
 * program that started sandlock passed on: Node opens descriptors of its own
 * at start-up (epoll and eventfd instances, and pipes whose both ends it
 * holds, for its event loop and signals), and writing the status there
 * corrupts the event loop. Those are recognised by what they are: an
 * anonymous inode, or a pipe this process holds both ends of. The flags do
 * not tell: Node sets close-on-exec on inherited descriptors too.
 */
function refusal(fd: number): string | null {
  try {
    fstatSync(fd);
  } catch {
    return 'is not an open file descriptor';
  }
  const link = linkOf(fd);
  if (link === null) return 'cannot be inspected (/proc/self/fd)';
  if (link.startsWith('anon_inode:')) return `is one of Node's own descriptors (${link})`;
  if (link.startsWith('pipe:')) {
    const ends = readdirSync('/proc/self/fd').filter((other) => linkOf(other) === link);
    if (ends.length > 1) return `is one of Node's own descriptors (both ends of ${link})`;
  }
  return null;
}

/** The `--status-fd` descriptor, checked before anything runs. */
export function statusFdOf(value: string | undefined): number | null {
  if (value === undefined) return null;
  if (!/^\d+$/.test(value)) {
    throw new UsageError(`sandlock run: --status-fd expects a descriptor number, got '${value}'`);
  }
  const fd = Number(value);
  const why = refusal(fd);
  if (why !== null) {
    throw new UsageError(
      `sandlock run: --status-fd ${fd} ${why}; pass a descriptor opened for sandlock, e.g. 3>status.json`,
    );
  }
  return fd;
}
