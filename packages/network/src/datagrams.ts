// Datagrams checked on copies, as a handler module of @sandlock/dispatch
// (DATAGRAMS_MODULE). Imported by URL in the supervisor's worker threads and
// on the main thread: no side effects at import.
//
// A UDP or ICMP datagram's destination is in the caller's memory (sendto's
// address, sendmsg's msghdr): a check followed by CONTINUE would let another
// thread rewrite it between the check and the kernel's read. So every
// send on a UDP or ping socket, and every connect of one, is done here on the
// socket itself (pidfd_getfd gives this process the same open file
// description) from the copies that were checked: the address, the payload
// and the control data are read out of the caller once.
//
// This grants nothing the policy does not. Landlock does not mediate UDP or
// ICMP at all (its network rights are LANDLOCK_ACCESS_NET_BIND_TCP and
// LANDLOCK_ACCESS_NET_CONNECT_TCP only: Documentation/userspace-api/landlock.rst,
// "Network flags"), so the sandbox's own domain would let the same datagram
// through; the socket keeps its owner, namespace and options; and the
// capabilities of this thread are cut to the caller's (none) for a message
// with control data, so control messages that need one (SO_MARK,
// SO_PRIORITY above 6: __sock_cmsg_send() in net/core/sock.c) fail as they
// would for the sandbox. Without control data neither udp_sendmsg(),
// ping_v4_sendmsg() nor a datagram connect checks a capability.
//
// What is not done here: a socket that is not a datagram socket of AF_INET
// or AF_INET6 is let through (`continue`); its type is read on this
// process's duplicate, and the kernel takes the descriptor again by number.
import {
  type Answer,
  answer,
  CallError,
  type DeferredContext,
  defineModule,
  type HandlerContext,
} from '@sandlock/dispatch/module';
import type { ModulePolicy, NetProtocol } from '@sandlock/policy';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  addressOf,
  type CapabilitySets,
  close,
  decodeIovec,
  decodeMsghdr,
  ERRNO,
  encodeIovec,
  encodeMsghdr,
  F_GETFL,
  hostArch,
  IOVEC_SIZE,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_UDP,
  IPPROTO_UDPLITE,
  MMSGHDR_LEN_OFFSET,
  MMSGHDR_SIZE,
  MSG_DONTWAIT,
  MSGHDR_SIZE,
  openFlags,
  SO_DOMAIN,
  SO_PROTOCOL,
  SO_TYPE,
  SOCK_DGRAM,
  SOCKADDR_STORAGE_SIZE,
  SOL_SOCKET,
  syscallAsync,
  threadCapabilities,
  trySyscall,
  UIO_MAXIOV,
  withCallerCapabilities,
} from '@sandlock/sys';
import ipaddr from 'ipaddr.js';
import { type Destination, plainAddress, reaches } from './rules.js';

const { EACCES, EAFNOSUPPORT, EAGAIN, EINVAL, EMSGSIZE, ENOBUFS, ENOTSOCK } = ERRNO;
const { O_NONBLOCK } = openFlags(hostArch());

/** The largest UDP or ICMP datagram: udp_sendmsg() and ping_common_sendmsg() refuse more (EMSGSIZE). */
const LARGEST_DATAGRAM = 0xffff;
/** Control data copied at most; the kernel holds it to net.core.optmem_max (ENOBUFS). */
const LARGEST_CONTROL = 64 * 1024;

/** A datagram socket the rules are about, read on this process's duplicate. */
interface DatagramSocket {
  readonly family: typeof AF_INET | typeof AF_INET6;
  readonly protocol: NetProtocol;
}

function intOption(fd: number, option: number): number {
  const value = Buffer.alloc(4);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(4);
  const result = trySyscall('getsockopt', fd, SOL_SOCKET, option, value, length);
  return result < 0 ? result : value.readInt32LE(0);
}

/** The socket behind `fd` when it is a UDP or ping socket; null for any other descriptor. */
function datagramSocket(fd: number): DatagramSocket | null {
  const family = intOption(fd, SO_DOMAIN);
  if (family === -ENOTSOCK || (family !== AF_INET && family !== AF_INET6)) return null;
  if (intOption(fd, SO_TYPE) !== SOCK_DGRAM) return null;
  const protocol = intOption(fd, SO_PROTOCOL);
  if (protocol === IPPROTO_UDP || protocol === IPPROTO_UDPLITE) return { family, protocol: 'udp' };
  if (protocol === IPPROTO_ICMP || protocol === IPPROTO_ICMPV6) return { family, protocol: 'icmp' };
  // A datagram socket of another protocol cannot be made (the filter and
  // inet_create()): refuse rather than guess.
  return { family, protocol: 'udp' };
}

/**
 * Where the kernel will send a datagram with this address (udp_sendmsg(),
 * udpv6_sendmsg(), ping_v4_sendmsg(), ping_v6_sendmsg()), or, for connect,
 * associate the socket (inet_dgram_connect(), __ip4_datagram_connect(),
 * __ip6_datagram_connect()): a destination, `none` (no address: the
 * connected peer; for connect, AF_UNSPEC dissolves the association), or the
 * errno the kernel would return without sending.
 */
type Target = { destination: Destination } | { none: true } | { errno: number };

function ipv4At(address: Buffer, protocol: NetProtocol): Target {
  if (address.length < 16) return { errno: EINVAL };
  const ip = ipaddr.fromByteArray([...address.subarray(4, 8)]);
  return { destination: { protocol, address: ip, port: portOf(address, protocol) } };
}

function portOf(address: Buffer, protocol: NetProtocol): number | null {
  return protocol === 'icmp' ? null : address.readUInt16BE(2);
}

export function targetOf(
  socket: DatagramSocket,
  address: Buffer,
  purpose: 'send' | 'connect',
): Target {
  if (address.length < 2) return { errno: EINVAL };
  const family = address.readUInt16LE(0);
  if (family === AF_UNSPEC) {
    // connect: a disconnect. A send on an IPv4 socket: read as AF_INET
    // (udp_sendmsg() accepts AF_UNSPEC); on an IPv6 socket: no address.
    if (purpose === 'connect' || socket.family === AF_INET6) return { none: true };
    return ipv4At(address, socket.protocol);
  }
  if (family === AF_INET) return ipv4At(address, socket.protocol);
  if (family === AF_INET6 && socket.family === AF_INET6) {
    if (address.length < 24) return { errno: EINVAL };
    const ip = plainAddress(ipaddr.fromByteArray([...address.subarray(8, 24)]));
    return {
      destination: {
        protocol: socket.protocol,
        address: ip,
        port: portOf(address, socket.protocol),
      },
    };
  }
  return { errno: socket.family === AF_INET ? EAFNOSUPPORT : EINVAL };
}

/** The answer for a target: null when the rules let it through. */
function refusal(policy: ModulePolicy, target: Target): Answer | null {
  if ('errno' in target) return answer.errno(target.errno);
  if ('none' in target) return null;
  return reaches(policy.net!, target.destination) ? null : answer.errno(EACCES);
}

/** This worker's own capability sets, read once: cut to none around each on-behalf call. */
let own: CapabilitySets | null = null;

function asCaller(call: () => number): number {
  own ??= threadCapabilities();
  return withCallerCapabilities(own, 0n, call);
}

const low32 = (value: bigint | undefined) => Number((value ?? 0n) & 0xffffffffn);
const int32 = (value: bigint | undefined) => Number(BigInt.asIntN(32, value ?? 0n));

/** Whether a send that found the socket's buffer full would have waited. */
function wouldWait(fd: number, flags: number): boolean {
  if ((flags & MSG_DONTWAIT) !== 0) return false;
  const status = trySyscall('fcntl', fd, F_GETFL, 0);
  return status >= 0 && (status & O_NONBLOCK) === 0;
}

/** A copy of the caller's address argument, or the errno the kernel gives for its length. */
function copyAddress(ctx: HandlerContext, pointer: bigint, length: number): Buffer | number {
  if (length < 0 || length > SOCKADDR_STORAGE_SIZE) return EINVAL;
  return length === 0 ? Buffer.alloc(0) : ctx.read(pointer, length);
}

/** A send deferred to the main thread because it must wait for room: the copies. */
interface DeferredSend {
  readonly fd: number;
  readonly data: Uint8Array;
  readonly address: Uint8Array | null;
  readonly flags: number;
}

/** A duplicate of the caller's `childFd`, or the errno answer when it has none there. */
function duplicate(ctx: HandlerContext | DeferredContext, childFd: number): number | Answer {
  try {
    return ctx.getFd(childFd);
  } catch (error) {
    if (error instanceof CallError) return answer.errno(error.errno);
    throw error;
  }
}

/**
 * Runs `call` on a duplicate of the caller's `fd` when it is a datagram
 * socket of AF_INET/AF_INET6; `continue` for any other descriptor.
 */
function onDatagramSocket(
  ctx: HandlerContext<ModulePolicy>,
  childFd: number,
  call: (fd: number, socket: DatagramSocket) => Answer,
): Answer {
  // Not open: the kernel's EBADF, answered here (a `continue` would let a
  // socket opened at that number meanwhile send unchecked).
  const fd = duplicate(ctx, childFd);
  if (typeof fd !== 'number') return fd;
  try {
    const socket = datagramSocket(fd);
    return socket === null ? answer.continue() : call(fd, socket);
  } finally {
    close(fd);
  }
}

function onSendto(ctx: HandlerContext<ModulePolicy>): Answer {
  const [fdArg, buffer, lengthArg, flagsArg, addressArg, addressLength] = ctx.args;
  // No address (a register: the caller cannot change it): the connected
  // peer, which connect checked, or EDESTADDRREQ.
  if ((addressArg ?? 0n) === 0n) return answer.continue();
  return onDatagramSocket(ctx, int32(fdArg), (fd, socket) => {
    const address = copyAddress(ctx, addressArg!, int32(addressLength));
    if (typeof address === 'number') return answer.errno(address);
    const refused = refusal(ctx.session.policy, targetOf(socket, address, 'send'));
    if (refused !== null) return refused;
    const length = lengthArg ?? 0n;
    if (length > BigInt(LARGEST_DATAGRAM)) return answer.errno(EMSGSIZE);
    const data = length === 0n ? Buffer.alloc(0) : ctx.read(buffer ?? 0n, Number(length));
    const flags = low32(flagsArg);
    return send(fd, { fd: int32(fdArg), data, address, flags }, null);
  });
}

/**
 * Sends the checked copies on `fd`, without waiting: a send that would wait
 * is deferred to the main thread (without control data) or fails with EAGAIN
 * (with it: the capabilities of a thread of libuv's pool cannot be cut).
 */
function send(fd: number, copies: DeferredSend, control: Buffer | null): Answer {
  const result =
    control === null
      ? sendCopies(fd, copies, null, MSG_DONTWAIT)
      : asCaller(() => sendCopies(fd, copies, control, MSG_DONTWAIT));
  if (result === -EAGAIN && control === null && wouldWait(fd, copies.flags)) {
    return answer.defer(copies);
  }
  return answer.fromResult(result);
}

function sendCopies(
  fd: number,
  copies: DeferredSend,
  control: Buffer | null,
  extraFlags: number,
): number {
  const data = Buffer.from(copies.data.buffer, copies.data.byteOffset, copies.data.byteLength);
  const address =
    copies.address === null
      ? null
      : Buffer.from(copies.address.buffer, copies.address.byteOffset, copies.address.byteLength);
  const flags = copies.flags | extraFlags;
  if (control === null) {
    return trySyscall('sendto', fd, data, data.length, flags, address, address?.length ?? 0);
  }
  const iov = encodeIovec({
    base: data.length > 0 ? addressOf(data) : 0n,
    len: BigInt(data.length),
  });
  const header = encodeMsghdr({
    name: address !== null && address.length > 0 ? addressOf(address) : 0n,
    nameLen: address?.length ?? 0,
    iov: addressOf(iov),
    iovLen: 1n,
    control: control.length > 0 ? addressOf(control) : 0n,
    controlLen: BigInt(control.length),
  });
  const result = trySyscall('sendmsg', fd, header, flags);
  void [data, address, iov, control]; // alive until the call is over
  return result;
}

/** A send that waits for room, on a thread of libuv's pool: checked again on its own duplicate. */
async function onSendDeferred(ctx: DeferredContext<ModulePolicy>): Promise<Answer> {
  const copies = ctx.payload as DeferredSend;
  const fd = duplicate(ctx, copies.fd);
  if (typeof fd !== 'number') return fd;
  try {
    const socket = datagramSocket(fd);
    // The caller's descriptor changed while it waited: the kernel decides afresh.
    if (socket === null) return answer.errno(EAGAIN);
    if (copies.address !== null) {
      const target = targetOf(socket, Buffer.from(copies.address), 'send');
      const refused = refusal(ctx.session.policy, target);
      if (refused !== null) return refused;
    }
    const data = Buffer.from(copies.data);
    const address = copies.address === null ? null : Buffer.from(copies.address);
    const result = await syscallAsync(
      'sendto',
      fd,
      data,
      data.length,
      copies.flags,
      address,
      address?.length ?? 0,
    );
    return answer.fromResult(result);
  } finally {
    close(fd);
  }
}

/** One message of sendmsg/sendmmsg read out of the caller: its address, payload and control data. */
interface Message {
  readonly address: Buffer | null;
  readonly data: Buffer;
  readonly control: Buffer | null;
}

function readMessage(ctx: HandlerContext, pointer: bigint): Message | number {
  const header = decodeMsghdr(ctx.read(pointer, MSGHDR_SIZE));
  // __copy_msghdr() in net/socket.c: a negative length is EINVAL, a longer
  // one is cut to a sockaddr_storage, and a null name or a zero length is no
  // address.
  if (header.nameLen > 0x7fffffff) return EINVAL;
  let address: Buffer | null = null;
  if (header.name !== 0n && header.nameLen > 0) {
    address = ctx.read(header.name, Math.min(header.nameLen, SOCKADDR_STORAGE_SIZE));
  }
  if (header.iovLen > BigInt(UIO_MAXIOV)) return EMSGSIZE;
  const count = Number(header.iovLen);
  const vectors = count === 0 ? Buffer.alloc(0) : ctx.read(header.iov, count * IOVEC_SIZE);
  const parts: Buffer[] = [];
  let total = 0n;
  for (let index = 0; index < count; index++) {
    const { base, len } = decodeIovec(vectors, index * IOVEC_SIZE);
    total += len;
    if (total > BigInt(LARGEST_DATAGRAM)) return EMSGSIZE;
    if (len > 0n) parts.push(ctx.read(base, Number(len)));
  }
  let control: Buffer | null = null;
  if (header.controlLen > 0n) {
    if (header.controlLen > BigInt(LARGEST_CONTROL)) return ENOBUFS;
    control = ctx.read(header.control, Number(header.controlLen));
  }
  return { address, data: Buffer.concat(parts), control };
}

/** Checks one message and sends it from the copies. */
function sendMessage(
  ctx: HandlerContext<ModulePolicy>,
  fd: number,
  childFd: number,
  socket: DatagramSocket,
  message: Message,
  flags: number,
): Answer {
  if (message.address !== null) {
    const refused = refusal(ctx.session.policy, targetOf(socket, message.address, 'send'));
    if (refused !== null) return refused;
  }
  const copies = { fd: childFd, data: message.data, address: message.address, flags };
  return send(fd, copies, message.control);
}

function onSendmsg(ctx: HandlerContext<ModulePolicy>): Answer {
  const [fdArg, messageArg, flagsArg] = ctx.args;
  return onDatagramSocket(ctx, int32(fdArg), (fd, socket) => {
    const message = readMessage(ctx, messageArg ?? 0n);
    if (typeof message === 'number') return answer.errno(message);
    return sendMessage(ctx, fd, int32(fdArg), socket, message, low32(flagsArg));
  });
}

/**
 * sendmmsg: each message checked and sent in turn, its msg_len written back.
 * A message that is refused or fails ends the call: the number sent so far,
 * or its errno when it was the first (sendmmsg(2)). None waits for room.
 */
function onSendmmsg(ctx: HandlerContext<ModulePolicy>): Answer {
  const [fdArg, vectorArg, countArg, flagsArg] = ctx.args;
  return onDatagramSocket(ctx, int32(fdArg), (fd, socket) => {
    const count = Math.min(low32(countArg), UIO_MAXIOV);
    const flags = low32(flagsArg);
    let sent = 0;
    for (; sent < count; sent++) {
      const at = (vectorArg ?? 0n) + BigInt(sent * MMSGHDR_SIZE);
      const message = readMessage(ctx, at);
      const result =
        typeof message === 'number'
          ? -message
          : checkedSend(ctx, fd, socket, message, flags | MSG_DONTWAIT);
      if (result < 0) return sent > 0 ? answer.value(sent) : answer.errno(-result);
      const length = Buffer.alloc(4);
      length.writeUInt32LE(result);
      ctx.write(at + BigInt(MMSGHDR_LEN_OFFSET), length);
    }
    return answer.value(sent);
  });
}

function checkedSend(
  ctx: HandlerContext<ModulePolicy>,
  fd: number,
  socket: DatagramSocket,
  message: Message,
  flags: number,
): number {
  if (message.address !== null) {
    const refused = refusal(ctx.session.policy, targetOf(socket, message.address, 'send'));
    if (refused !== null) return refused.kind === 'errno' ? -refused.errno : -EACCES;
  }
  const copies = { fd: -1, data: message.data, address: message.address, flags };
  return message.control === null
    ? sendCopies(fd, copies, null, 0)
    : asCaller(() => sendCopies(fd, copies, message.control, 0));
}

/**
 * connect on a UDP or ping socket: checked, then made on the shared socket
 * from the copy. The kernel then sends the socket's plain send/write only to
 * that peer, and sendto without an address too (udp_sendmsg() takes the
 * connected destination). A datagram connect does not wait.
 */
function onConnect(ctx: HandlerContext<ModulePolicy>): Answer {
  const [fdArg, addressArg, addressLength] = ctx.args;
  return onDatagramSocket(ctx, int32(fdArg), (fd, socket) => {
    const address = copyAddress(ctx, addressArg ?? 0n, int32(addressLength));
    if (typeof address === 'number') return answer.errno(address);
    const refused = refusal(ctx.session.policy, targetOf(socket, address, 'connect'));
    if (refused !== null) return refused;
    return answer.fromResult(trySyscall('connect', fd, address, address.length));
  });
}

/** The calls that name a datagram's destination. */
export const DATAGRAM_SYSCALLS: readonly string[] = ['sendto', 'sendmsg', 'sendmmsg', 'connect'];

/**
 * On for a sandbox that may make UDP or ICMP sockets (a rule of that
 * protocol): every datagram's destination is checked against netAllow or
 * netDeny, and the datagram sent from the checked copy.
 */
export default defineModule<unknown, ModulePolicy>({
  name: 'datagrams',
  syscalls: DATAGRAM_SYSCALLS,
  enabled: (policy) => policy.net !== null && (policy.datagrams.udp || policy.datagrams.icmp),
  handlers: {
    sendto: onSendto,
    sendmsg: onSendmsg,
    sendmmsg: onSendmmsg,
    connect: onConnect,
  },
  deferred: { sendto: onSendDeferred, sendmsg: onSendDeferred },
});
