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
 * bit the caller may not set). -errno.
 */
export function createAsCaller(dir: number, name: string, flags: number, mode: number): number {
  const made = callAsCaller(0n, () => {
    const fd = trySyscall(
      'openat',
      dir,
      cName(name),
      flags | O.O_CREAT | O.O_EXCL | O.O_NOFOLLOW | O.O_CLOEXEC,
      mode,
    );
    if (fd >= 0) trySyscall('fchmod', fd, mode);
    return fd;
  });
  return made === null ? -EPERM : made.value;
}

/**
 * mkdir of `path` in `dir`, 0700, then a descriptor of the new directory
 * itself, opened without following a symlink (a name swapped meanwhile is
 * not followed); -errno.
 */
function makeAndOpenDir(dir: number, path: Buffer): number {
  const made = trySyscall('mkdirat', dir, path, 0o700);
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
 * mkdir of `name` in the upper directory `dir` with exactly `mode`, in this
 * thread with no capabilities, for a caller that `Maker.asWorker` says has
 * this thread's ids (as createAsCaller): made 0700 (this process's umask
 * is not the caller's), then its mode set through a descriptor of the new
 * directory itself, opened without following a symlink. -errno.
 */
export function mkdirAsCaller(dir: number, name: string, mode: number): number {
  const made = callAsCaller(0n, () => {
    const path = cName(name);
    const fd = makeAndOpenDir(dir, path);
    if (fd < 0) return fd;
    try {
      return trySyscall('fchmod', fd, mode & 0o7777);
    } finally {
      close(fd);
    }
  });
  return made === null ? -EPERM : made.value;
}

/**
 * mkdir of `name` in the upper directory `dir` by the reaper, then its mode
 * made what mkdir(2) gives: `mode`'s permission and sticky bits, and
 * S_ISGID only where inherited from a set-group-ID parent
 * (inode_init_owner() in fs/inode.c). The reaper's chmod (as the caller)
 * sets it, but for an inherited S_ISGID, which a chmod by an owner not in
 * the directory's group would clear (setattr_prepare() in fs/attr.c): that
 * one is set by this process, on the directory only when `owner` owns it
 * (the one the reaper just made). -errno.
 */
export function mkdirByReaper(
  broker: OnBehalf,
  dir: number,
  name: string,
  mode: number,
  owner: number,
): number {
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
      if (next === -ENOENT && workdir.mirrorsOwners && lower >= 0) {
        const made = mirrorDir(upper, name, lower);
        if (made < 0 && made !== -EEXIST) return made;
        const source = identify(lower);
        if (typeof source !== 'number')
          remember(workdir, source.id, rel.slice(0, index + 1).join('/'));
        next = trySyscall('openat', upper, cName(name), PATH_FLAGS | O.O_DIRECTORY, 0);
      } else if (next === -ENOENT) {
        const meta = lower >= 0 ? metaOf(lower) : null;
        const mode = meta !== null && typeof meta !== 'number' ? meta.mode & 0o7777 : 0o755;
        const made = mkdirIn(broker, upper, name, 0o700);
        if (made < 0 && made !== -EEXIST) return made;
        chmodIn(broker, upper, name, mode);
        const source = lower >= 0 ? identify(lower) : null;
        if (source !== null && typeof source !== 'number') {
          remember(workdir, source.id, rel.slice(0, index + 1).join('/'));
        }
        if (meta !== null && typeof meta !== 'number') utimesIn(broker, upper, name, meta.times);
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
 * Copies the lower directory `lower` up as `name` in the upper directory
 * `dir` by this process, with the lower's owner, group, mode and times (as
 * overlayfs copies up with the mounter's credentials): for a sandbox of
 * other ids than the supervisor's (Workdir.mirrorsOwners), whose reaper
 * could neither make it in a directory of another owner nor give it the
 * lower's owner. What the sandbox then makes in it, the reaper makes, and
 * the kernel's checks there are those of the lower directory. -errno;
 * -EEXIST when the name was taken meanwhile (then left as it is).
 */
function mirrorDir(dir: number, name: string, lower: number): number {
  const meta = metaOf(lower);
  if (typeof meta === 'number') return meta;
  const path = cName(name);
  const fd = makeAndOpenDir(dir, path);
  if (fd < 0) return fd;
  let result: number;
  try {
    // chown first: it may clear the set-group-ID bit the chmod then sets (chown(2)).
    result = trySyscall('fchown', fd, meta.uid, meta.gid);
    if (result >= 0) result = trySyscall('fchmod', fd, meta.mode & 0o7777);
    if (result >= 0) result = trySyscall('utimensat', fd, null, meta.times, 0);
  } finally {
    close(fd);
  }
  // Not left half made (the supervisor's, 0700): the next copy-up makes it again.
  if (result < 0) trySyscall('unlinkat', dir, path, AT_REMOVEDIR);
  return result;
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
  const made = copyInto(
    workdir,
    broker,
    inside.lower,
    inside.parent?.lower ?? -1,
    dir,
    inside.name,
    empty,
  );
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

/** Makes `name` in the upper directory `dir` a copy of the lower object `lower` (named `name` in `lowerDir`). */
function copyInto(
  workdir: Workdir,
  broker: OnBehalf,
  lower: number,
  lowerDir: number,
  dir: number,
  name: string,
  empty: boolean,
): number {
  const meta = metaOf(lower);
  if (typeof meta === 'number') return meta;
  const type = meta.mode & S_IFMT;
  const perms = meta.mode & 0o7777;
  const layer = workdir.layer;
  // For a sandbox of other ids (Workdir.mirrorsOwners) this process makes
  // the copy with the lower's owner, as mirrorDir does: a copy the reaper
  // made would be the sandbox's, which could then chmod a file of root's,
  // remove it from a sticky directory, and have the commit give it away.
  const maker = workdir.mirrorsOwners ? SUPERVISOR : reaperMaker(broker);
  let result: number;
  if (type === S_IFREG) {
    const bytes = empty ? 0 : meta.size;
    if (!layer.reserve(bytes)) return -ENOSPC;
    const source = empty ? -1 : maker.read(lower, lowerDir, name);
    if (source < 0 && !empty) {
      layer.release(bytes);
      return source;
    }
    const target = maker.create(dir, name);
    if (target < 0) {
      if (source >= 0) close(source);
      layer.release(bytes);
      return target;
    }
    try {
      result = empty ? 0 : copyBytes(source, target, meta.size);
    } finally {
      if (source >= 0) close(source);
      close(target);
    }
    if (result < 0) {
      maker.unlink(dir, name);
      layer.release(bytes);
      return result;
    }
  } else if (type === S_IFLNK) {
    const text = Buffer.alloc(4096);
    const length = trySyscall('readlinkat', lower, EMPTY, text, text.length);
    if (length < 0) return length;
    if (!layer.reserve(length)) return -ENOSPC;
    result = maker.symlink(text.subarray(0, length), dir, name);
    if (result < 0) return result;
  } else if (type === S_IFDIR) {
    result = maker.mkdir(dir, name);
    if (result < 0) return result;
  } else if (type === S_IFIFO) {
    result = maker.mkfifo(dir, name);
    if (result < 0) return result;
  } else {
    // Devices and sockets are not copied: the sandbox may not make them.
    return -EPERM;
  }
  if (workdir.mirrorsOwners) {
    const owned = ownAsLower(dir, name, meta, type === S_IFLNK);
    if (owned < 0) maker.unlink(dir, name, type === S_IFDIR ? AT_REMOVEDIR : 0);
    return owned;
  }
  if (type !== S_IFLNK) chmodIn(broker, dir, name, perms);
  utimesIn(broker, dir, name, meta.times);
  return 0;
}

/** Who makes a copy-up's object in the upper. */
interface CopyMaker {
  /** The lower file `lower` (O_PATH), named `name` in `lowerDir`, opened to be read. */
  read(lower: number, lowerDir: number, name: string): number;
  create(dir: number, name: string): number;
  symlink(target: Buffer, dir: number, name: string): number;
  mkdir(dir: number, name: string): number;
  mkfifo(dir: number, name: string): number;
  unlink(dir: number, name: string, flags?: number): number;
}

function reaperMaker(broker: OnBehalf): CopyMaker {
  return {
    read: (_lower, lowerDir, name) => openIn(broker, lowerDir, name, O.O_RDONLY),
    create: (dir, name) => openIn(broker, dir, name, O.O_WRONLY | O.O_CREAT | O.O_EXCL, 0o600),
    symlink: (target, dir, name) => symlinkIn(broker, target, dir, name),
    mkdir: (dir, name) => mkdirIn(broker, dir, name, 0o700),
    mkfifo: (dir, name) => mknodIn(broker, dir, name, S_IFIFO | 0o600),
    unlink: (dir, name, flags = 0) => unlinkIn(broker, dir, name, flags),
  };
}

// A copy with the lower's owner and mode is read by no one the lower's
// would refuse: the file is read by this process, as overlayfs reads it
// with the mounter's credentials (a file the user may rename but not read).
const SUPERVISOR: CopyMaker = {
  read: (lower) =>
    trySyscall(
      'openat',
      AT_FDCWD,
      Buffer.from(`/proc/thread-self/fd/${lower}\0`),
      O.O_RDONLY | O.O_CLOEXEC,
      0,
    ),
  create: (dir, name) =>
    trySyscall(
      'openat',
      dir,
      cName(name),
      O.O_WRONLY | O.O_CREAT | O.O_EXCL | O.O_NOFOLLOW | O.O_CLOEXEC,
      0o600,
    ),
  symlink: (target, dir, name) =>
    trySyscall('symlinkat', Buffer.concat([target, Buffer.from('\0')]), dir, cName(name)),
  mkdir: (dir, name) => trySyscall('mkdirat', dir, cName(name), 0o700),
  mkfifo: (dir, name) => trySyscall('mknodat', dir, cName(name), S_IFIFO | 0o600, 0),
  unlink: (dir, name, flags = 0) => trySyscall('unlinkat', dir, cName(name), flags),
};

/** `name` in `dir` given the owner, group, mode (not a symlink's) and times of `meta`. 0 or -errno. */
function ownAsLower(dir: number, name: string, meta: Meta, symlink: boolean): number {
  const path = cName(name);
  // chown first: it clears the set-user-ID and set-group-ID bits the chmod then sets (chown(2)).
  let result = trySyscall('fchownat', dir, path, meta.uid, meta.gid, AT_SYMLINK_NOFOLLOW);
  if (result >= 0 && !symlink) result = trySyscall('fchmodat', dir, path, meta.mode & 0o7777);
  if (result >= 0) result = trySyscall('utimensat', dir, path, meta.times, AT_SYMLINK_NOFOLLOW);
  return result;
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
        const made = copyInto(workdir, broker, lowerChild, lowerFd, upperFd, name, false);
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
