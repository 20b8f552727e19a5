// A sandbox's own names for its ports under portRemap, as a handler module
// of @sandlock/dispatch (PORT_NAMES_MODULE): getsockname and getpeername made
// on a duplicate of the socket, their port translated before the name is
// written to the caller. (Translating the caller's buffer and answering
// CONTINUE, as the reference did, does nothing: the kernel writes the real
// name over it.) Imported by URL in the supervisor's worker threads and on
// the main thread: no side effects at import.
import { type Answer, answer, defineModule, type HandlerContext } from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  close,
  ERRNO,
  SOCKADDR_STORAGE_SIZE,
  trySyscall,
} from '@sandlock/sys';
import {
  duplicate,
  type InetSocket,
  inetSocket,
  int32,
  loopbackName,
  portOffset,
  withPort,
} from './bind-sockets.js';
import { portSpaceOf } from './port-space.js';

const { EINVAL } = ERRNO;

/**
 * A socket's or peer's name with the port the sandbox knows it by: its own
 * socket's virtual port; a peer's on a loopback address when the peer is
 * one of its own remapped sockets.
 */
function shownName(ctx: HandlerContext<ModulePolicy>, socket: InetSocket, name: Buffer): Buffer {
  if (socket.protocol !== 'tcp' && socket.protocol !== 'udp') return name;
  const family = name.length >= 2 ? name.readUInt16LE(0) : AF_UNSPEC;
  if (family !== AF_INET && family !== AF_INET6) return name;
  if (ctx.syscall === 'getpeername' && !loopbackName(family, name)) return name;
  const real = name.readUInt16BE(portOffset(family));
  const virtual = portSpaceOf(ctx.session).virtualOf(socket.protocol, real);
  return virtual === undefined ? name : withPort(family, name, virtual);
}

/**
 * getsockname or getpeername made on a duplicate (the same socket), the
 * name written back as move_addr_to_user() in net/socket.c does: at most the
 * caller's length, and the full length in its place (a negative one is
 * EINVAL).
 */
function onName(ctx: HandlerContext<ModulePolicy>): Answer {
  const [fdArg, addressArg, lengthArg] = ctx.args;
  const fd = duplicate(ctx, int32(fdArg));
  if (typeof fd !== 'number') return fd;
  try {
    const name = Buffer.alloc(SOCKADDR_STORAGE_SIZE);
    const size = Buffer.alloc(4);
    size.writeUInt32LE(name.length);
    const result = trySyscall(ctx.syscall, fd, name, size);
    if (result < 0) return answer.errno(-result);
    const full = Math.min(size.readUInt32LE(0), name.length);
    const socket = inetSocket(fd);
    const shown = socket === null ? name : shownName(ctx, socket, name.subarray(0, full));
    const given = ctx.read(lengthArg ?? 0n, 4).readInt32LE(0);
    if (given < 0) return answer.errno(EINVAL);
    const copied = Math.min(given, full);
    if (copied > 0) ctx.write(addressArg ?? 0n, shown.subarray(0, copied));
    const written = Buffer.alloc(4);
    written.writeUInt32LE(full);
    ctx.write(lengthArg ?? 0n, written);
    return answer.value(0);
  } finally {
    close(fd);
  }
}

/** The calls the module answers. */
export const PORT_NAME_SYSCALLS: readonly string[] = ['getsockname', 'getpeername'];

/** On for a sandbox with a private port space (portRemap). */
export default defineModule<unknown, ModulePolicy>({
  name: 'port-names',
  syscalls: PORT_NAME_SYSCALLS,
  enabled: (policy) => policy.binds.remap,
  takesDescriptors: () => true,
  handlers: { getsockname: onName, getpeername: onName },
});
