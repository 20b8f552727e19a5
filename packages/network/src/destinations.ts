// Every call that names where a socket's traffic goes, answered on the
// sandbox's behalf (DESTINATIONS_MODULE): connect, sendto with an address,
// sendmsg and sendmmsg. Imported by URL in the supervisor's worker threads
// and on the main thread: no side effects at import.
//
// None is answered CONTINUE: the socket's kind is read on this process's
// duplicate (pidfd_getfd: the same open file description), and the kernel
// would take the caller's descriptor again by number, which another thread
// can dup2 another socket over meanwhile (a connect checked as TCP would
// run on a UDP socket, a send checked as TCP on an unconnected Unix one);
// the address, too, is read out of the caller once. Decision and operation
// are both made on the duplicate, from the copies:
//
// - UDP and ICMP ping (datagrams.ts): checked against netAllow/netDeny,
//   sent or connected by the worker (Landlock does not mediate them).
// - TCP and other connection-oriented inet sockets: a connect is checked
//   against the address rules (when the policy has some) and made by the
//   reaper (connect.ts), in the policy's Landlock domain; a send goes to
//   the connected peer, and MSG_FASTOPEN (which connects) is refused.
// - Unix: a pathname is resolved for the caller and checked (unix.ts); a
//   connect is made by the reaper through /proc/self/fd of the pinned
//   socket file, abstract names by the reaper as they are (Landlock's
//   scoping); a send by the worker, with the caller's credentials
//   (control.ts), or, when it carries descriptors, by the reaper, which
//   the kernel holds to the sandbox's limit on descriptors in flight
//   (rights.ts).
// - Other families: connected by the reaper, sent by the worker with the
//   caller's capabilities (none).
import {
  type Answer,
  answer,
  type DeferredContext,
  defineModule,
  type HandlerContext,
} from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import {
  addressOf,
  close,
  decodeIovec,
  decodeMsghdr,
  ERRNO,
  encodeIovec,
  encodeMsghdr,
  F_DUPFD_CLOEXEC,
  IOVEC_SIZE,
  MMSGHDR_LEN_OFFSET,
  MMSGHDR_SIZE,
  MSG_DONTWAIT,
  MSG_FASTOPEN,
  MSGHDR_SIZE,
  SOCK_DGRAM,
  SOCK_STREAM,
  syscallAsync,
  trySyscall,
  UIO_MAXIOV,
} from '@sandlock/sys';
import { callerStatus } from './caller.js';
import { answerConnect, reaperConnect, waitForConnect } from './connect.js';
import { type Translated, translateUnixControl } from './control.js';
import { refusal, streamTargetOf, targetOf } from './datagrams.js';
import { datagramDestinationFor, destinationFor } from './destination-for.js';
import {
  answerRedirected,
  connectToProxy,
  dialledOf,
  isRedirectPayload,
  isSandboxDns,
  proxyAddressFor,
} from './redirect.js';
import { type RightsDestination, sendWithRights } from './rights.js';
import {
  asCaller,
  copyAddress,
  duplicate,
  int32,
  isBlocking,
  low32,
  ownCapabilities,
  type SocketKind,
  socketKind,
  wouldWait,
} from './sockets.js';
import { type UnixTarget, unixTarget, viaDescriptor } from './unix.js';

const { EACCES, EAGAIN, EINVAL, EMSGSIZE, ENOBUFS, EOPNOTSUPP, EPERM } = ERRNO;

/** The largest UDP or ICMP datagram: udp_sendmsg() and ping_common_sendmsg() refuse more (EMSGSIZE). */
const LARGEST_DATAGRAM = 0xffff;
/** The largest Unix (or other) datagram copied: past the kernel's own limit (sk_sndbuf, 208 KiB by default). */
const LARGEST_MESSAGE = 4 * 1024 * 1024;
/** What one send of a stream socket takes at most: the rest is the caller's next send (a short write). */
const STREAM_CHUNK = 256 * 1024;
/** Control data copied at most; the kernel holds it to net.core.optmem_max (ENOBUFS). */
const LARGEST_CONTROL = 64 * 1024;
/** CAP_SYS_ADMIN: sending SCM_CREDENTIALS with another process's pid. */
const CAP_SYS_ADMIN = 1n << 21n;

type Ctx = HandlerContext<ModulePolicy>;

/** Runs `call` on a duplicate of the caller's socket `childFd`; ENOTSOCK for another descriptor. */
function onSocket(
  ctx: Ctx,
  childFd: number,
  call: (fd: number, socket: SocketKind) => Answer,
): Answer {
  // Not open: the kernel's EBADF, answered here (a `continue` would let a
  // socket opened at that number meanwhile go unchecked).
  const fd = duplicate(ctx, childFd);
  if (typeof fd !== 'number') return fd;
  try {
    const socket = socketKind(fd);
    return typeof socket === 'number' ? answer.fromResult(socket) : call(fd, socket);
  } finally {
    close(fd);
  }
}

/**
 * What the reaper may not do for a caller that made a Landlock domain of
 * its own (a nested sandbox, a jail): its authority is the sandbox's, wider
 * than the caller's. Refused (fail closed).
 */
function narrowedRefusal(ctx: Ctx): Answer | null {
  if (!ctx.session.narrowed(ctx.pid)) return null;
  ctx.refused({
    what: `${ctx.syscall} from a process with a Landlock domain of its own`,
    rule: 'made by the reaper with the sandbox’s authority',
  });
  return answer.errno(EACCES);
}

// --- connect ---------------------------------------------------------------

/**
 * Whether the Landlock domains of a delegated sandbox and of the delegated
 * sandboxes around it let a TCP connect to `port` through: the reaper that
 * makes it is the outer sandbox's, outside them (hook_socket_connect() in
 * security/landlock/net.c checks the port the caller passed, the dialled
 * one, also when the connect goes to the HTTP proxy instead).
 */
function delegatedPortsReach(policy: ModulePolicy, port: number): boolean {
  return (policy.delegatedConnectPorts ?? []).every(
    (ports) => ports === null || ports.some(({ from, to }) => port >= from && port <= to),
  );
}

function onConnect(ctx: Ctx): Answer {
  const [fdArg, addressArg, addressLength] = ctx.args;
  return onSocket(ctx, int32(fdArg), (fd, socket) => {
    const address = copyAddress(ctx, addressArg ?? 0n, int32(addressLength));
    if (typeof address === 'number') return answer.errno(address);
    if (socket.class === 'datagram') {
      const refused = refusal(ctx.session.policy, targetOf(socket, address, 'connect'));
      if (refused !== null) return refused;
      const destination = datagramDestinationFor(ctx.session, socket, address);
      return answer.fromResult(trySyscall('connect', fd, destination, destination.length));
    }
    // inet_stream_connect(), unix_stream_connect(): the address length is checked first.
    if (address.length < 2) return answer.errno(EINVAL);
    const broker = ctx.session.onBehalf;
    if (broker === null) return answer.errno(EACCES);
    const narrowed = narrowedRefusal(ctx);
    if (narrowed !== null) return narrowed;
    const blocking = isBlocking(fd);
    if (typeof blocking === 'number') return answer.fromResult(blocking);
    const stream = socket.type !== SOCK_DGRAM;
    if (socket.class === 'inet-stream') {
      const target = streamTargetOf(socket, address);
      const dialled =
        'destination' in target && target.destination.port !== null
          ? { address: target.destination.address.toString(), port: target.destination.port }
          : null;
      const proxy =
        dialled !== null ? proxyAddressFor(ctx.session.policy, socket.family, dialled) : null;
      // Wildcard rules are the proxy's to match, by name.
      const refused = refusal(ctx.session.policy, target, proxy !== null);
      if (refused !== null) {
        if (refused.kind === 'errno' && refused.errno === EACCES) {
          ctx.refused({ what: `connect to ${describe(target)}`, rule: 'netAllow / netDeny' });
        }
        return refused;
      }
      // To the proxy, the port is the proxy's to check: it knows which level's
      // own HTTP rules would have sent the connect to a proxy of its own.
      if (
        dialled !== null &&
        proxy === null &&
        !isSandboxDns(ctx.session.policy, dialled) &&
        !delegatedPortsReach(ctx.session.policy, dialled.port)
      ) {
        ctx.refused({ what: `connect to ${describe(target)}`, rule: 'netConnect / netAllow' });
        return answer.errno(EACCES);
      }
      if (proxy !== null && dialled !== null) {
        const upstream = dialledOf(destinationFor(ctx.session, address));
        return connectToProxy(
          broker,
          fd,
          socket.family,
          proxy,
          dialled,
          upstream ?? dialled,
          blocking && stream,
        );
      }
      const destination = 'destination' in target ? destinationFor(ctx.session, address) : address;
      return answerConnect(fd, reaperConnect(broker, fd, destination), blocking && stream);
    }
    if (socket.class === 'unix') {
      const target = unixTarget(ctx, address);
      if (target.kind === 'errno') return answer.errno(target.errno);
      if (target.kind === 'as-is') {
        return answerConnect(fd, reaperConnect(broker, fd, address), blocking && stream);
      }
      try {
        return answerConnect(fd, connectToFile(broker, fd, target.fd), blocking && stream);
      } finally {
        close(target.fd);
      }
    }
    return answerConnect(fd, reaperConnect(broker, fd, address), blocking && stream);
  });
}

function describe(target: ReturnType<typeof streamTargetOf>): string {
  if (!('destination' in target)) return 'no address';
  const { address, port } = target.destination;
  return address.kind() === 'ipv6'
    ? `[${address.toString()}]:${port}`
    : `${address.toString()}:${port}`;
}

/**
 * A Unix connect to the socket file pinned by `file` (an O_PATH descriptor
 * of this process): the reaper takes a copy of it (F_DUPFD_CLOEXEC: a
 * number of its own, kept until closed here) and connects to
 * /proc/self/fd/<that number>, which the kernel follows to the same inode
 * (unix_find_bsd() → kern_path(LOOKUP_FOLLOW)) and checks for write
 * permission with the reaper's credentials.
 */
function connectToFile(
  broker: NonNullable<Ctx['session']['onBehalf']>,
  fd: number,
  file: number,
): number {
  const copy = broker.call({ syscall: 'fcntl', args: [{ fd: file }, F_DUPFD_CLOEXEC, 0] }).result;
  if (copy < 0) return copy;
  try {
    return reaperConnect(broker, fd, viaDescriptor(copy));
  } finally {
    broker.call({ syscall: 'close', args: [copy] });
  }
}

// --- sends -----------------------------------------------------------------

/** One message read out of the caller: its address, payload and control data. */
interface Message {
  readonly address: Buffer | null;
  readonly data: Buffer;
  readonly control: Buffer | null;
}

/** How much of a message's payload to copy: a datagram whole (or EMSGSIZE), a stream's first chunk. */
function payloadLimit(socket: SocketKind): { limit: number; whole: boolean } {
  if (socket.class === 'datagram') return { limit: LARGEST_DATAGRAM, whole: true };
  if (socket.type === SOCK_STREAM) return { limit: STREAM_CHUNK, whole: false };
  return { limit: LARGEST_MESSAGE, whole: true };
}

/** Copies the caller's iovecs: up to `limit` bytes; more is EMSGSIZE when the message must go whole. */
function readPayload(ctx: Ctx, iov: bigint, iovLen: bigint, socket: SocketKind): Buffer | number {
  if (iovLen > BigInt(UIO_MAXIOV)) return EMSGSIZE;
  const count = Number(iovLen);
  const vectors = count === 0 ? Buffer.alloc(0) : ctx.read(iov, count * IOVEC_SIZE);
  const { limit, whole } = payloadLimit(socket);
  const parts: Buffer[] = [];
  let total = 0;
  for (let index = 0; index < count && total < limit; index++) {
    const { len } = decodeIovec(vectors, index * IOVEC_SIZE);
    if (len > BigInt(limit - total)) {
      if (whole) return EMSGSIZE;
      const { base } = decodeIovec(vectors, index * IOVEC_SIZE);
      parts.push(ctx.read(base, limit - total));
      total = limit;
      break;
    }
    const { base } = decodeIovec(vectors, index * IOVEC_SIZE);
    if (len > 0n) parts.push(ctx.read(base, Number(len)));
    total += Number(len);
  }
  if (whole) {
    // Lengths past the copied ones still count against a datagram.
    let sum = 0n;
    for (let index = 0; index < count; index++) {
      sum += decodeIovec(vectors, index * IOVEC_SIZE).len;
    }
    if (sum > BigInt(limit)) return EMSGSIZE;
  }
  return Buffer.concat(parts);
}

function readMessage(ctx: Ctx, pointer: bigint, socket: SocketKind): Message | number {
  const header = decodeMsghdr(ctx.read(pointer, MSGHDR_SIZE));
  // __copy_msghdr() in net/socket.c: a negative length is EINVAL, a longer
  // one is cut to a sockaddr_storage, and a null name or a zero length is no
  // address.
  if (header.nameLen > 0x7fffffff) return EINVAL;
  let address: Buffer | null = null;
  if (header.name !== 0n && header.nameLen > 0) {
    address = ctx.read(header.name, Math.min(header.nameLen, 128));
  }
  const data = readPayload(ctx, header.iov, header.iovLen, socket);
  if (typeof data === 'number') return data;
  let control: Buffer | null = null;
  if (header.controlLen > 0n) {
    if (header.controlLen > BigInt(LARGEST_CONTROL)) return ENOBUFS;
    control = ctx.read(header.control, Number(header.controlLen));
  }
  return { address, data, control };
}

/** The message as one sendmsg on `fd`; the raw result. */
function sendFrom(
  fd: number,
  data: Buffer,
  address: Buffer | null,
  control: Buffer | null,
  flags: number,
): number {
  if (control === null || control.length === 0) {
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
    control: addressOf(control),
    controlLen: BigInt(control.length),
  });
  const result = trySyscall('sendmsg', fd, header, flags);
  void [data, address, iov, control]; // alive until the call is over
  return result;
}

/** A send deferred to the main thread because it must wait for room: the copies. */
interface DeferredSend {
  readonly fd: number;
  readonly data: Uint8Array;
  readonly address: Uint8Array | null;
  /** The address the rules were checked on, where it is not `address` (a remapped port). */
  readonly checked: Uint8Array | null;
  readonly flags: number;
}

/**
 * Checks one message and sends it from the copies, without waiting: the
 * raw result, or `defer` with the copies when a caller in blocking mode
 * would wait for room (UDP and TCP without control data; others fail with
 * EAGAIN: a pool thread's capabilities cannot be cut, nor the caller's
 * credentials attached).
 */
function sendMessage(
  ctx: Ctx,
  fd: number,
  childFd: number,
  socket: SocketKind,
  message: Message,
  flags: number,
  mayDefer: boolean,
): number | DeferredSend {
  const { data, control } = message;
  let address = message.address;
  /** The address checked, where the one sent differs (a remapped port). */
  let checked: Buffer | null = null;
  switch (socket.class) {
    case 'datagram': {
      if (address !== null) {
        const refused = refusal(ctx.session.policy, targetOf(socket, address, 'send'));
        if (refused !== null) return refused.kind === 'errno' ? -refused.errno : -EACCES;
        const sent = datagramDestinationFor(ctx.session, socket, address);
        if (sent !== address) [checked, address] = [address, sent];
      }
      break;
    }
    case 'inet-stream':
      // tcp_sendmsg_fastopen() connects to msg_name: refused as where
      // client Fast Open is off (net.ipv4.tcp_fastopen). Otherwise the
      // address is not used (the connected peer, or EPIPE).
      if ((flags & MSG_FASTOPEN) !== 0) return -EOPNOTSUPP;
      break;
    case 'unix':
      return sendUnix(ctx, fd, socket, message, flags);
    default:
      return asCaller(() => sendFrom(fd, data, address, control, flags | MSG_DONTWAIT));
  }
  const result =
    control === null
      ? sendFrom(fd, data, address, null, flags | MSG_DONTWAIT)
      : asCaller(() => sendFrom(fd, data, address, control, flags | MSG_DONTWAIT));
  if (result === -EAGAIN && mayDefer && control === null && wouldWait(fd, flags)) {
    address = address === null ? null : Buffer.from(address);
    return { fd: childFd, data, address, checked, flags };
  }
  return result;
}

/**
 * A send on a Unix socket: a pathname destination (only a datagram socket
 * uses one: unix_dgram_sendmsg()) resolved and checked, and reached through
 * /proc/self/fd of the pinned file; an abstract one sent by the reaper
 * (Landlock's scoping); the control data rewritten (control.ts). A message
 * that carries descriptors is sent by the reaper (rights.ts); another by
 * the worker, with the caller's capabilities and CAP_SYS_ADMIN kept for the
 * credentials attached.
 */
function sendUnix(
  ctx: Ctx,
  fd: number,
  socket: SocketKind,
  message: Message,
  flags: number,
): number {
  let target: UnixTarget = { kind: 'as-is' };
  const named = message.address !== null && socket.type === SOCK_DGRAM;
  if (named) {
    target = unixTarget(ctx, message.address!);
    if (target.kind === 'errno') return -target.errno;
  }
  try {
    const caller = callerStatus(ctx.pid);
    if (caller === null) return -EPERM;
    const own = ownCapabilities();
    const attach = (own.effective & CAP_SYS_ADMIN) !== 0n;
    const translated = translateUnixControl(ctx, message.control, caller, attach);
    if (typeof translated === 'number') return -translated;
    try {
      if (translated.fds.length > 0) {
        return sendRightsByReaper(ctx, fd, socket, message, target, translated, flags);
      }
      if (named && target.kind === 'as-is') return sendAbstract(ctx, fd, message, flags);
      const address = target.kind === 'path' ? viaDescriptor(target.fd) : message.address;
      const keep = attach ? caller.capEff | CAP_SYS_ADMIN : caller.capEff;
      return asCaller(
        () => sendFrom(fd, message.data, address, translated.control, flags | MSG_DONTWAIT),
        keep,
      );
    } finally {
      for (const copy of new Set(translated.fds)) close(copy);
    }
  } finally {
    if (target.kind === 'path') close(target.fd);
  }
}

/** A Unix message with descriptors, sent by the reaper (rights.ts). */
function sendRightsByReaper(
  ctx: Ctx,
  fd: number,
  socket: SocketKind,
  message: Message,
  target: UnixTarget,
  translated: Translated,
  flags: number,
): number {
  const broker = ctx.session.onBehalf;
  if (broker === null) return -EACCES;
  if (translated.credentials) {
    ctx.refused({
      what: 'sendmsg with SCM_CREDENTIALS and SCM_RIGHTS in one message',
      rule: 'descriptors are sent by the reaper, which cannot claim the caller’s pid',
    });
    return -EPERM;
  }
  let destination: RightsDestination = { kind: 'peer' };
  if (target.kind === 'path') {
    destination = { kind: 'file', fd: target.fd };
  } else if (message.address !== null) {
    // Abstract or unnamed: Landlock's scoping, in the reaper's domain, which
    // is wider than a caller's own.
    if (socket.type === SOCK_DGRAM && narrowedRefusal(ctx) !== null) return -EACCES;
    destination = { kind: 'address', address: message.address };
  }
  return sendWithRights(broker, fd, socket, message.data, destination, translated.fds, flags);
}

/** A datagram to an abstract (or unnamed) Unix address, sent by the reaper. */
function sendAbstract(ctx: Ctx, fd: number, message: Message, flags: number): number {
  const broker = ctx.session.onBehalf;
  if (broker === null) return -EACCES;
  const narrowed = narrowedRefusal(ctx);
  if (narrowed !== null) return -EACCES;
  // The reaper sends what fits in one request, and no descriptors.
  if (message.control !== null && message.control.length > 0) return -EPERM;
  const address = message.address!;
  if (message.data.length + address.length > 7 * 1024) return -EMSGSIZE;
  const data = Buffer.concat([address, message.data, Buffer.alloc(1)]);
  return broker.call({
    syscall: 'sendto',
    args: [
      { fd },
      { data: address.length },
      message.data.length,
      flags | MSG_DONTWAIT,
      { data: 0 },
      address.length,
    ],
    data,
  }).result;
}

function answerSend(result: number | DeferredSend): Answer {
  return typeof result === 'number' ? answer.fromResult(result) : answer.defer(result);
}

function onSendto(ctx: Ctx): Answer {
  const [fdArg, buffer, lengthArg, flagsArg, addressArg, addressLength] = ctx.args;
  // The filter notifies sendto only with an address (a register: the
  // caller cannot change it); without one, the connected peer.
  return onSocket(ctx, int32(fdArg), (fd, socket) => {
    const address = copyAddress(ctx, addressArg ?? 0n, int32(addressLength));
    if (typeof address === 'number') return answer.errno(address);
    const length = lengthArg ?? 0n;
    const { limit, whole } = payloadLimit(socket);
    if (whole && length > BigInt(limit)) return answer.errno(EMSGSIZE);
    const take = Number(length > BigInt(limit) ? BigInt(limit) : length);
    const data = take === 0 ? Buffer.alloc(0) : ctx.read(buffer ?? 0n, take);
    const message = { address: addressArg === 0n ? null : address, data, control: null };
    return answerSend(sendMessage(ctx, fd, int32(fdArg), socket, message, low32(flagsArg), true));
  });
}

function onSendmsg(ctx: Ctx): Answer {
  const [fdArg, messageArg, flagsArg] = ctx.args;
  return onSocket(ctx, int32(fdArg), (fd, socket) => {
    const message = readMessage(ctx, messageArg ?? 0n, socket);
    if (typeof message === 'number') return answer.errno(message);
    return answerSend(sendMessage(ctx, fd, int32(fdArg), socket, message, low32(flagsArg), true));
  });
}

/**
 * sendmmsg: each message checked and sent in turn, its msg_len written back.
 * A message that is refused or fails ends the call: the number sent so far,
 * or its errno when it was the first (sendmmsg(2)). None waits for room.
 */
function onSendmmsg(ctx: Ctx): Answer {
  const [fdArg, vectorArg, countArg, flagsArg] = ctx.args;
  return onSocket(ctx, int32(fdArg), (fd, socket) => {
    const count = Math.min(low32(countArg), UIO_MAXIOV);
    const flags = low32(flagsArg);
    let sent = 0;
    for (; sent < count; sent++) {
      const at = (vectorArg ?? 0n) + BigInt(sent * MMSGHDR_SIZE);
      const message = readMessage(ctx, at, socket);
      const result =
        typeof message === 'number'
          ? -message
          : (sendMessage(ctx, fd, -1, socket, message, flags, false) as number);
      if (result < 0) return sent > 0 ? answer.value(sent) : answer.errno(-result);
      const length = Buffer.alloc(4);
      length.writeUInt32LE(result);
      ctx.write(at + BigInt(MMSGHDR_LEN_OFFSET), length);
    }
    return answer.value(sent);
  });
}

/** A send that waits for room, on a thread of libuv's pool: checked again on its own duplicate. */
async function onSendDeferred(ctx: DeferredContext<ModulePolicy>): Promise<Answer> {
  const copies = ctx.payload as DeferredSend;
  const fd = duplicate(ctx, copies.fd);
  if (typeof fd !== 'number') return fd;
  try {
    const socket = socketKind(fd);
    // The caller's descriptor changed while it waited: it tries again.
    if (typeof socket === 'number' || socket.class === 'unix' || socket.class === 'other') {
      return answer.errno(EAGAIN);
    }
    if (socket.class === 'inet-stream' && (copies.flags & MSG_FASTOPEN) !== 0) {
      return answer.errno(EOPNOTSUPP);
    }
    if (socket.class === 'datagram' && copies.address !== null) {
      const target = targetOf(socket, Buffer.from(copies.checked ?? copies.address), 'send');
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

/** The calls that name where a socket's traffic goes. */
export const DESTINATION_SYSCALLS: readonly string[] = ['connect', 'sendto', 'sendmsg', 'sendmmsg'];

/**
 * On for every supervised sandbox (`mediatesDestinations`): named Unix
 * sockets are closed by default (a sandbox reaches only those it may write,
 * or that `unix` names), TCP follows the address rules where the policy has
 * some, UDP and ICMP do always (they exist only with a rule). A sandbox
 * that needs no supervisor at all may make no Unix socket instead (its
 * filter: `unixSockets` of the supervision plan).
 */
export default defineModule<unknown, ModulePolicy>({
  name: 'destinations',
  syscalls: DESTINATION_SYSCALLS,
  // With a root, every sun_path is the sandbox's, walked inside it (PATH_VIEW).
  enabled: (policy) => policy.mediatesDestinations || (policy.chroot ?? null) !== null,
  // The socket is taken with pidfd_getfd to connect or send from checked copies.
  takesDescriptors: () => true,
  onBehalf: true,
  handlers: {
    connect: onConnect,
    sendto: onSendto,
    sendmsg: onSendmsg,
    sendmmsg: onSendmmsg,
  },
  deferred: {
    connect: (ctx) =>
      isRedirectPayload(ctx.payload) ? answerRedirected(ctx) : waitForConnect(ctx),
    sendto: onSendDeferred,
    sendmsg: onSendDeferred,
  },
});
