// Socket options Sandlock reads and sets, the queues of sockets and pipes,
// and who is at the other end of a Unix socket. The numbers are asm-generic
// (include/uapi/asm-generic/socket.h, ioctls.h), shared by x86_64 and aarch64.
import { ERRNO } from './errno.js';
import { SysError } from './errors.js';
import { POLLERR, POLLHUP, POLLOUT, poll } from './io.js';
import { trySyscall } from './libc.js';
import { fieldNumber, readProc } from './proc.js';
import { SOL_SOCKET } from './structs/cmsghdr.js';

export const SO_TYPE = 3;
/** The socket's pending error, read and cleared (a non-blocking connect's outcome). */
export const SO_ERROR = 4;
/** The socket's protocol (IPPROTO_*), as socket(2) made it. */
export const SO_PROTOCOL = 38;
/** The socket's address family. */
export const SO_DOMAIN = 39;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_PEERCRED = 17;
/** A blocking send's (and connect's) timeout, a struct timeval (SO_SNDTIMEO_OLD on 64-bit). */
export const SO_SNDTIMEO = 21;
/** SO_SNDBUF past net.core.wmem_max; needs CAP_NET_ADMIN. */
export const SO_SNDBUFFORCE = 32;
/** SO_RCVBUF past net.core.rmem_max; needs CAP_NET_ADMIN. */
export const SO_RCVBUFFORCE = 33;
/** A pidfd of the peer as it was at connect(2) (Linux 6.5). */
export const SO_PEERPIDFD = 77;

/**
 * ioctl: bytes waiting to be read (FIONREAD). For a stream socket or a pipe
 * all of them; for a datagram socket only the next datagram (unix_inq_len()).
 */
export const SIOCINQ = 0x541b;
/**
 * ioctl: what the socket sent that is still queued somewhere (TIOCOUTQ); for
 * AF_UNIX the buffers charged to it, skb overhead included (unix_outq_len():
 * sk_wmem_alloc).
 */
export const SIOCOUTQ = 0x5411;
/** fcntl: a pipe's capacity in bytes (its slots times the page size). */
export const F_GETPIPE_SZ = 1032;

/**
 * Whether `fd` is writable now (poll(2) without waiting), or has an error or
 * a hang-up to report: a connecting socket whose connect has ended.
 */
export function writableNow(fd: number): boolean {
  const pollfd = Buffer.alloc(8);
  pollfd.writeInt32LE(fd, 0);
  pollfd.writeInt16LE(POLLOUT, 4);
  return poll(pollfd, 1, 0) > 0 && (pollfd.readInt16LE(6) & (POLLOUT | POLLERR | POLLHUP)) !== 0;
}

// include/uapi/linux/in.h, in6.h
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_UDPLITE = 136;

const { ENOPROTOOPT } = ERRNO;

/**
 * A pidfd of the process that connected the other end of Unix socket `fd`
 * (SO_PEERPIDFD, Linux 6.5): it names that process and no other, even once
 * its pid is reused. Null where the kernel lacks the option (ENOPROTOOPT).
 * Close it when done.
 */
export function peerPidfd(fd: number): number | null {
  const value = Buffer.alloc(4);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(value.length);
  const result = trySyscall('getsockopt', fd, SOL_SOCKET, SO_PEERPIDFD, value, length);
  if (result === -ENOPROTOOPT) return null;
  if (result < 0) throw new SysError('getsockopt', -result, 'SO_PEERPIDFD');
  return value.readInt32LE(0);
}

/**
 * The pid (in this process's pid namespace) of the process behind `pidfd`,
 * from /proc/self/fdinfo ("Pid:"); null once that process has exited and been
 * reaped (the kernel shows -1; pidfd_show_fdinfo() in kernel/pid.c).
 *
 * @throws ProcReadError when fdinfo cannot be read.
 */
export function pidOfPidfd(pidfd: number): number | null {
  const info = readProc(`/proc/self/fdinfo/${pidfd}`);
  if (info === null) throw new SysError('pidfd fdinfo', ERRNO.EBADF, `fd ${pidfd}`);
  const pid = fieldNumber(info, 'Pid');
  return pid !== null && pid > 0 ? pid : null;
}

/**
 * Whether the process behind `pidfd` still holds its pid: running, or a
 * zombie not yet reaped. While it does, that pid names it and no other.
 */
export function holdsPid(pidfd: number): boolean {
  return trySyscall('pidfd_send_signal', pidfd, 0, null, 0) === 0;
}
