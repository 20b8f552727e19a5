// Operations on a directory tree through descriptors, never through path
// strings a third party could redirect: every lookup beneath a root is one
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
// (openat2(2): a symlink anywhere on the way, or `..` above the root, is
// refused by the kernel), and every change is a *at call on the parent's
// descriptor with one name, which never follows a symlink in that name
// (unlinkat, renameat2, mkdirat, symlinkat, mknodat and linkat without
// AT_SYMLINK_FOLLOW act on the link itself).

import { type BigIntStats, fstatSync, readdirSync } from 'node:fs';
import {
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  close,
  ERRNO,
  encodeOpenHow,
  hostArch,
  OPEN_HOW_SIZE,
  openFlags,
  RESOLVE_BENEATH,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  SysError,
  trySyscall,
} from '@sandlock/sys';

export const O = openFlags(hostArch());
const BENEATH = BigInt(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);

function cString(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'utf8');
}

function check(name: string, result: number, path: string): number {
  if (result < 0) throw new SysError(name, -result, path);
  return result;
}

/** openat2 of `rel` beneath `root` ('' is the root itself); -errno on failure. */
export function tryOpenBeneath(root: number, rel: string, flags: number, mode = 0): number {
  const how = encodeOpenHow({
    flags: BigInt(flags | O.O_CLOEXEC),
    mode: BigInt(flags & O.O_CREAT ? mode : 0),
    resolve: BENEATH,
  });
  return trySyscall('openat2', root, cString(rel === '' ? '.' : rel), how, OPEN_HOW_SIZE);
}

export function openBeneath(root: number, rel: string, flags: number, mode = 0): number {
  return check('openat2', tryOpenBeneath(root, rel, flags, mode), rel === '' ? '.' : rel);
}

const HELD = /^\/proc\/self\/fd\/(\d+)$/;

/**
 * The name of a directory this process holds only by a descriptor (a tmpfs
 * in a mount namespace of its own): `/proc/self/fd/N`, which every thread
 * of the process can open, and which {@link openDirectoryNoSymlinks} opens
 * from the descriptor itself.
 */
export function descriptorPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

function heldDescriptor(path: string): number | null {
  const found = HELD.exec(path);
  return found === null ? null : Number(found[1]);
}

/**
 * A directory named by an absolute path that must contain no symlink (a
 * canonical path: one that now holds a symlink was changed by someone).
 */
export function openDirectoryNoSymlinks(path: string, flags = O.O_PATH): number {
  const held = heldDescriptor(path);
  if (held !== null) {
    return check(
      'openat',
      trySyscall('openat', held, cString('.'), flags | O.O_DIRECTORY | O.O_CLOEXEC, 0),
      path,
    );
  }
  const how = encodeOpenHow({
    flags: BigInt(flags | O.O_DIRECTORY | O.O_CLOEXEC),
    resolve: BigInt(RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS),
  });
  return check('openat2', trySyscall('openat2', AT_FDCWD, cString(path), how, OPEN_HOW_SIZE), path);
}

export function mkdirAt(dir: number, name: string, mode: number): number {
  return trySyscall('mkdirat', dir, cString(name), mode);
}

export function unlinkAt(dir: number, name: string, flags: number): number {
  return trySyscall('unlinkat', dir, cString(name), flags);
}

export function renameAt(
  fromDir: number,
  from: string,
  toDir: number,
  to: string,
  flags = 0,
): number {
  return trySyscall('renameat2', fromDir, cString(from), toDir, cString(to), flags);
}

export function symlinkAt(target: string, dir: number, name: string): number {
  return trySyscall('symlinkat', cString(target), dir, cString(name));
}

export function mknodAt(dir: number, name: string, mode: number): number {
  return trySyscall('mknodat', dir, cString(name), mode, 0);
}

export function linkAt(fromDir: number, from: string, toDir: number, to: string): number {
  return trySyscall('linkat', fromDir, cString(from), toDir, cString(to), 0);
}

export function fsyncFd(fd: number): number {
  return trySyscall('fsync', fd);
}

/** Flushes the whole file system `fd` is on (syncfs(2)). */
export function syncfs(fd: number): number {
  return trySyscall('syncfs', fd);
}

function timespecs(atimeNs: bigint, mtimeNs: bigint): Buffer {
  const times = Buffer.alloc(32);
  times.writeBigInt64LE(atimeNs / 1_000_000_000n, 0);
  times.writeBigInt64LE(atimeNs % 1_000_000_000n, 8);
  times.writeBigInt64LE(mtimeNs / 1_000_000_000n, 16);
  times.writeBigInt64LE(mtimeNs % 1_000_000_000n, 24);
  return times;
}

/** The times of an open file (utimensat with a null path acts on the descriptor). */
export function setTimesFd(fd: number, atimeNs: bigint, mtimeNs: bigint): number {
  return trySyscall('utimensat', fd, null, timespecs(atimeNs, mtimeNs), 0);
}

/** The times of a symlink itself. */
export function setLinkTimes(dir: number, name: string, atimeNs: bigint, mtimeNs: bigint): number {
  return trySyscall(
    'utimensat',
    dir,
    cString(name),
    timespecs(atimeNs, mtimeNs),
    AT_SYMLINK_NOFOLLOW,
  );
}

/** The owner of a symlink itself. */
export function chownLink(dir: number, name: string, uid: number, gid: number): number {
  return trySyscall('fchownat', dir, cString(name), uid, gid, AT_SYMLINK_NOFOLLOW);
}

export function fchownFd(fd: number, uid: number, gid: number): number {
  return trySyscall('fchown', fd, uid, gid);
}

export function fchmodFd(fd: number, mode: number): number {
  return trySyscall('fchmod', fd, mode);
}

export function stat(fd: number): BigIntStats {
  return fstatSync(fd, { bigint: true });
}

/** The names in a directory open as `fd` (an O_PATH descriptor will do: its /proc link is the directory). */
export function namesIn(fd: number): string[] {
  return readdirSync(`/proc/self/fd/${fd}`);
}

/** Runs `body` with a descriptor, closed afterwards. */
export function withFd<T>(fd: number, body: (fd: number) => T): T {
  try {
    return body(fd);
  } finally {
    close(fd);
  }
}

/** The target of a symlink open as an O_PATH|O_NOFOLLOW descriptor (readlinkat with an empty path). */
export function readLinkFd(fd: number): string {
  const buffer = Buffer.alloc(4096);
  const length = check('readlinkat', trySyscall('readlinkat', fd, cString(''), buffer, 4096), '');
  return buffer.subarray(0, length).toString('utf8');
}

/** lstat of `rel` beneath `root` without following any symlink; null when nothing is there as a tree path. */
export function lstatBeneath(root: number, rel: string): BigIntStats | null {
  const fd = tryOpenBeneath(root, rel, O.O_PATH | O.O_NOFOLLOW);
  if (fd < 0) {
    // ENOENT, ENOTDIR (a file on the way), ELOOP (a symlink on the way): no such tree path.
    if (fd === -ERRNO.ENOENT || fd === -ERRNO.ENOTDIR || fd === -ERRNO.ELOOP) return null;
    throw new SysError('openat2', -fd, rel);
  }
  return withFd(fd, stat);
}

/** The extended attributes of an open file or directory, by name (none where the file system has none). */
export function xattrsOf(fd: number): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const size = trySyscall('flistxattr', fd, null, 0);
  if (size === -ERRNO.EOPNOTSUPP || size === 0) return out;
  check('flistxattr', size, '');
  const names = Buffer.alloc(size);
  const listed = check('flistxattr', trySyscall('flistxattr', fd, names, size), '');
  for (const name of names.subarray(0, listed).toString('latin1').split('\0')) {
    if (name === '') continue;
    const key = Buffer.from(`${name}\0`, 'latin1');
    const length = trySyscall('fgetxattr', fd, key, null, 0);
    if (length === -ERRNO.ENODATA) continue; // removed meanwhile
    check('fgetxattr', length, name);
    const value = Buffer.alloc(Math.max(length, 1));
    const got = check('fgetxattr', trySyscall('fgetxattr', fd, key, value, length), name);
    out.set(name, value.subarray(0, got));
  }
  return out;
}

/**
 * Sets extended attributes on an open file: -errno of the first that fails,
 * or 0. Those the user may not set (trusted.*, security.* without the
 * capability: EPERM) or the file system does not take (EOPNOTSUPP) are left
 * out, as `cp -a` leaves them.
 */
export function setXattrs(fd: number, attributes: ReadonlyMap<string, Buffer>): number {
  for (const [name, value] of attributes) {
    const result = trySyscall(
      'fsetxattr',
      fd,
      Buffer.from(`${name}\0`, 'latin1'),
      value.length === 0 ? Buffer.alloc(1) : value,
      value.length,
      0,
    );
    if (result < 0 && result !== -ERRNO.EPERM && result !== -ERRNO.EOPNOTSUPP) return result;
  }
  return 0;
}
