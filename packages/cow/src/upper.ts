// Changes in the upper tree, made by the sandbox's reaper (OnBehalf of
// @sandlock/dispatch): in the policy's Landlock domain, which grants it the
// upper and only reads of the workdir, with the sandbox's credentials and no
// capabilities. Every call names one component beneath a directory
// descriptor; the supervisor only copies bytes between descriptors the
// reaper opened.
import type { OnBehalf } from '@sandlock/dispatch/module';
import {
  AT_EACCESS,
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_REMOVEDIR,
  AT_SYMLINK_NOFOLLOW,
  type BrokerArg,
  callAsCaller,
  close,
  ERRNO,
  hostArch,
  openFlags,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_ISGID,
  STATX_BASIC_STATS,
  trySyscall,
} from '@sandlock/sys';
import { type Inside, identify, type Workdir } from './resolve.js';

const O = openFlags(hostArch());
const PATH_FLAGS = O.O_PATH | O.O_CLOEXEC | O.O_NOFOLLOW;
/** A new name, never an existing one or through a symlink. */
const PATH_NEW = O.O_NOFOLLOW | O.O_CLOEXEC;
const { ENOENT, ENOSPC, EPERM, EEXIST } = ERRNO;
const EMPTY = Buffer.from('\0');

export function cName(name: string): Buffer {
  return Buffer.from(`${name}\0`, 'latin1');
}

/** What statx says of a descriptor's object, for a copy. */
export interface Meta {
  mode: number;
  size: number;
  uid: number;
  gid: number;
  /** struct timespec[2] (atime, mtime) for utimensat. */
  times: Buffer;
}

const statxBuffer = Buffer.alloc(256);

export function metaOf(fd: number): Meta | number {
  const result = trySyscall(
    'statx',
    fd,
    EMPTY,
    AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW,
    STATX_BASIC_STATS,
    statxBuffer,
  );
  if (result < 0) return result;
  const times = Buffer.alloc(32);
  // stx_atime at 64, stx_mtime at 112: { s64 tv_sec; u32 tv_nsec; s32 pad }.
  times.writeBigInt64LE(statxBuffer.readBigInt64LE(64), 0);
  times.writeBigInt64LE(BigInt(statxBuffer.readUInt32LE(72)), 8);
  times.writeBigInt64LE(statxBuffer.readBigInt64LE(112), 16);
  times.writeBigInt64LE(BigInt(statxBuffer.readUInt32LE(120)), 24);
  return {
    mode: statxBuffer.readUInt16LE(28),
    size: Number(statxBuffer.readBigUInt64LE(40)),
    uid: statxBuffer.readUInt32LE(20),
    gid: statxBuffer.readUInt32LE(24),
    times,
  };
}

/**
 * A non-blocking call made by the sandbox's reaper (`{ fd }` arguments are
 * descriptors of this process, `{ data }` offsets into `data`): its result,
 * or -errno.
 */
export function reaperCall(
  broker: OnBehalf,
  syscall: string,
  args: readonly BrokerArg[],
  data?: Buffer,
): number {
  return broker.call({ syscall, args, ...(data !== undefined ? { data } : {}) }).result;
}

/** A reaper call with a path component (or more data) first. */
function withName(
  broker: OnBehalf,
  syscall: string,
  build: (data: (bytes: Buffer) => { data: number }) => readonly BrokerArg[],
): number {
  const chunks: Buffer[] = [];
  let size = 0;
  const data = (bytes: Buffer) => {
    const at = size;
    chunks.push(bytes);
    size += bytes.length;
    return { data: at };
  };
  const args = build(data);
  return reaperCall(broker, syscall, args, Buffer.concat(chunks));
}

/** The access check of the kernel on an object (faccessat2 by the reaper: its credentials, no capabilities). */
export function access(broker: OnBehalf, fd: number, mode: number): number {
  return reaperCall(
    broker,
    'faccessat2',
    [{ fd }, { data: 0 }, mode, AT_EMPTY_PATH | AT_EACCESS],
    Buffer.from('\0'),
  );
}

/** May the caller add or remove names in this directory (write and search). */
export function mayChange(broker: OnBehalf, dir: number): number {
  return access(broker, dir, 2 | 1);
}

export function mkdirIn(broker: OnBehalf, dir: number, name: string, mode: number): number {
  return withName(broker, 'mkdirat', (data) => [{ fd: dir }, data(cName(name)), mode]);
}

export function chmodIn(broker: OnBehalf, dir: number, name: string, mode: number): number {
  return withName(broker, 'fchmodat', (data) => [{ fd: dir }, data(cName(name)), mode & 0o7777]);
}

/**
 * chmod of an open file by the reaper (fchmodat2 with AT_EMPTY_PATH): as the
 * sandbox, its ids, groups and no capability, so the kernel refuses it or
 * clears a set-group-ID bit (setattr_should_drop_sgid() in fs/attr.c) as
 * it would for the caller.
 */
export function chmodFd(broker: OnBehalf, fd: number, mode: number): number {
  return reaperCall(
    broker,
    'fchmodat2',
    [{ fd }, { data: 0 }, mode & 0o7777, AT_EMPTY_PATH],
    EMPTY,
  );
}

/** utimensat of `name` in `dir` (not following a symlink); `times` null: both now. */
export function utimesIn(
  broker: OnBehalf,
  dir: number,
  name: string,
  times: Buffer | null,
): number {
  return withName(broker, 'utimensat', (data) => [
    { fd: dir },
    data(cName(name)),
    times === null ? 0 : data(times),
    AT_SYMLINK_NOFOLLOW,
  ]);
}

export function unlinkIn(broker: OnBehalf, dir: number, name: string, flags: number): number {
  return withName(broker, 'unlinkat', (data) => [{ fd: dir }, data(cName(name)), flags]);
}

export function symlinkIn(broker: OnBehalf, target: Buffer, dir: number, name: string): number {
  return withName(broker, 'symlinkat', (data) => [
    data(Buffer.concat([target, Buffer.from([0])])),
    { fd: dir },
    data(cName(name)),
  ]);
}

export function renameIn(
  broker: OnBehalf,
  fromDir: number,
  from: string,
  toDir: number,
  to: string,
  flags: number,
): number {
  return withName(broker, 'renameat2', (data) => [
    { fd: fromDir },
    data(cName(from)),
    { fd: toDir },
    data(cName(to)),
    flags,
  ]);
}

export function linkIn(
  broker: OnBehalf,
  fromDir: number,
  from: string,
  toDir: number,
  to: string,
): number {
  return withName(broker, 'linkat', (data) => [
    { fd: fromDir },
    data(cName(from)),
    { fd: toDir },
    data(cName(to)),
    0,
  ]);
}

export function mknodIn(broker: OnBehalf, dir: number, name: string, mode: number): number {
  return withName(broker, 'mknodat', (data) => [{ fd: dir }, data(cName(name)), mode, 0]);
}

/** Opens one name beneath a directory by the reaper (never following a symlink there). */
export function openIn(
  broker: OnBehalf,
  dir: number,
  name: string,
  flags: number,
  mode = 0,
): number {
  return broker.openat(dir, Buffer.from(name, 'latin1'), flags | O.O_NOFOLLOW, mode);
}

/**
 * Makes and opens the new file `name` in the upper directory `dir` in this
 * thread, its effective capabilities cut to none around the openat: for a
 * caller with this thread's file-system ids and groups and no capability
 * (`Maker.asWorker`), the kernel's checks on the directory and the new
 * file's owner are those of the reaper's open, and the reaper's Landlock
 * domain grants all of the upper; one round trip to the reaper fewer.
 * O_EXCL and O_NOFOLLOW: an existing name is never opened. The mode is
 * then set on the new descriptor, still without capabilities (this
 * process's umask is not the caller's; the kernel clears a set-group-ID
 * bit the caller may not set); not with `byAcl` (takesDefaultAcl: the
 * create gave the mode the caller's would). -errno.
 */
export function createAsCaller(
  dir: number,
  name: string,
  flags: number,
  mode: number,
  byAcl = false,
): number {
  const made = callAsCaller(0n, () => {
    const fd = trySyscall(
      'openat',
      dir,
      cName(name),
      flags | O.O_CREAT | O.O_EXCL | O.O_NOFOLLOW | O.O_CLOEXEC,
      mode,
    );
    if (fd >= 0 && !byAcl) trySyscall('fchmod', fd, mode);
    return fd;
  });
  return made === null ? -EPERM : made.value;
}

/**
 * mkdir of `path` in `dir` (`mode` less this process's umask), then a
 * descriptor of the new directory itself, opened without following a
 * symlink (a name swapped meanwhile is not followed); -errno.
 */
function makeAndOpenDir(dir: number, path: Buffer, mode = 0o700): number {
  const made = trySyscall('mkdirat', dir, path, mode);
  if (made < 0) return made;
  return trySyscall(
    'openat',
    dir,
    path,
    O.O_RDONLY | O.O_DIRECTORY | O.O_NOFOLLOW | O.O_CLOEXEC,
    0,
  );
}

/**
 * mkdir of `name` in the upper directory `dir` in this thread with no
 * capabilities, for a caller that `Maker.asWorker` says has this thread's
 * ids (as createAsCaller), with the mode mkdir(2) gives: `mode`'s
 * permission and sticky bits (vfs_mkdir() in fs/namei.c takes no other),
 * and S_ISGID exactly where inherited from a set-group-ID parent
 * (inode_init_owner() in fs/inode.c). This process's umask is not the
 * caller's: where it took bits, the mode is set on the new directory, by
 * this thread with its own capabilities, so that an inherited S_ISGID a
 * chmod by an owner outside the directory's group would clear
 * (setattr_prepare() in fs/attr.c) stays; a supervisor without CAP_FSETID
 * loses it there. With `byAcl` (takesDefaultAcl), the mkdir gives the mode
 * the caller's would. -errno.
 */
export function mkdirAsCaller(dir: number, name: string, mode: number, byAcl = false): number {
  const asked = mode & 0o1777;
  const made = callAsCaller(0n, () => makeAndOpenDir(dir, cName(name), asked));
  if (made === null) return -EPERM;
  const fd = made.value;
  if (fd < 0) return fd;
  try {
    if (byAcl) return 0;
    const meta = metaOf(fd);
    if (typeof meta === 'number') return meta;
    const target = asked | (meta.mode & S_ISGID);
    if ((meta.mode & 0o7777) === target) return 0;
    return trySyscall('fchmod', fd, target);
  } finally {
    close(fd);
  }
}

/**
 * mkdir of `name` in the upper directory `dir` by the reaper, then its mode
 * made what mkdir(2) gives: `mode`'s permission and sticky bits, and
 * S_ISGID only where inherited from a set-group-ID parent
 * (inode_init_owner() in fs/inode.c). The reaper's chmod (as the caller)
 * sets it, but for an inherited S_ISGID, which a chmod by an owner not in
 * the directory's group would clear (setattr_prepare() in fs/attr.c): that
 * one is set by this process, on the directory only when `owner` owns it
 * (the one the reaper just made). With `byAcl` (takesDefaultAcl), the
 * mkdir gives the mode the caller's would. -errno.
 */
export function mkdirByReaper(
  broker: OnBehalf,
  dir: number,
  name: string,
  mode: number,
  owner: number,
  byAcl = false,
): number {
  if (byAcl) return mkdirIn(broker, dir, name, mode & 0o1777);
  const made = mkdirIn(broker, dir, name, 0o700);
  if (made < 0) return made;
  const fd = trySyscall(
    'openat',
    dir,
    cName(name),
    O.O_RDONLY | O.O_DIRECTORY | O.O_NOFOLLOW | O.O_CLOEXEC,
    0,
  );
  if (fd < 0) return fd;
  try {
    const meta = metaOf(fd);
    if (typeof meta === 'number') return meta;
    const inherited = meta.mode & S_ISGID;
    const target = (mode & 0o1777) | inherited;
    if ((meta.mode & 0o7777) === target) return 0;
    if (inherited === 0) return chmodFd(broker, fd, target);
    if (meta.uid !== owner) return -EPERM;
    return trySyscall('fchmod', fd, target);
  } finally {
    close(fd);
  }
}

/**
 * The upper directory at `rel`, made where missing: each directory on the
 * way copied up from the lower (mode and times kept) by the reaper. An
 * O_PATH descriptor the caller closes, or -errno.
 */
export function upperDir(workdir: Workdir, broker: OnBehalf, rel: readonly string[]): number {
  let upper = trySyscall('fcntl', workdir.upperRoot, 1030 /* F_DUPFD_CLOEXEC */, 0);
  let lower = workdir.lowerRoot;
  const opened: number[] = [];
  try {
    for (const [index, name] of rel.entries()) {
      if (lower >= 0) {
        const next = trySyscall('openat', lower, cName(name), PATH_FLAGS, 0);
        lower = next >= 0 ? next : -1;
        if (next >= 0) opened.push(next);
      }
      let next = trySyscall('openat', upper, cName(name), PATH_FLAGS | O.O_DIRECTORY, 0);
      if (next === -ENOENT && lower >= 0) {
        const acts = reaperActs(broker);
        if (acts < 0) return acts;
        const made = mirrorDir(upper, name, lower);
        if (made < 0 && made !== -EEXIST) return made;
        const source = identify(lower);
        if (typeof source !== 'number')
          remember(workdir, source.id, rel.slice(0, index + 1).join('/'));
        next = trySyscall('openat', upper, cName(name), PATH_FLAGS | O.O_DIRECTORY, 0);
      } else if (next === -ENOENT) {
        const made = mkdirIn(broker, upper, name, 0o700);
        if (made < 0 && made !== -EEXIST) return made;
        chmodIn(broker, upper, name, 0o755);
        next = trySyscall('openat', upper, cName(name), PATH_FLAGS | O.O_DIRECTORY, 0);
      }
      if (next < 0) return next;
      close(upper);
      upper = next;
    }
    const result = upper;
    upper = -1;
    return result;
  } finally {
    if (upper >= 0) close(upper);
    for (const fd of opened) close(fd);
  }
}

/**
 * 0 where the reaper acts for this call, else its -errno: a copy-up this
 * process makes is refused to a caller the reaper refuses (a narrowed
 * caller: brokerOf in call.ts), as the reaper's own calls would be. One
 * round trip, made only where something is copied.
 */
function reaperActs(broker: OnBehalf): number {
  return Math.min(reaperCall(broker, 'getpid', []), 0);
}

/**
 * Copies the lower directory `lower` up as `name` in the upper directory
 * `dir` by this process, with the lower's owner, group, mode, extended
 * attributes and times (see keepAttributes). What the sandbox then makes
 * in it, the reaper makes, and the kernel's checks there are those of the
 * lower directory. -errno; -EEXIST when the name was taken meanwhile (then
 * left as it is).
 */
function mirrorDir(dir: number, name: string, lower: number): number {
  const meta = metaOf(lower);
  if (typeof meta === 'number') return meta;
  const path = cName(name);
  const fd = makeAndOpenDir(dir, path);
  if (fd < 0) return fd;
  let result: number;
  try {
    result = keepAttributes(fd, lower, meta);
  } finally {
    close(fd);
  }
  // Not left half made (the supervisor's, 0700): the next copy-up makes it again.
  if (result < 0) trySyscall('unlinkat', dir, path, AT_REMOVEDIR);
  return result;
}

/**
 * Gives `copy`, an object this process just made in the upper, the lower
 * object's owner, group, mode, extended attributes and times, as overlayfs
 * copies up with its mounter's credentials (ovl_copy_up_metadata() in
 * fs/overlayfs/copy_up.c): the kernel's checks on the copy are then those
 * on the lower object. Under a supervisor without CAP_CHOWN the owner
 * (then the group) it may not give is left its own, and attributes it may
 * not set are left out (setXattrs). -errno.
 */
function keepAttributes(copy: number, lower: number, meta: Meta): number {
  const type = meta.mode & S_IFMT;
  // chown first: it clears set-user-ID and set-group-ID bits (chown(2)) the chmod then sets.
  let result = keepOwner(copy, meta);
  // A symlink's mode is always 0777 (fchmodat2 refuses to change it).
  if (result >= 0 && type !== S_IFLNK) {
    result = trySyscall('fchmodat2', copy, EMPTY, meta.mode & 0o7777, AT_EMPTY_PATH);
  }
  if (result >= 0) {
    const attributes = lowerXattrs(lower);
    if (typeof attributes === 'number') return attributes;
    if (attributes.size > 0) result = setXattrsAt(copy, attributes);
  }
  if (result >= 0) {
    result = trySyscall('utimensat', copy, EMPTY, meta.times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
  }
  return result;
}

/**
 * Gives the object of `fd` (any descriptor, O_PATH too) the owner and group
 * of `meta`; without CAP_CHOWN, the group alone where this process may give
 * it (owner and member), else neither. An id the upper's file system
 * cannot hold (a tmpfs of a user namespace: EOVERFLOW, in notify_change()
 * in fs/attr.c) is one it may not give. -errno.
 */
export function keepOwner(fd: number, meta: Meta): number {
  const result = trySyscall('fchownat', fd, EMPTY, meta.uid, meta.gid, AT_EMPTY_PATH);
  if (!mayNotGive(result)) return result;
  const group = trySyscall('fchownat', fd, EMPTY, -1, meta.gid, AT_EMPTY_PATH);
  return mayNotGive(group) ? 0 : group;
}

function mayNotGive(result: number): boolean {
  return result === -EPERM || result === -ERRNO.EOVERFLOW || result === -ERRNO.EINVAL;
}

/**
 * Whether new entries of the upper directory `dir` take a default ACL
 * (system.posix_acl_default, copied up with the directory): then the
 * kernel applies no umask to their mode, the ACL masks it
 * (posix_acl_create() in fs/posix_acl.c), and the create in the upper,
 * given the caller's mode, makes what the caller's would. -errno.
 */
export function takesDefaultAcl(dir: number): boolean | number {
  const size = trySyscall('getxattr', viaProc(dir), cName('system.posix_acl_default'), null, 0);
  if (size === -ERRNO.ENODATA || size === -ERRNO.EOPNOTSUPP) return false;
  return size < 0 ? size : true;
}

/** The path by which the object of a descriptor of this process is reached, itself even where it is a symlink. */
function viaProc(fd: number): Buffer {
  return Buffer.from(`/proc/thread-self/fd/${fd}\0`);
}

/**
 * The extended attributes of the lower object (an O_PATH descriptor),
 * POSIX ACLs among them; those this process may not read (EACCES, EPERM)
 * are left out, as the caller could not copy them either. -errno.
 */
function lowerXattrs(lower: number): Map<string, Buffer> | number {
  const out = new Map<string, Buffer>();
  const path = viaProc(lower);
  const size = trySyscall('listxattr', path, null, 0);
  if (size === -ERRNO.EOPNOTSUPP || size === 0) return out;
  if (size < 0) return size;
  const names = Buffer.alloc(size);
  const listed = trySyscall('listxattr', path, names, size);
  if (listed < 0) return listed;
  for (const name of names.subarray(0, listed).toString('latin1').split('\0')) {
    if (name === '') continue;
    const key = cName(name);
    const length = trySyscall('getxattr', path, key, null, 0);
    if (length === -ERRNO.ENODATA || length === -ERRNO.EACCES || length === -EPERM) continue;
    if (length < 0) return length;
    const value = Buffer.alloc(Math.max(length, 1));
    const got = trySyscall('getxattr', path, key, value, length);
    if (got < 0) return got;
    out.set(name, value.subarray(0, got));
  }
  return out;
}

/** setXattrs on any object (through /proc/thread-self/fd: O_PATH descriptors too). */
function setXattrsAt(copy: number, attributes: ReadonlyMap<string, Buffer>): number {
  const path = viaProc(copy);
  for (const [name, value] of attributes) {
    const result = trySyscall(
      'setxattr',
      path,
      cName(name),
      value.length === 0 ? Buffer.alloc(1) : value,
      value.length,
      0,
    );
    if (result < 0 && result !== -EPERM && result !== -ERRNO.EOPNOTSUPP) return result;
  }
  return 0;
}

/** Bounded: a sandbox copying up more only loses descriptor metadata calls on the oldest. */
const MAX_COPIES = 100_000;

function remember(workdir: Workdir, id: string, rel: string): void {
  if (workdir.copies.size >= MAX_COPIES) workdir.copies.clear();
  workdir.copies.set(id, rel);
}

/** Copies every byte of `from` into `to` (both descriptors of this process). */
function copyBytes(from: number, to: number, size: number): number {
  let left = size;
  while (left > 0) {
    const done = trySyscall('copy_file_range', from, null, to, null, Math.min(left, 1 << 30), 0);
    if (done < 0) {
      if (done === -ERRNO.EXDEV || done === -ERRNO.EINVAL || done === -ERRNO.EOPNOTSUPP) {
        return copyByRead(from, to);
      }
      return done;
    }
    if (done === 0) break;
    left -= done;
  }
  return 0;
}

function copyByRead(from: number, to: number): number {
  const buffer = Buffer.alloc(1 << 16);
  for (;;) {
    const got = trySyscall('read', from, buffer, buffer.length);
    if (got < 0) return got;
    if (got === 0) return 0;
    let at = 0;
    while (at < got) {
      const put = trySyscall('write', to, buffer.subarray(at, got), got - at);
      if (put < 0) return put;
      at += put;
    }
  }
}

/**
 * The upper directory that holds (or will hold) the object `inside`, with
 * the object itself in the upper layer: a directory made there, a lower
 * file copied up. A descriptor of this process, or -errno.
 */
export function upperHolderOf(workdir: Workdir, broker: OnBehalf, inside: Inside): number {
  if (inside.kind === 'directory') {
    const made = upperDir(workdir, broker, inside.rel);
    if (made < 0) return made;
    close(made);
  } else if (inside.side === 'lower') {
    const copy = copyUp(workdir, broker, inside);
    if (typeof copy === 'number') return copy;
    close(copy.fd);
    return copy.dir;
  }
  return upperDir(workdir, broker, inside.rel.slice(0, -1));
}

/**
 * Copies the object at `inside` (in the lower) up into the upper, at the
 * same place: a file with its bytes (none with `empty`, for O_TRUNC), a
 * symlink with its text, a FIFO, a directory with its mode (not its
 * entries: see copyTreeUp). Returns an O_PATH descriptor of the copy in the
 * upper and of its directory there, or -errno (ENOSPC past maxDisk).
 */
export function copyUp(
  workdir: Workdir,
  broker: OnBehalf,
  inside: Inside,
  empty = false,
): { fd: number; dir: number } | number {
  const dir = upperDir(workdir, broker, inside.rel.slice(0, -1));
  if (dir < 0) return dir;
  const acts = reaperActs(broker);
  const made = acts < 0 ? acts : copyInto(workdir, inside.lower, dir, inside.name, empty);
  if (made < 0) {
    close(dir);
    return made;
  }
  const fd = trySyscall('openat', dir, cName(inside.name), PATH_FLAGS, 0);
  if (fd < 0) {
    close(dir);
    return fd;
  }
  const source = identify(inside.lower);
  if (typeof source !== 'number') remember(workdir, source.id, inside.path);
  return { fd, dir };
}

/**
 * Makes `name` in the upper directory `dir` a copy of the lower object
 * `lower` by this process, as overlayfs copies up with its mounter's
 * credentials: the object, its bytes, then the lower's owner, group, mode,
 * extended attributes and times (keepAttributes). The handlers have made
 * the kernel's checks of the caller's call on the lower object first.
 * -errno; a copy that fails half way is removed.
 */
function copyInto(
  workdir: Workdir,
  lower: number,
  dir: number,
  name: string,
  empty: boolean,
): number {
  const meta = metaOf(lower);
  if (typeof meta === 'number') return meta;
  const type = meta.mode & S_IFMT;
  const layer = workdir.layer;
  const path = cName(name);
  let reserved = 0;
  let copy: number;
  if (type === S_IFREG) {
    reserved = empty ? 0 : meta.size;
    if (!layer.reserve(reserved)) return -ENOSPC;
    copy = trySyscall('openat', dir, path, O.O_WRONLY | O.O_CREAT | O.O_EXCL | PATH_NEW, 0o600);
    if (copy >= 0 && !empty) {
      const copied = copyFrom(lower, copy, meta.size);
      if (copied < 0) {
        close(copy);
        copy = copied;
        trySyscall('unlinkat', dir, path, 0);
      }
    }
  } else if (type === S_IFLNK) {
    const text = Buffer.alloc(4096);
    const length = trySyscall('readlinkat', lower, EMPTY, text, text.length);
    if (length < 0) return length;
    reserved = length;
    if (!layer.reserve(reserved)) return -ENOSPC;
    text[length] = 0;
    copy = trySyscall('symlinkat', text.subarray(0, length + 1), dir, path);
    if (copy >= 0) copy = trySyscall('openat', dir, path, PATH_FLAGS, 0);
  } else if (type === S_IFDIR) {
    copy = makeAndOpenDir(dir, path);
  } else if (type === S_IFIFO) {
    copy = trySyscall('mknodat', dir, path, S_IFIFO | 0o600, 0);
    if (copy >= 0) copy = trySyscall('openat', dir, path, PATH_FLAGS, 0);
  } else {
    // Devices and sockets are not copied: the sandbox may not make them.
    return -EPERM;
  }
  if (copy < 0) {
    layer.release(reserved);
    return copy;
  }
  let result: number;
  try {
    result = keepAttributes(copy, lower, meta);
  } finally {
    close(copy);
  }
  if (result < 0) {
    trySyscall('unlinkat', dir, path, type === S_IFDIR ? AT_REMOVEDIR : 0);
    layer.release(reserved);
  }
  return result;
}

/** Copies the bytes of the lower file `lower` (an O_PATH descriptor) into `to`. -errno. */
function copyFrom(lower: number, to: number, size: number): number {
  // Reopened through its descriptor: the object the walk found, not a name.
  const from = trySyscall('openat', AT_FDCWD, viaProc(lower), O.O_RDONLY | O.O_CLOEXEC, 0);
  if (from < 0) return from;
  try {
    return copyBytes(from, to, size);
  } finally {
    close(from);
  }
}

/**
 * Copies a directory of the merged view up whole (for a rename): every entry
 * the view shows beneath it, recursively, so that the upper directory holds
 * the directory's whole content and the lower's can be hidden under it.
 * `upperFd` is the upper directory (made already), `lowerFd` the lower's.
 */
export function copyTreeUp(
  workdir: Workdir,
  broker: OnBehalf,
  rel: string,
  upperFd: number,
  lowerFd: number,
): number {
  if (lowerFd < 0) return 0;
  const names = listNames(lowerFd);
  if (typeof names === 'number') return names;
  for (const name of names) {
    const childRel = rel === '' ? name : `${rel}/${name}`;
    if (workdir.layer.hidden(childRel)) continue;
    const lowerChild = trySyscall('openat', lowerFd, cName(name), PATH_FLAGS, 0);
    if (lowerChild < 0) continue;
    try {
      let upperChild = trySyscall('openat', upperFd, cName(name), PATH_FLAGS, 0);
      if (upperChild === -ENOENT) {
        const acts = reaperActs(broker);
        if (acts < 0) return acts;
        const made = copyInto(workdir, lowerChild, upperFd, name, false);
        if (made < 0) return made;
        upperChild = trySyscall('openat', upperFd, cName(name), PATH_FLAGS, 0);
      }
      if (upperChild < 0) return upperChild;
      try {
        const upperMode = identify(upperChild);
        const lowerMode = identify(lowerChild);
        if (
          typeof upperMode !== 'number' &&
          typeof lowerMode !== 'number' &&
          upperMode.mode === S_IFDIR &&
          lowerMode.mode === S_IFDIR
        ) {
          const done = copyTreeUp(workdir, broker, childRel, upperChild, lowerChild);
          if (done < 0) return done;
        }
      } finally {
        close(upperChild);
      }
    } finally {
      close(lowerChild);
    }
  }
  return 0;
}

/** The names in a directory (O_PATH descriptor), without `.` and `..`; or -errno. */
export function listNames(dirFd: number): string[] | number {
  // Reopened through its descriptor: no search permission on it needed.
  const fd = trySyscall(
    'openat',
    AT_FDCWD,
    Buffer.from(`/proc/thread-self/fd/${dirFd}\0`),
    O.O_RDONLY | O.O_DIRECTORY | O.O_CLOEXEC,
    0,
  );
  if (fd < 0) return fd;
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const names: string[] = [];
    for (;;) {
      const length = trySyscall('getdents64', fd, buffer, buffer.length);
      if (length < 0) return length;
      if (length === 0) return names;
      let at = 0;
      while (at < length) {
        const reclen = buffer.readUInt16LE(at + 16);
        const end = buffer.indexOf(0, at + 19);
        const name = buffer.toString(
          'latin1',
          at + 19,
          end < 0 || end > at + reclen ? at + reclen : end,
        );
        if (name !== '.' && name !== '..') names.push(name);
        at += reclen;
      }
    }
  } finally {
    close(fd);
  }
}

/** The names the merged view shows in a directory (its fds in each tree, -1 where absent). */
export function mergedNames(
  workdir: Workdir,
  rel: string,
  upper: number,
  lower: number,
): Set<string> | number {
  const names = new Set<string>();
  if (upper >= 0) {
    const listed = listNames(upper);
    if (typeof listed === 'number') return listed;
    for (const name of listed) names.add(name);
  }
  if (lower >= 0 && !(rel !== '' && workdir.layer.hidden(rel) && upper < 0)) {
    const listed = listNames(lower);
    if (typeof listed === 'number') return listed;
    for (const name of listed) {
      if (!workdir.layer.hidden(rel === '' ? name : `${rel}/${name}`)) names.add(name);
    }
  }
  return names;
}
