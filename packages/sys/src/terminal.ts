// Pseudo-terminals: pty(7), ioctl_tty(2), and TIOCGPTN/TIOCSPTLCK of
// include/uapi/asm-generic/ioctls.h (x86_64 and aarch64 share these values).
import { openFlags } from './constants.js';
import { close, ioctl, openAt } from './libc.js';
import { hostArch } from './syscalls/index.js';

/** ioctl: the number N of the pty's /dev/pts/N (an unsigned int out). */
export const TIOCGPTN = 0x80045430;
/** ioctl: lock (non-zero int in) or unlock (0) the pty's slave. */
export const TIOCSPTLCK = 0x40045431;
/** ioctl: set the window size from a struct winsize { rows, cols, xpixel, ypixel } (4 × u16). */
export const TIOCSWINSZ = 0x5414;
/**
 * ioctl: make the terminal the caller's controlling terminal; the caller
 * must be a session leader without one (arg 0: not stolen from another
 * session, which needs CAP_SYS_ADMIN; tiocsctty() in drivers/tty/tty_jobctrl.c).
 */
export const TIOCSCTTY = 0x540e;
/** open(2) flag: do not make a terminal the caller's controlling terminal. */
export const O_NOCTTY = 0o400;

export interface Pty {
  /** The master side, close-on-exec. */
  master: number;
  /** The slave side, close-on-exec, not this process's controlling terminal. */
  slave: number;
  /** The slave's path: /dev/pts/N. */
  name: string;
}

/** A new pseudo-terminal pair (posix_openpt, unlockpt, ptsname, open of the slave). */
export function openPty(): Pty {
  const flags = openFlags(hostArch());
  const master = openAt('/dev/ptmx', flags.O_RDWR | flags.O_CLOEXEC | O_NOCTTY);
  try {
    ioctl(master, TIOCSPTLCK, Buffer.alloc(4));
    const number = Buffer.alloc(4);
    ioctl(master, TIOCGPTN, number);
    const name = `/dev/pts/${number.readUInt32LE(0)}`;
    const slave = openAt(name, flags.O_RDWR | flags.O_CLOEXEC | O_NOCTTY);
    return { master, slave, name };
  } catch (error) {
    close(master);
    throw error;
  }
}

/** Sets a terminal's window size (TIOCSWINSZ). */
export function setWindowSize(fd: number, rows: number, columns: number): void {
  const size = Buffer.alloc(8);
  size.writeUInt16LE(rows, 0);
  size.writeUInt16LE(columns, 2);
  ioctl(fd, TIOCSWINSZ, size);
}
