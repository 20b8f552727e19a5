// Socket buffer sizes under a memory limit, as a handler module of
// @sandlock/dispatch (SOCKET_BUFFERS_MODULE). Imported by URL in the
// supervisor's worker threads: no side effects at import.
//
// Without capabilities a program may still raise SO_SNDBUF and SO_RCVBUF up
// to net.core.wmem_max / rmem_max, and the kernel doubles what it asks for
// (sock_setsockopt() in net/core/sock.c): on a machine with wmem_max 4 MiB
// one filled socketpair held 16 MiB (bench/kernel-buffers.py). Under
// maxMemory the buffers are counted (heldBuffers), and a request to raise
// them is held to the kernel's default size, so that what the count cannot
// see (a socket in flight in an SCM_RIGHTS message) stays small.
import { readFileSync } from 'node:fs';
import { answer, defineModule, type HandlerContext } from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import { SO_RCVBUF, SO_SNDBUF, SOL_SOCKET } from '@sandlock/sys';

/** The kernel's default buffer sizes when their sysctls cannot be read (SK_WMEM_MAX). */
const FALLBACK_DEFAULT = 212992;

function sysctl(name: string): number {
  try {
    const value = Number.parseInt(readFileSync(`/proc/sys/net/core/${name}`, 'latin1'), 10);
    return value > 0 ? value : FALLBACK_DEFAULT;
  } catch {
    return FALLBACK_DEFAULT;
  }
}

/**
 * The largest value let through, per option: half the kernel's default, which
 * the kernel doubles back to the default. Read once per worker thread.
 */
let largest: Map<number, number> | null = null;

const low32 = (value: bigint | undefined) => Number((value ?? 0n) & 0xffffffffn);

function onSetsockopt(ctx: HandlerContext<ModulePolicy>) {
  const [fd, level, name, optval, optlen] = ctx.args;
  if (low32(level) !== SOL_SOCKET) return answer.continue();
  const option = low32(name);
  largest ??= new Map([
    [SO_SNDBUF, Math.floor(sysctl('wmem_default') / 2)],
    [SO_RCVBUF, Math.floor(sysctl('rmem_default') / 2)],
  ]);
  const cap = largest.get(option);
  // Shorter than an int: the kernel answers EINVAL itself.
  if (cap === undefined || low32(optlen) < 4) return answer.continue();
  // The kernel reads the value as an unsigned int and clamps it to the
  // maximum: a negative one asks for the most.
  const requested = ctx.read(optval ?? 0n, 4).readInt32LE(0);
  const value = Buffer.alloc(4);
  value.writeInt32LE(requested < 0 ? cap : Math.min(requested, cap));
  // On behalf, with the value read here: another thread of the caller could
  // change its copy between this check and the kernel's read.
  const result = ctx.onBehalf(low32(fd), 'setsockopt', SOL_SOCKET, option, value, 4);
  return answer.fromResult(result);
}

/**
 * On for a sandbox whose policy has `maxMemory`: setsockopt(SOL_SOCKET,
 * SO_SNDBUF or SO_RCVBUF) is done on the sandbox's behalf with the value held
 * to half net.core.wmem_default / rmem_default (the kernel doubles it), so
 * no socket's buffers grow past the default. Lower values pass unchanged.
 */
export default defineModule<unknown, ModulePolicy>({
  name: 'socket-buffers',
  syscalls: ['setsockopt'],
  enabled: (policy) => policy.maxMemory !== null,
  takesDescriptors: () => true,
  handlers: { setsockopt: onSetsockopt },
});
