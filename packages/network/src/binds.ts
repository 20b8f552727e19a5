// Binds checked on copies, as a handler module of @sandlock/dispatch
// (BINDS_MODULE). Imported by URL in the supervisor's worker threads and on
// the main thread: no side effects at import.
//
// The address of a bind is in the caller's memory: a check followed by
// CONTINUE would let another thread rewrite its port between the check and
// the kernel's read. So a bind the rules decide is made here: the address
// is copied out of the caller once, checked, and bound by the sandbox's
// reaper (`session.onBehalf`) on a duplicate of the socket (pidfd_getfd:
// the same open file description). The reaper holds no capability, so a
// port below net.ipv4.ip_unprivileged_port_start stays the kernel's EACCES
// however the supervisor runs (inet_bind_sk()/__inet_bind() in
// net/ipv4/af_inet.c), and sits in the policy's Landlock domain, so TCP
// binds still pass Landlock's port rules.
//
// Which binds come here: UDP ones (Landlock does not mediate UDP), and TCP
// ones where the supervisor makes every TCP bind (netDenyBind, portRemap:
// the sandbox's own Landlock layer then allows it none). Other TCP binds are
// Landlock's alone (`continue`), and so are binds of sockets that are not
// AF_INET/AF_INET6 (their type is read on this process's duplicate; the
// kernel takes the descriptor again by number).
import {
  type Answer,
  answer,
  defineModule,
  type HandlerContext,
  type WorkerSession,
} from '@sandlock/dispatch/module';
import { type BindProtocol, type ModulePolicy, mayBind } from '@sandlock/policy';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  close,
  ERRNO,
  SIN6_LEN_RFC2133,
  SOCKADDR_IN_SIZE,
  SOCKADDR_STORAGE_SIZE,
  trySyscall,
} from '@sandlock/sys';
import { duplicate, inetSocket, int32, portOffset, withPort } from './bind-sockets.js';
import { dropPortSpace, type PortMapping, portSpaceOf } from './port-space.js';

const { EACCES, EADDRINUSE, EAFNOSUPPORT, EINVAL } = ERRNO;

/**
 * The port a bind of `address` on a socket of `family` asks for, or the
 * errno the kernel gives before binding: inet_bind_sk() takes no less than a
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
  if (known !== undefined) return bind(withPort(family, address, known));
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

function onBind(ctx: HandlerContext<ModulePolicy>): Answer {
  const [fdArg, addressArg, lengthArg] = ctx.args;
  const { binds } = ctx.session.policy;
  const fd = duplicate(ctx, int32(fdArg));
  if (typeof fd !== 'number') return fd;
  try {
    const socket = inetSocket(fd);
    if (socket === null || socket.protocol === 'other') return answer.continue();
    if (socket.protocol === 'tcp') {
      // Landlock's alone; or, where the caller made a narrower domain, its
      // own layers decide (they let it bind no TCP port here).
      if (!binds.tcpOnBehalf || ctx.session.narrowed(ctx.pid)) return answer.continue();
    }
    // move_addr_to_kernel() in net/socket.c: a length past a
    // sockaddr_storage, or negative, is EINVAL.
    const length = int32(lengthArg);
    if (length < 0 || length > SOCKADDR_STORAGE_SIZE) return answer.errno(EINVAL);
    const address = length === 0 ? Buffer.alloc(0) : ctx.read(addressArg ?? 0n, length);
    const port = portAsked(socket.family, address);
    if (typeof port !== 'number') return answer.errno(port.errno);
    const broker = ctx.session.onBehalf;
    if (broker === null) return answer.errno(EACCES);
    const bind = (copy: Buffer) =>
      broker.call({ syscall: 'bind', args: [{ fd }, { data: 0 }, copy.length], data: copy }).result;
    // A ping socket's "port" is its echo identifier: no bind rule is about it.
    if (socket.protocol === 'icmp') return answer.fromResult(bind(address));
    const { protocol } = socket;
    // A nested sandbox's binds pass the rules of every sandbox around it too.
    const levels = [binds, ...(ctx.session.policy.enclosingBinds ?? [])];
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
 * supervisor makes (netDenyBind, portRemap).
 */
export default defineModule<unknown, ModulePolicy>({
  name: 'binds',
  syscalls: BIND_SYSCALLS,
  enabled: (policy) => policy.binds.tcpOnBehalf || policy.datagrams.udp,
  onBehalf: true,
  handlers: { bind: onBind },
  sessionEnd: (session) => dropPortSpace(session),
});
