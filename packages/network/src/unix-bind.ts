// Unix binds made by the sandbox's reaper, for the binds module. None is
// left to the kernel (`continue`): it would take the caller's descriptor
// again by number, where another thread may have put a UDP socket
// meanwhile, which the kernel would then bind unchecked.
//
// A pathname bind creates a socket file: the kernel's rule is the one for
// any new file, write and search permission on its directory
// (unix_bind_bsd() → kern_path_create(), vfs_mknod() → may_create()), and
// Landlock's LANDLOCK_ACCESS_FS_MAKE_SOCK there. Here the policy says it
// first: the new file must lie beneath an fsWrite path and beneath no
// fsDeny path. The path is walked in the caller's view (its root, its cwd,
// /proc/self as the caller; ctx.walk, or an emulated chroot's PATH_VIEW), and the reaper, in the policy's
// Landlock domain, binds at /proc/self/fd/<dir>/<name> of the directory the
// walk found: a rename or a new symlink after the check changes nothing.
// Abstract and autobind names are bound by the reaper as they are
// (Landlock's abstract-socket scoping is about connects and sends; a bind
// needs no right).
import { readlinkSync } from 'node:fs';
import type { Answer, HandlerContext, OnBehalf } from '@sandlock/dispatch/module';
import { answer } from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import {
  AF_UNIX,
  AT_FDCWD,
  bytePath,
  ERRNO,
  F_DUPFD_CLOEXEC,
  hostArch,
  openFlags,
  pathWithin,
  SOCKADDR_UN_SIZE,
} from '@sandlock/sys';
import { callerStatus } from './caller.js';
import { walkAsCaller } from './unix.js';

const { EACCES, EADDRINUSE, EINVAL, ENOENT, EPERM, EROFS } = ERRNO;
const O = openFlags(hostArch());
/** offsetof(struct sockaddr_un, sun_path). */
const SUN_PATH_OFFSET = 2;

/** bind(fd, address) made by the reaper; the raw result. `fd` is this process's duplicate. */
export function reaperBind(broker: OnBehalf, fd: number, address: Buffer): number {
  return broker.call({
    syscall: 'bind',
    args: [{ fd }, { data: 0 }, address.length],
    data: address,
  }).result;
}

/** Whether the policy lets the sandbox make a socket file at `path` (as the kernel names it). */
export function mayMakeSocket(
  policy: Pick<ModulePolicy, 'fsWrite' | 'fsDeny'>,
  path: string,
): boolean {
  if (policy.fsDeny.some((entry) => pathWithin(path, bytePath(entry)))) return false;
  return policy.fsWrite.some((entry) => pathWithin(path, bytePath(entry)));
}

function unixAddress(path: Buffer): Buffer {
  const address = Buffer.alloc(SUN_PATH_OFFSET + path.length + 1);
  address.writeUInt16LE(AF_UNIX, 0);
  path.copy(address, SUN_PATH_OFFSET);
  return address;
}

/**
 * The reaper binds `fd` at `name` in the directory it holds as `dir` (a
 * number of its own), with the caller's umask (the socket file's mode is
 * the socket inode's mode less the binder's umask: unix_bind_bsd()). The
 * short form /proc/self/fd/<dir>/<name> when it fits sun_path's 108 bytes;
 * else from the directory as the reaper's cwd, put back afterwards.
 */
function bindIn(broker: OnBehalf, fd: number, dir: number, name: Buffer, umask: number): number {
  const viaFd = Buffer.concat([Buffer.from(`/proc/self/fd/${dir}/`), name]);
  const short = viaFd.length < SOCKADDR_UN_SIZE - SUN_PATH_OFFSET;
  const before = broker.call({ syscall: 'umask', args: [umask] }).result;
  if (before < 0) return before;
  let cwd = -1;
  try {
    if (short) return reaperBind(broker, fd, unixAddress(viaFd));
    cwd = broker.call({
      syscall: 'openat',
      args: [AT_FDCWD, { data: 0 }, O.O_PATH | O.O_DIRECTORY | O.O_CLOEXEC, 0],
      data: Buffer.from('.\0'),
    }).result;
    if (cwd < 0) return cwd;
    const moved = broker.call({ syscall: 'fchdir', args: [dir] }).result;
    if (moved < 0) return moved;
    return reaperBind(broker, fd, unixAddress(name));
  } finally {
    if (cwd >= 0) {
      broker.call({ syscall: 'fchdir', args: [cwd] });
      broker.call({ syscall: 'close', args: [cwd] });
    }
    if (before !== umask) broker.call({ syscall: 'umask', args: [before] });
  }
}

/**
 * A bind of the caller's Unix socket (this process's duplicate `fd`) to
 * `address`, copied out of the caller once, made by the reaper.
 */
export function unixBind(
  ctx: HandlerContext<ModulePolicy>,
  broker: OnBehalf,
  fd: number,
  address: Buffer,
): Answer {
  const family = address.length >= 2 ? address.readUInt16LE(0) : -1;
  // unix_bind(): a bare family is an autobind (an abstract name the kernel picks).
  if (address.length === SUN_PATH_OFFSET && family === AF_UNIX) {
    return answer.fromResult(reaperBind(broker, fd, address));
  }
  // unix_validate_addr().
  if (address.length <= SUN_PATH_OFFSET || address.length > SOCKADDR_UN_SIZE) {
    return answer.errno(EINVAL);
  }
  if (family !== AF_UNIX) return answer.errno(EINVAL);
  if (address[SUN_PATH_OFFSET] === 0) return answer.fromResult(reaperBind(broker, fd, address));
  if (ctx.session.narrowed(ctx.pid)) {
    // Its own Landlock domain may not grant what the policy's does.
    ctx.refused({
      what: 'bind a Unix socket file from a process with a Landlock domain of its own',
      rule: 'made by the reaper with the sandbox’s authority',
    });
    return answer.errno(EACCES);
  }
  // unix_mkname_bsd(): the path ends at the length or at the first NUL.
  const name = address.subarray(SUN_PATH_OFFSET);
  const end = name.indexOf(0);
  const path = Buffer.from(end < 0 ? name : name.subarray(0, end));
  const found = walkAsCaller(ctx, path, false);
  if (typeof found === 'number') return answer.errno(found);
  try {
    // filename_create(): an existing name (a dangling symlink too) is
    // EEXIST, which unix_bind_bsd() makes EADDRINUSE; a missing one with a
    // trailing slash asks for a directory: ENOENT.
    if (found.errno === 0) return answer.errno(EADDRINUSE);
    if (found.kind !== 'missing' || found.parent < 0) return answer.errno(found.errno || EACCES);
    if (path[path.length - 1] === 0x2f) return answer.errno(ENOENT);
    // filename_create(): mnt_want_write() is answered after the lookup, before any permission.
    if (found.readOnly) return answer.errno(EROFS);
    let directory: string;
    try {
      directory = readlinkSync(`/proc/self/fd/${found.parent}`, 'latin1');
    } catch {
      return answer.errno(EACCES);
    }
    const file = `${directory === '/' ? '' : directory}/${found.name}`;
    if (!directory.startsWith('/') || !mayMakeSocket(ctx.session.policy, file)) {
      ctx.refused({ what: `bind the Unix socket ${file}`, rule: 'fsWrite' });
      return answer.errno(EACCES);
    }
    const caller = callerStatus(ctx.pid);
    if (caller === null) return answer.errno(EPERM);
    const dir = broker.call({
      syscall: 'fcntl',
      args: [{ fd: found.parent }, F_DUPFD_CLOEXEC, 0],
    }).result;
    if (dir < 0) return answer.fromResult(dir);
    try {
      return answer.fromResult(
        bindIn(broker, fd, dir, Buffer.from(found.name, 'latin1'), caller.umask),
      );
    } finally {
      broker.call({ syscall: 'close', args: [dir] });
    }
  } finally {
    found.close();
  }
}
