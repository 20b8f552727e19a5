// Named Unix sockets: which ones a sandbox may reach. The kernel's own rule
// for a socket file is write permission on it (unix_find_bsd() in
// net/unix/af_unix.c: inode_permission(MAY_WRITE)); Landlock (ABI 7) has no
// right for it, so a sandbox with a read-only grant of /run would reach
// every daemon listening there. Here the policy says it: the socket file,
// where the kernel finds it for the caller, must lie beneath an fsWrite path
// and beneath no fsDeny path, or at or beneath a `unix` path.
//
// The path is walked in the caller's view (ctx.walk: its root, its cwd,
// symlinks, /proc/self as the caller; inside an emulated chroot, the root's
// PATH_VIEW), with its capabilities (none), and the
// walk's O_PATH descriptor is what is reached afterwards, through
// /proc/self/fd/N: a rename or a new symlink after the check changes nothing.
import { readlinkSync } from 'node:fs';
import { type HandlerContext, PATH_VIEW } from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import {
  AF_UNIX,
  AT_FDCWD,
  bytePath,
  close,
  ERRNO,
  hostArch,
  openFlags,
  pathWithin,
  SOCKADDR_UN_SIZE,
  trySyscall,
  type Walked,
} from '@sandlock/sys';
import { asCaller } from './sockets.js';

const { EACCES, EINVAL, EPERM } = ERRNO;
const { O_CLOEXEC, O_NOFOLLOW, O_PATH } = openFlags(hostArch());

/**
 * Where a Unix address leads: `as-is` (not a pathname: abstract or unnamed,
 * left to Landlock's scoping in the reaper; another family, which the
 * kernel refuses or reads as a disconnect), a pinned socket file (`fd`, an
 * O_PATH descriptor the caller of this function closes), or an errno.
 */
export type UnixTarget =
  | { readonly kind: 'as-is' }
  | { readonly kind: 'path'; readonly fd: number; readonly path: string }
  | { readonly kind: 'errno'; readonly errno: number };

/** Whether the policy lets the sandbox reach the socket file at `path` (as the kernel names it). */
export function unixAllowed(
  policy: Pick<ModulePolicy, 'fsWrite' | 'fsDeny' | 'unix'>,
  path: string,
): boolean {
  if (policy.unix.some((entry) => pathWithin(path, bytePath(entry)))) return true;
  if (policy.fsDeny.some((entry) => pathWithin(path, bytePath(entry)))) return false;
  return policy.fsWrite.some((entry) => pathWithin(path, bytePath(entry)));
}

/**
 * The caller's path (relative to its cwd) walked in its view with its
 * capabilities: inside its root and mounts where a module provides a
 * {@link PATH_VIEW} (an emulated chroot), else from its real root
 * (ctx.walk). An errno when this thread's capabilities cannot be lowered.
 */
export function walkAsCaller(
  ctx: HandlerContext<ModulePolicy>,
  path: Buffer,
  followLast: boolean,
): Walked | number {
  const view = ctx.session.provided(PATH_VIEW);
  if (view !== undefined) return view.walk(ctx, path, { dirfd: AT_FDCWD, followLast });
  if ((ctx.session.policy.chroot ?? null) !== null) {
    // A root without its view (no chroot module in this supervisor): nothing to walk in.
    return EACCES;
  }
  let walked: Walked | undefined;
  const lowered = asCaller(() => {
    walked = ctx.walk(path, { dirfd: AT_FDCWD, followLast });
    return 0;
  });
  if (lowered < 0 || walked === undefined) return -lowered || EPERM;
  return walked;
}

/**
 * The supervisor's delegation socket named by its host path from inside an
 * emulated chroot, whose root does not hold it (`SANDLOCK_SUPERVISOR` of a
 * launcher there): opened here, in this supervisor's own directory of it;
 * null for any other path, or without a root.
 */
function delegationSocketOf(
  policy: Pick<ModulePolicy, 'chroot' | 'delegationSocket'>,
  path: Buffer,
): UnixTarget | null {
  const socket = policy.delegationSocket;
  if ((policy.chroot ?? null) === null || socket === undefined) return null;
  if (path.toString('latin1') !== socket) return null;
  const fd = trySyscall(
    'openat',
    AT_FDCWD,
    Buffer.from(`${socket}\0`, 'latin1'),
    O_PATH | O_NOFOLLOW | O_CLOEXEC,
    0,
  );
  if (fd < 0) return { kind: 'errno', errno: -fd };
  return { kind: 'path', fd, path: socket };
}

/**
 * The target of a Unix socket address copied out of the caller, resolved
 * and checked. `address` is the copy (at most a sockaddr_storage).
 */
export function unixTarget(ctx: HandlerContext<ModulePolicy>, address: Buffer): UnixTarget {
  // unix_validate_addr(): a family and at most a sockaddr_un.
  if (address.length < 2 || address.length > SOCKADDR_UN_SIZE) {
    return { kind: 'errno', errno: EINVAL };
  }
  if (address.readUInt16LE(0) !== AF_UNIX) return { kind: 'as-is' };
  const name = address.subarray(2);
  // unix_mkname_bsd() ends the path at addr_len or at the first NUL; a first NUL is abstract.
  if (name.length === 0 || name[0] === 0) return { kind: 'as-is' };
  const end = name.indexOf(0);
  const path = Buffer.from(end < 0 ? name : name.subarray(0, end));
  const delegation = delegationSocketOf(ctx.session.policy, path);
  if (delegation !== null) return delegation;
  const found = walkAsCaller(ctx, path, true);
  if (typeof found === 'number') return { kind: 'errno', errno: found };
  if (found.errno !== 0) {
    found.close();
    return { kind: 'errno', errno: found.errno };
  }
  const fd = found.fd;
  found.fd = -1;
  found.close();
  let link: string;
  try {
    link = readlinkSync(`/proc/self/fd/${fd}`, 'latin1');
  } catch {
    close(fd);
    return { kind: 'errno', errno: EACCES };
  }
  if (!link.startsWith('/') || !unixAllowed(ctx.session.policy, link)) {
    close(fd);
    ctx.refused({ what: `connect or send to the Unix socket ${link}`, rule: 'fsWrite, unix' });
    return { kind: 'errno', errno: EACCES };
  }
  return { kind: 'path', fd, path: link };
}

/** A sockaddr_un naming `/proc/self/fd/<fd>` of the process that uses it, and its length. */
export function viaDescriptor(fd: number): Buffer {
  const name = Buffer.from(`/proc/self/fd/${fd}\0`);
  const address = Buffer.alloc(2 + name.length);
  address.writeUInt16LE(AF_UNIX, 0);
  name.copy(address, 2);
  return address;
}
