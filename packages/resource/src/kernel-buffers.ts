import {
  close,
  descriptorsOf,
  ERRNO,
  F_GETPIPE_SZ,
  ioctlBuffer,
  pageSize,
  SIOCINQ,
  SIOCOUTQ,
  SysError,
  trySyscall,
} from '@sandlock/sys';

const { EBADF, EINVAL, ESRCH } = ERRNO;

/** Kernel memory a sandbox holds through its descriptors, in bytes. */
export interface HeldBuffers {
  /**
   * Sockets: what each sent that is still queued (SIOCOUTQ; for AF_UNIX the
   * buffers charged to the sender, overhead included) plus what waits to be
   * read (SIOCINQ). Data one of its sockets sent to another is counted twice
   * (sent, and waiting): an upper bound.
   */
  sockets: number;
  /** Pipes: the bytes in each, in whole pages (never more than its capacity). */
  pipes: number;
}

const value = Buffer.alloc(4);

/** An int-returning ioctl on `fd`; 0 where it does not apply (a listening socket, a non-socket). */
function queue(fd: number, request: number): number {
  return ioctlBuffer(fd, request, value) < 0 ? 0 : value.readInt32LE(0);
}

function pipeBytes(fd: number): number {
  const capacity = trySyscall('fcntl', fd, F_GETPIPE_SZ);
  const bytes = queue(fd, SIOCINQ);
  if (capacity < 0 || bytes <= 0) return 0;
  const page = pageSize();
  return Math.min(capacity, Math.ceil(bytes / page) * page);
}

/**
 * The socket and pipe buffers the processes `pids` hold through their
 * descriptors, each socket or pipe counted once however many descriptors
 * name it. Reads each through a duplicate of the descriptor
 * (pidfd_getfd(2)), closed at once. A process or descriptor that went away
 * meanwhile counts nothing.
 *
 * @throws ProcReadError or SysError when a descriptor table or descriptor
 *   cannot be read for another reason (EMFILE, EPERM…).
 */
export function heldBuffers(pids: readonly number[]): HeldBuffers {
  const held: HeldBuffers = { sockets: 0, pipes: 0 };
  const seen = new Set<string>();
  for (const pid of pids) {
    const descriptors = descriptorsOf(pid);
    if (descriptors === null) continue;
    let pidfd: number | null = null;
    try {
      for (const [fd, target] of descriptors) {
        const socket = target.startsWith('socket:[');
        if (!(socket || target.startsWith('pipe:[')) || seen.has(target)) continue;
        seen.add(target);
        if (pidfd === null) {
          pidfd = trySyscall('pidfd_open', pid, 0);
          // EINVAL: the pid is still allocated, its process released.
          if (pidfd === -ESRCH || pidfd === -EINVAL) break;
          if (pidfd < 0) throw new SysError('pidfd_open', -pidfd, `pid ${pid}`);
        }
        const copy = trySyscall('pidfd_getfd', pidfd, fd, 0);
        if (copy === -EBADF) continue; // closed meanwhile
        if (copy === -ESRCH) break;
        if (copy < 0) throw new SysError('pidfd_getfd', -copy, `pid ${pid} fd ${fd}`);
        try {
          if (socket) held.sockets += queue(copy, SIOCOUTQ) + queue(copy, SIOCINQ);
          else held.pipes += pipeBytes(copy);
        } finally {
          close(copy);
        }
      }
    } finally {
      if (pidfd !== null && pidfd >= 0) close(pidfd);
    }
  }
  return held;
}
