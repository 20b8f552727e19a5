// PIDFD_GET_INFO (include/uapi/linux/pidfd.h): what a pidfd says of its
// process, its exit status included once it has been reaped (PIDFD_INFO_EXIT,
// Linux 6.15), also by a process that is not its parent. The kernel keeps the
// status for as long as a pidfd of the process is open (fs/pidfs.c).

import { ERRNO } from './errno.js';
import { SysError } from './errors.js';
import { ioctlBuffer } from './io.js';

export const PIDFD_INFO_PID = 1n << 0n;
export const PIDFD_INFO_EXIT = 1n << 3n;
/** struct pidfd_info as of Linux 6.13 (PIDFD_INFO_SIZE_VER0); later fields are left out. */
const PIDFD_INFO_SIZE = 64;
/** _IOWR(PIDFS_IOCTL_MAGIC 0xFF, 11, 64 bytes) */
export const PIDFD_GET_INFO = 0xc040ff0b;

const OFFSET = { mask: 0, pid: 16, ppid: 24, exitCode: 60 } as const;

export interface PidfdInfo {
  pid: number;
  ppid: number;
  /** The wait(2) status word once the process has been reaped (and exit info was asked); else null. */
  waitStatus: number | null;
}

/**
 * The process's pid and parent, and with `exit` its wait status once
 * reaped. Null when the process has been reaped and `exit` was not asked
 * (ESRCH). Throws a SysError otherwise, EINVAL or ENOTTY where the kernel has
 * no PIDFD_GET_INFO.
 */
export function pidfdInfo(pidfd: number, exit: boolean): PidfdInfo | null {
  const buffer = Buffer.alloc(PIDFD_INFO_SIZE);
  buffer.writeBigUInt64LE(PIDFD_INFO_PID | (exit ? PIDFD_INFO_EXIT : 0n), OFFSET.mask);
  const result = ioctlBuffer(pidfd, PIDFD_GET_INFO, buffer);
  if (result === -ERRNO.ESRCH) return null;
  if (result < 0) throw new SysError('ioctl(PIDFD_GET_INFO)', -result);
  const mask = buffer.readBigUInt64LE(OFFSET.mask);
  return {
    pid: mask & PIDFD_INFO_PID ? buffer.readUInt32LE(OFFSET.pid) : 0,
    ppid: mask & PIDFD_INFO_PID ? buffer.readUInt32LE(OFFSET.ppid) : 0,
    waitStatus: mask & PIDFD_INFO_EXIT ? buffer.readInt32LE(OFFSET.exitCode) : null,
  };
}
