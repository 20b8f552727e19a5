// What the bind and port-name modules read of a socket and its addresses.
import { type Answer, answer, CallError, type HandlerContext } from '@sandlock/dispatch/module';
import type { BindProtocol } from '@sandlock/policy';
import {
  AF_INET,
  AF_INET6,
  ERRNO,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPPROTO_UDPLITE,
  SIN6_LEN_RFC2133,
  SO_DOMAIN,
  SO_PROTOCOL,
  SO_TYPE,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOCKADDR_IN_OFFSETS,
  SOCKADDR_IN_SIZE,
  SOCKADDR_IN6_OFFSETS,
  SOL_SOCKET,
  trySyscall,
} from '@sandlock/sys';

const { ENOTSOCK } = ERRNO;

/** An AF_INET/AF_INET6 socket, as read on this process's duplicate. */
export interface InetSocket {
  readonly family: typeof AF_INET | typeof AF_INET6;
  /** `icmp`: a ping socket (its "port" is the echo identifier); `other`: raw sockets. */
  readonly protocol: BindProtocol | 'icmp' | 'other';
}

function intOption(fd: number, option: number): number {
  const value = Buffer.alloc(4);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(4);
  const result = trySyscall('getsockopt', fd, SOL_SOCKET, option, value, length);
  return result < 0 ? result : value.readInt32LE(0);
}

/** The socket behind `fd` when it is an AF_INET/AF_INET6 one; null for any other descriptor. */
export function inetSocket(fd: number): InetSocket | null {
  const family = intOption(fd, SO_DOMAIN);
  if (family === -ENOTSOCK || (family !== AF_INET && family !== AF_INET6)) return null;
  const type = intOption(fd, SO_TYPE);
  const protocol = intOption(fd, SO_PROTOCOL);
  if (type === SOCK_STREAM && protocol === IPPROTO_TCP) return { family, protocol: 'tcp' };
  if (type === SOCK_DGRAM && (protocol === IPPROTO_UDP || protocol === IPPROTO_UDPLITE)) {
    return { family, protocol: 'udp' };
  }
  if (type === SOCK_DGRAM && (protocol === IPPROTO_ICMP || protocol === IPPROTO_ICMPV6)) {
    return { family, protocol: 'icmp' };
  }
  return { family, protocol: 'other' };
}

export { int as int32 } from '@sandlock/dispatch/module';

/** Where the port is in an address of `family` (sin_port and sin6_port). */
export const portOffset = (family: number) =>
  family === AF_INET ? SOCKADDR_IN_OFFSETS.sin_port : SOCKADDR_IN6_OFFSETS.sin6_port;

/** A copy of `address` (of `family`) with another port. */
export function withPort(family: number, address: Buffer, port: number): Buffer {
  const copy = Buffer.from(address);
  copy.writeUInt16BE(port, portOffset(family));
  return copy;
}

/** A duplicate of the caller's `childFd`, or the errno answer when it has none there. */
export function duplicate(ctx: HandlerContext, childFd: number): number | Answer {
  try {
    return ctx.getFd(childFd);
  } catch (error) {
    if (error instanceof CallError) return answer.errno(error.errno);
    throw error;
  }
}

/** Whether an address is a loopback one: 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104. */
export function loopbackName(family: number, name: Buffer): boolean {
  if (family === AF_INET) {
    return name.length >= SOCKADDR_IN_SIZE && name[SOCKADDR_IN_OFFSETS.sin_addr] === 127;
  }
  if (name.length < SIN6_LEN_RFC2133) return false;
  const start = SOCKADDR_IN6_OFFSETS.sin6_addr;
  const ip = name.subarray(start, start + 16);
  const zeros = (from: number, to: number) => ip.subarray(from, to).every((byte) => byte === 0);
  if (zeros(0, 15) && ip[15] === 1) return true;
  return zeros(0, 10) && ip[10] === 0xff && ip[11] === 0xff && ip[12] === 127;
}
