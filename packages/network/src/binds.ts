// Binds made on copies, as a handler module of @sandlock/dispatch
// (BINDS_MODULE). Imported by URL in the supervisor's worker threads and on
// the main thread: no side effects at import.
//
// The address of a bind is in the caller's memory, and its descriptor a
// number the kernel would take again: a check followed by CONTINUE would
// let another thread rewrite the port, or dup2 another socket over the
// number (a UDP socket over a Unix one), between the check and the kernel's
// bind. So every bind the module sees is made here: the socket taken once
// (pidfd_getfd: the same open file description) and its family read on that
// duplicate, the address copied out of the caller once, checked, and bound
// by the sandbox's reaper (`session.onBehalf`) on the duplicate. The reaper
// holds no capability, so a port below net.ipv4.ip_unprivileged_port_start
// stays the kernel's EACCES however the supervisor runs (inet_bind_sk()/
// __inet_bind() in net/ipv4/af_inet.c), and sits in the policy's Landlock
// domain, so TCP binds still pass Landlock's port rules and socket files
// its LANDLOCK_ACCESS_FS_MAKE_SOCK.
//
// Which binds come here: every bind of a sandbox that may make UDP sockets
// (Landlock does not mediate UDP) or whose TCP binds the supervisor decides
// (netDenyBind, portRemap). UDP and, in the latter, TCP are checked against
// the bind rules; TCP under an allow list is Landlock's (in the reaper);
// Unix binds are unix-bind.ts's; other families are the kernel's, in the
// reaper. A caller that made a Landlock domain of its own gets EACCES where
// the reaper's authority could exceed its own (TCP, socket files).
import {
  type Answer,
  answer,
  defineModule,
  type HandlerContext,
  PROC_NET_PORTS,
  type WorkerSession,
} from '@sandlock/dispatch/module';
import { type BindProtocol, type ModulePolicy, mayBind } from '@sandlock/policy';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  AF_UNSPEC,
  close,
  ERRNO,
  SIN6_LEN_RFC2133,
  SO_DOMAIN,
  SOCKADDR_IN_SIZE,
  SOCKADDR_STORAGE_SIZE,
  trySyscall,
} from '@sandlock/sys';
import { duplicate, inetSocket, int32, portOffset, withPort } from './bind-sockets.js';
import { dropPortSpace, type PortMapping, portSpaceOf, translateProcNet } from './port-space.js';
import { asCaller, intOption } from './sockets.js';
import { reaperBind, unixBind } from './unix-bind.js';

const { EACCES, EADDRINUSE, EAFNOSUPPORT, EINVAL } = ERRNO;

/**
 * The port a bind of `address` on a socket of `family` asks for, or an
 * errno the kernel gives without binding: inet_bind_sk() takes no less than a
 * sockaddr_in, and an AF_INET or AF_UNSPEC family (the latter for
 * INADDR_ANY, which __inet_bind() decides); inet6_bind_sk() no less than
 * SIN6_LEN_RFC2133 bytes, and __inet6_bind() only AF_INET6.
 */
function portAsked(family: number, address: Buffer): number | { errno: number } {
  if (family === AF_INET) {
    if (address.length < SOCKADDR_IN_SIZE) return { errno: EINVAL };
    const given = address.readUInt16LE(0);
    if (given !== AF_INET && given !== AF_UNSPEC) return { errno: EAFNOSUPPORT };
  } else {
    if (address.length < SIN6_LEN_RFC2133) return { errno: EINVAL };
    if (address.readUInt16LE(0) !== AF_INET6) return { errno: EAFNOSUPPORT };
  }
  return address.readUInt16BE(portOffset(family));
}

/** The local port of the socket behind `fd`, or -errno. */
function localPort(fd: number): number {
  const name = Buffer.alloc(SOCKADDR_STORAGE_SIZE);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(name.length);
  const result = trySyscall('getsockname', fd, name, length);
  return result < 0 ? result : name.readUInt16BE(2);
}

/**
 * A bind under portRemap, made by `bind` (the reaper's): the real port the
 * virtual one has had since it was first bound; else the port itself when
 * it is free on the host; else one the kernel picks (port 0: an ephemeral
 * port, which the policy's Landlock domain allows under portRemap).
 */
function remappedBind(
  session: WorkerSession,
  protocol: BindProtocol,
  family: number,
  fd: number,
  address: Buffer,
  virtual: number,
  bind: (address: Buffer) => number,
): number {
  const space = portSpaceOf(session);
  const record = (real: number) => {
    const mapping: PortMapping = { protocol, virtual, real };
    if (space.record(protocol, virtual, real)) session.notice('binds', 'port', mapping);
  };
  const known = space.realOf(protocol, virtual);
  if (known === virtual) return bind(address);
  if (known !== undefined) {
    // A port the kernel picked, which the policy's Landlock domain does not
    // name (it allows port 0 for this): bound by this thread, with the
    // caller's capabilities (none). The port stands for `virtual`, which
    // the rules allowed; nothing else of a TCP or UDP bind depends on who
    // makes it (a SO_REUSEPORT group goes by the socket's owner).
    const again = withPort(family, address, known);
    return asCaller(() => trySyscall('bind', fd, again, again.length));
  }
  const same = bind(address);
  if (same !== -EADDRINUSE) {
    if (same === 0) record(virtual);
    return same;
  }
  const fresh = bind(withPort(family, address, 0));
  if (fresh < 0) return fresh;
  const real = localPort(fd);
  // Bound, but its port unknown: the sandbox would see the real one; the
  // socket is bound all the same (there is no unbind).
  if (real > 0) record(real);
  return 0;
}

/** A TCP bind the reaper may not make for a caller with a Landlock domain of its own. */
function narrowedRefusal(ctx: HandlerContext<ModulePolicy>): Answer {
  ctx.refused({
    what: 'a TCP bind from a process with a Landlock domain of its own',
    rule: 'made by the reaper with the sandbox’s authority',
  });
  return answer.errno(EACCES);
}

function onBind(ctx: HandlerContext<ModulePolicy>): Answer {
  const [fdArg, addressArg, lengthArg] = ctx.args;
  const { binds } = ctx.session.policy;
  const fd = duplicate(ctx, int32(fdArg));
  if (typeof fd !== 'number') return fd;
  try {
    // __sys_bind(): the socket first (ENOTSOCK), then move_addr_to_kernel():
    // a length past a sockaddr_storage, or negative, is EINVAL.
    const family = intOption(fd, SO_DOMAIN);
    if (family < 0) return answer.fromResult(family);
    const length = int32(lengthArg);
    if (length < 0 || length > SOCKADDR_STORAGE_SIZE) return answer.errno(EINVAL);
    const address = length === 0 ? Buffer.alloc(0) : ctx.read(addressArg ?? 0n, length);
    const broker = ctx.session.onBehalf;
    if (broker === null) return answer.errno(EACCES);
    const bind = (copy: Buffer) => reaperBind(broker, fd, copy);
    if (family === AF_UNIX) return unixBind(ctx, broker, fd, address);
    const socket = inetSocket(fd);
    // Another family, or an inet socket no bind rule is about (raw, SCTP…):
    // the kernel's rules, in the reaper.
    if (socket === null || socket.protocol === 'other') return answer.fromResult(bind(address));
    // An address the kernel refuses whatever the port: its errno, from the
    // reaper (where Landlock handles TCP binds it says EINVAL for a family
    // the socket does not have, before the protocol's EAFNOSUPPORT).
    const port = portAsked(socket.family, address);
    if (typeof port !== 'number') return answer.fromResult(bind(address));
    // A ping socket's "port" is its echo identifier: no bind rule is about it.
    if (socket.protocol === 'icmp') return answer.fromResult(bind(address));
    const { protocol } = socket;
    // A nested (delegated) sandbox's binds are made by the reaper of the
    // sandbox around it, whose Landlock domain is that one's: its own rules,
    // and those of every sandbox around it, are checked here.
    const enclosing = ctx.session.policy.enclosingBinds;
    if (protocol === 'tcp') {
      if (ctx.session.narrowed(ctx.pid)) return narrowedRefusal(ctx);
      // Landlock's port rules, in the reaper's domain.
      if (!binds.tcpOnBehalf && enclosing === undefined) return answer.fromResult(bind(address));
    }
    const levels = [binds, ...(enclosing ?? [])];
    const refusing = levels.find((level) => !mayBind(level, protocol, port));
    if (refusing !== undefined) {
      ctx.refused({
        what: () => `bind ${protocol} port ${port}`,
        rule: `${refusing.mode === 'allow' ? 'netAllowBind' : 'netDenyBind'}${refusing === binds ? '' : ' of a sandbox around it'}`,
      });
      return answer.errno(EACCES);
    }
    if (!binds.remap || port === 0) return answer.fromResult(bind(address));
    return answer.fromResult(
      remappedBind(ctx.session, protocol, socket.family, fd, address, port, bind),
    );
  } finally {
    close(fd);
  }
}

/** The calls the module answers. */
export const BIND_SYSCALLS: readonly string[] = ['bind'];

/**
 * On for a sandbox whose binds the kernel cannot decide alone: one that may
 * make UDP sockets (Landlock does not mediate UDP), or whose TCP binds the
 * supervisor makes (netDenyBind, portRemap), or one with a root, whose
 * socket files are named inside it. Otherwise no bind is notified, and
 * none needs checking: UDP sockets cannot be made, and Landlock decides TCP
 * binds and socket files.
 */
export default defineModule<unknown, ModulePolicy>({
  name: 'binds',
  syscalls: BIND_SYSCALLS,
  enabled: (policy) =>
    policy.binds.tcpOnBehalf || policy.datagrams.udp || (policy.chroot ?? null) !== null,
  // The socket is taken with pidfd_getfd to bind it from a checked copy.
  takesDescriptors: () => true,
  onBehalf: true,
  handlers: { bind: onBind },
  // procfs shows /proc/net's tables with the virtual ports.
  sessionStart: (session) => {
    if (!session.policy.binds.remap) return;
    session.provide(PROC_NET_PORTS, (text, protocol) =>
      translateProcNet(text, portSpaceOf(session), protocol),
    );
  },
  sessionEnd: (session) => dropPortSpace(session),
});
