// What the destinations module needs of a socket and of a call, read on its
// own duplicate of the caller's descriptor (pidfd_getfd: the same open file
// description). The kernel takes the caller's descriptor again by number, so
// nothing read here may be followed by CONTINUE.
import {
  type Answer,
  answer,
  CallError,
  type DeferredContext,
  type HandlerContext,
} from '@sandlock/dispatch/module';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  type CapabilitySets,
  ERRNO,
  F_GETFL,
  hostArch,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  MSG_DONTWAIT,
  openFlags,
  SO_DOMAIN,
  SO_PROTOCOL,
  SO_TYPE,
  SOCK_DGRAM,
  SOCKADDR_STORAGE_SIZE,
  SOL_SOCKET,
  threadCapabilities,
  trySyscall,
  withCallerCapabilities,
} from '@sandlock/sys';

const { EINVAL } = ERRNO;
const { O_NONBLOCK } = openFlags(hostArch());

/**
 * How the module treats a socket: `datagram` (UDP, UDP-Lite, ICMP ping of
 * AF_INET/AF_INET6: checked against the address rules, sent by the worker),
 * `inet-stream` (TCP and the other connection-oriented inet protocols:
 * checked, connected by the reaper), `unix` (AF_UNIX of any type), `other`
 * (any other family: connected by the reaper, sent by the worker with the
 * caller's capabilities).
 */
export type SocketClass = 'datagram' | 'inet-stream' | 'unix' | 'other';

export interface SocketKind {
  readonly family: number;
  readonly type: number;
  readonly protocol: number;
  readonly class: SocketClass;
}

export function intOption(fd: number, option: number): number {
  const value = Buffer.alloc(4);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(4);
  const result = trySyscall('getsockopt', fd, SOL_SOCKET, option, value, length);
  return result < 0 ? result : value.readInt32LE(0);
}

/** The socket behind `fd`, or -errno (ENOTSOCK for a descriptor that is not one). */
export function socketKind(fd: number): SocketKind | number {
  const family = intOption(fd, SO_DOMAIN);
  if (family < 0) return family;
  const type = intOption(fd, SO_TYPE);
  if (type < 0) return type;
  const protocol = intOption(fd, SO_PROTOCOL);
  if (protocol < 0) return protocol;
  let kind: SocketClass = 'other';
  if (family === AF_UNIX) kind = 'unix';
  else if (family === AF_INET || family === AF_INET6) {
    kind = type === SOCK_DGRAM ? 'datagram' : 'inet-stream';
  }
  return { family, type, protocol, class: kind };
}

/** Whether a datagram socket is a ping socket (else UDP or UDP-Lite). */
export function isPing(socket: SocketKind): boolean {
  return socket.protocol === IPPROTO_ICMP || socket.protocol === IPPROTO_ICMPV6;
}

export const low32 = (value: bigint | undefined): number => Number((value ?? 0n) & 0xffffffffn);
export { int as int32 } from '@sandlock/dispatch/module';

/** A copy of the caller's address argument, or the errno the kernel gives for its length. */
export function copyAddress(ctx: HandlerContext, pointer: bigint, length: number): Buffer | number {
  if (length < 0 || length > SOCKADDR_STORAGE_SIZE) return EINVAL;
  return length === 0 ? Buffer.alloc(0) : ctx.read(pointer, length);
}

/** A duplicate of the caller's `childFd`, or the errno answer when it has none there. */
export function duplicate(ctx: HandlerContext | DeferredContext, childFd: number): number | Answer {
  try {
    return ctx.getFd(childFd);
  } catch (error) {
    if (error instanceof CallError) return answer.errno(error.errno);
    throw error;
  }
}

/** Whether the open file description is in blocking mode (the kernel's test, O_NONBLOCK). */
export function isBlocking(fd: number): boolean | number {
  const status = trySyscall('fcntl', fd, F_GETFL, 0);
  return status < 0 ? status : (status & O_NONBLOCK) === 0;
}

/** Whether a send that found the socket's buffer full would have waited. */
export function wouldWait(fd: number, flags: number): boolean {
  return (flags & MSG_DONTWAIT) === 0 && isBlocking(fd) === true;
}

/** This worker's own capability sets, read once: cut around each on-behalf call. */
let own: CapabilitySets | null = null;

export function ownCapabilities(): CapabilitySets {
  own ??= threadCapabilities();
  return own;
}

/** Runs `call` with this thread's capabilities cut to `keep` (default none: the sandbox's). */
export function asCaller(call: () => number, keep = 0n): number {
  return withCallerCapabilities(ownCapabilities(), keep, call);
}
