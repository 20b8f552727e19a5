// The calls that change names or metadata inside the workdir: unlink,
// rmdir, mkdir, mknod (FIFOs), symlink, link, rename, truncate, chmod,
// chown, utimes. Each is checked as the kernel checks it in the merged view
// (ENOENT, EEXIST, ENOTEMPTY, EISDIR, ENOTDIR, the caller's permission on
// the directories, by the reaper), then made in the upper by the reaper,
// and deletions recorded in the layer's log. A call with one path inside
// the workdir and one outside fails with EXDEV, as across two mounts.

import { readFileSync } from 'node:fs';
import type { OnBehalf } from '@sandlock/dispatch/module';
import { type Answer, answer } from '@sandlock/dispatch/module';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_REMOVEDIR,
  AT_SYMLINK_FOLLOW,
  AT_SYMLINK_NOFOLLOW,
  CAP_FOWNER,
  close,
  ERRNO,
  F_DUPFD_CLOEXEC,
  hostArch,
  openFlags,
  R_OK,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
  RENAME_WHITEOUT,
  S_IFDIR,
  S_IFIFO,
  S_IFMT,
  S_IFREG,
  S_ISGID,
  S_ISUID,
  S_ISVTX,
  trySyscall,
  W_OK,
} from '@sandlock/sys';
import {
  brokerOf,
  type Ctx,
  copyPath,
  int,
  lastDot,
  makerOf,
  resolve,
  type Session,
  sessionOf,
  uint,
  umaskOf,
} from '../call.js';
import { type Inside, identify, type Resolved } from '../resolve.js';
import { answerOutside } from '../through-layer.js';
import {
  access,
  chmodIn,
  cName,
  copyTreeUp,
  copyUp,
  linkIn,
  mayChange,
  mergedNames,
  metaOf,
  mkdirAsCaller,
  mkdirByReaper,
  mknodIn,
  openIn,
  reaperCall,
  renameIn,
  symlinkIn,
  takesDefaultAcl,
  unlinkIn,
  upperDir,
  upperHolderOf,
  utimesIn,
} from '../upper.js';
import { onDescriptorMetadata } from './fd-meta.js';
import { onOutsidePath, onPinned } from './outside-meta.js';

const O = openFlags(hostArch());
const PATH_FLAGS = O.O_PATH | O.O_CLOEXEC | O.O_NOFOLLOW;
/** The flags fchmodat2, fchownat and utimensat take (any other is EINVAL). */
const AT_FLAGS = AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH;

/**
 * Runs `inside` on a path inside the workdir; a path outside continues (the
 * kernel, whose Landlock domain of the sandbox writes nothing in the
 * workdir) unless `outside` answers it. An empty path is ENOENT, as the
 * kernel answers it (getname()): let through, the kernel would read the
 * string again, which another thread may have filled meanwhile.
 */
function withPath(
  ctx: Ctx,
  dirfd: number,
  address: bigint,
  follow: boolean,
  inside: (r: Inside, session: Session, broker: OnBehalf, path: Buffer) => Answer,
  create = false,
  outside: (
    errno: number,
    path: Buffer,
    session: Session,
    pinned?: number,
  ) => Answer = answer.continue,
): Answer {
  const path = copyPath(ctx, address);
  if (path.length === 0) return answer.errno('ENOENT');
  const session = sessionOf(ctx);
  const resolved = resolve(ctx, session, path, dirfd, follow, create);
  if (resolved.where === 'outside') {
    return answerOutside(ctx, session, resolved, follow, (errno, pinned) =>
      outside(errno, path, session, pinned),
    );
  }
  try {
    return inside(resolved, session, brokerOf(ctx), path);
  } finally {
    resolved.close();
  }
}

function closeResolved(resolved: Resolved): void {
  if (resolved.where === 'outside') resolved.walked.close();
  else resolved.close();
}

/** The directory holding the last name, where its permission is checked: the upper's copy, else the lower's. */
function parentOf(r: Inside): number {
  const parent = r.parent!;
  return parent.upper >= 0 ? parent.upper : parent.lower;
}

/**
 * check_sticky() of fs/namei.c for the name `r` the caller removes or
 * renames: in a sticky directory only the name's owner, the directory's
 * owner or a caller with CAP_FOWNER may. The kernel never sees a removal
 * of a lower name (the layer records it) nor a rename onto one. 0 or
 * -errno; EPERM when the caller's ids cannot be read.
 */
function stickyAllows(ctx: Ctx, r: Inside): number {
  const dir = metaOf(parentOf(r));
  if (typeof dir === 'number') return dir;
  if ((dir.mode & S_ISVTX) === 0) return 0;
  const object = metaOf(r.fd);
  if (typeof object === 'number') return object;
  const maker = makerOf(ctx);
  if (maker.fsuid === null) return -ERRNO.EPERM;
  if (maker.fsuid === object.uid || maker.fsuid === dir.uid) return 0;
  return (maker.capEff & (1n << BigInt(CAP_FOWNER))) !== 0n ? 0 : -ERRNO.EPERM;
}

/**
 * may_linkat() of fs/namei.c under fs.protected_hardlinks: a file the
 * caller does not own is linked only when it is a regular file, neither
 * set-user-ID nor executable set-group-ID, that the caller may read and
 * write, or with CAP_FOWNER. The kernel never sees the link of a lower
 * file (its copy in the layer is linked). 0 or -errno.
 */
function mayLink(ctx: Ctx, broker: OnBehalf, r: Inside): number {
  let setting = '1';
  try {
    setting = readFileSync('/proc/sys/fs/protected_hardlinks', 'latin1').trim();
  } catch {
    // Unreadable: protected, the kernel's default.
  }
  if (setting === '0') return 0;
  const object = metaOf(r.fd);
  if (typeof object === 'number') return object;
  const maker = makerOf(ctx);
  if (maker.fsuid === null) return -ERRNO.EPERM;
  if (maker.fsuid === object.uid) return 0;
  if ((maker.capEff & (1n << BigInt(CAP_FOWNER))) !== 0n) return 0;
  const setId =
    (object.mode & S_ISUID) !== 0 || (object.mode & (S_ISGID | 0o010)) === (S_ISGID | 0o010);
  if ((object.mode & S_IFMT) !== S_IFREG || setId) return -ERRNO.EPERM;
  return access(broker, r.fd, R_OK | W_OK) < 0 ? -ERRNO.EPERM : 0;
}

/** Whether the lower has an entry at `r` (visible or hidden by the layer). */
function lowerHas(r: Inside): boolean {
  const parent = r.parent;
  if (parent === null || parent.lower < 0) return false;
  const fd = trySyscall('openat', parent.lower, cName(r.name), PATH_FLAGS, 0);
  if (fd < 0) return false;
  close(fd);
  return true;
}

/** Whether the lower's entry at `r` is one the merged view shows (so a removal must hide it). */
function lowerVisible(session: Session, r: Inside): boolean {
  return lowerHas(r) && !session.workdir.layer.hidden(r.path);
}

function merged(session: Session, r: Inside): Set<string> | number {
  return mergedNames(session.workdir, r.path, r.upper, r.lower);
}

function changed(session: Session): void {
  session.changed = true;
}

export function onUnlink(ctx: Ctx): Answer {
  const a = ctx.args;
  let dirfd = AT_FDCWD;
  let address = a[0]!;
  let flags = 0;
  if (ctx.syscall === 'rmdir') flags = AT_REMOVEDIR;
  if (ctx.syscall === 'unlinkat') {
    dirfd = int(a[0]);
    address = a[1]!;
    flags = uint(a[2]);
    if ((flags & ~AT_REMOVEDIR) !== 0) return answer.errno('EINVAL');
  }
  const rmdir = (flags & AT_REMOVEDIR) !== 0;
  return withPath(
    ctx,
    dirfd,
    address,
    false,
    (r, session, broker, path) => {
      if (r.errno !== 0 && !r.lastMissing) return answer.errno(r.errno);
      // do_rmdir() and do_unlinkat() in fs/namei.c: the last name's kind first.
      const dot = lastDot(path);
      if (dot !== null)
        return answer.errno(rmdir ? (dot === '.' ? 'EINVAL' : 'ENOTEMPTY') : 'EISDIR');
      if (r.errno !== 0) return answer.errno(r.errno);
      if (!rmdir && path[path.length - 1] === 0x2f) {
        return answer.errno(r.kind === 'directory' ? 'EISDIR' : 'ENOTDIR');
      }
      if (r.rel.length === 0) return answer.errno(rmdir ? 'EBUSY' : 'EISDIR');
      const directory = r.kind === 'directory';
      if (rmdir && !directory) return answer.errno('ENOTDIR');
      if (!rmdir && directory) return answer.errno('EISDIR');
      if (directory) {
        const names = merged(session, r);
        if (typeof names === 'number') return answer.errno(-names);
        if (names.size > 0) return answer.errno('ENOTEMPTY');
      }
      const may = mayChange(broker, parentOf(r));
      if (may < 0) return answer.errno(-may);
      const sticky = stickyAllows(ctx, r);
      if (sticky < 0) return answer.errno(-sticky);
      // The directory holding it becomes one of the upper (a changed directory).
      const dir = upperDir(session.workdir, broker, r.rel.slice(0, -1));
      if (dir < 0) return answer.errno(-dir);
      try {
        if (r.side === 'upper') {
          const removed = unlinkIn(broker, dir, r.name, flags & AT_REMOVEDIR);
          if (removed < 0) return answer.errno(-removed);
        }
        if (lowerVisible(session, r)) session.workdir.layer.recordDelete(r.path);
      } finally {
        close(dir);
      }
      changed(session);
      return answer.value(0);
    },
    true,
  );
}

/** Creates a name in the upper: the checks shared by mkdir, mknod and symlink. */
function create(
  ctx: Ctx,
  dirfd: number,
  address: bigint,
  make: (dir: number, name: string, broker: OnBehalf) => number,
  opaque: boolean,
): Answer {
  return withPath(
    ctx,
    dirfd,
    address,
    false,
    (r, session, broker, path) => {
      if (r.errno === 0) return answer.errno('EEXIST');
      if (!r.lastMissing) return answer.errno(r.errno);
      // Only a directory is made by a name with a trailing slash (filename_create()).
      if (!opaque && path[path.length - 1] === 0x2f) return answer.errno('ENOENT');
      // In a directory the upper has, `make` is the kernel's own check of
      // it (may_create() in fs/namei.c); one only in the lower is checked
      // before its copy is made.
      if (r.parent!.upper < 0) {
        const may = mayChange(broker, parentOf(r));
        if (may < 0) return answer.errno(-may);
      }
      const dir = upperDir(session.workdir, broker, r.rel.slice(0, -1));
      if (dir < 0) return answer.errno(-dir);
      try {
        const made = make(dir, r.name, broker);
        if (made < 0) return answer.errno(-made);
        // A directory made where the lower has a (deleted) entry shows nothing of it.
        if (opaque && lowerHas(r)) session.workdir.layer.recordOpaque(r.path);
      } finally {
        close(dir);
      }
      changed(session);
      return answer.value(0);
    },
    true,
  );
}

export function onMkdir(ctx: Ctx): Answer {
  const a = ctx.args;
  const at = ctx.syscall === 'mkdirat';
  const maker = makerOf(ctx);
  const asked = uint(at ? a[2] : a[1]) & 0o7777;
  return create(
    ctx,
    at ? int(a[0]) : AT_FDCWD,
    at ? a[1]! : a[0]!,
    (dir, name, broker) => {
      const byAcl = takesDefaultAcl(dir);
      if (typeof byAcl === 'number') return byAcl;
      const mode = byAcl ? asked : asked & ~maker.umask;
      if (maker.asWorker) return mkdirAsCaller(dir, name, mode, byAcl);
      const owner = ctx.session.policy.callerIds?.fsuid ?? process.geteuid?.() ?? -1;
      return mkdirByReaper(broker, dir, name, mode, owner, byAcl);
    },
    true,
  );
}

export function onMknod(ctx: Ctx): Answer {
  const a = ctx.args;
  const at = ctx.syscall === 'mknodat';
  const mode = uint(at ? a[2] : a[1]);
  const type = mode & S_IFMT;
  // Only FIFOs (and regular files) are made in a layer; devices need
  // CAP_MKNOD, which a sandbox never has; sockets are bound, not made.
  if (type !== S_IFIFO && type !== S_IFREG && type !== 0) {
    return withPath(ctx, at ? int(a[0]) : AT_FDCWD, at ? a[1]! : a[0]!, false, () =>
      answer.errno('EPERM'),
    );
  }
  const perms = mode & 0o7777 & ~umaskOf(ctx.pid);
  return create(
    ctx,
    at ? int(a[0]) : AT_FDCWD,
    at ? a[1]! : a[0]!,
    (dir, name, broker) => {
      if (type === S_IFIFO) {
        const made = mknodIn(broker, dir, name, S_IFIFO | 0o600);
        return made < 0 ? made : chmodIn(broker, dir, name, perms);
      }
      const fd = openIn(broker, dir, name, O.O_WRONLY | O.O_CREAT | O.O_EXCL, 0o600);
      if (fd < 0) return fd;
      close(fd);
      return chmodIn(broker, dir, name, perms);
    },
    false,
  );
}

export function onSymlink(ctx: Ctx): Answer {
  const a = ctx.args;
  const at = ctx.syscall === 'symlinkat';
  const target = copyPath(ctx, a[0]!);
  if (target.length === 0) return answer.errno('ENOENT');
  return create(
    ctx,
    at ? int(a[1]) : AT_FDCWD,
    at ? a[2]! : a[1]!,
    (dir, name, broker) => {
      const layer = sessionOf(ctx).workdir.layer;
      if (!layer.reserve(target.length)) return -ERRNO.ENOSPC;
      const made = symlinkIn(broker, target, dir, name);
      if (made < 0) layer.release(target.length);
      return made;
    },
    false,
  );
}

/**
 * Makes the object of `r` whole in the upper: a file copied up, a directory
 * copied up with everything the merged view shows beneath it. Returns the
 * upper directory holding it (the caller closes it), or -errno.
 */
function wholeInUpper(session: Session, broker: OnBehalf, r: Inside): number {
  const workdir = session.workdir;
  if (r.kind === 'directory') {
    const upper = upperDir(workdir, broker, r.rel);
    if (upper < 0) return upper;
    try {
      const copied = copyTreeUp(workdir, broker, r.path, upper, r.lower);
      if (copied < 0) return copied;
    } finally {
      close(upper);
    }
  } else if (r.side === 'lower') {
    const copy = copyUp(workdir, broker, r);
    if (typeof copy === 'number') return copy;
    close(copy.fd);
    close(copy.dir);
  }
  return upperDir(workdir, broker, r.rel.slice(0, -1));
}

function sameObject(a: Inside, b: Inside): boolean {
  const first = identify(a.fd);
  const second = identify(b.fd);
  return typeof first !== 'number' && typeof second !== 'number' && first.id === second.id;
}

/** rename, renameat, renameat2. */
export function onRename(ctx: Ctx): Answer {
  const a = ctx.args;
  let oldDirfd = AT_FDCWD;
  let oldAddress = a[0]!;
  let newDirfd = AT_FDCWD;
  let newAddress = a[1]!;
  let flags = 0;
  if (ctx.syscall !== 'rename') {
    oldDirfd = int(a[0]);
    oldAddress = a[1]!;
    newDirfd = int(a[2]);
    newAddress = a[3]!;
    flags = ctx.syscall === 'renameat2' ? uint(a[4]) : 0;
  }
  if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) !== 0) {
    return answer.errno('EINVAL');
  }
  if ((flags & RENAME_EXCHANGE) !== 0 && (flags & (RENAME_NOREPLACE | RENAME_WHITEOUT)) !== 0) {
    return answer.errno('EINVAL');
  }
  const oldPath = copyPath(ctx, oldAddress);
  const newPath = copyPath(ctx, newAddress);
  if (oldPath.length === 0 || newPath.length === 0) return answer.continue();
  const session = sessionOf(ctx);
  // Neither last name is followed, even with a trailing slash (checked below).
  const from = resolve(ctx, session, oldPath, oldDirfd, false, true);
  let to: Resolved | null = null;
  try {
    to = resolve(ctx, session, newPath, newDirfd, false, true);
    if (from.where === 'outside' && to.where === 'outside') return answer.continue();
    if (from.where === 'outside' || to.where === 'outside') {
      // One end in the workdir, one outside: as across two mounts.
      if (from.where === 'outside' && from.walked.errno !== 0) return answer.continue();
      return answer.errno('EXDEV');
    }
    // RENAME_WHITEOUT makes a character device: CAP_MKNOD, which a sandbox lacks.
    if ((flags & RENAME_WHITEOUT) !== 0) return answer.errno('EPERM');
    return renameInside(ctx, session, brokerOf(ctx), from, to, flags, [oldPath, newPath]);
  } finally {
    closeResolved(from);
    if (to !== null) closeResolved(to);
  }
}

function renameInside(
  ctx: Ctx,
  session: Session,
  broker: OnBehalf,
  from: Inside,
  to: Inside,
  flags: number,
  paths: readonly [Buffer, Buffer],
): Answer {
  const exchange = (flags & RENAME_EXCHANGE) !== 0;
  // do_renameat2() in fs/namei.c: both directories, then the last names'
  // kinds, then the source, then the target.
  if (from.errno !== 0 && !from.lastMissing) return answer.errno(from.errno);
  if (to.errno !== 0 && !to.lastMissing) return answer.errno(to.errno);
  if (lastDot(paths[0]) !== null) return answer.errno('EBUSY');
  if (lastDot(paths[1]) !== null) {
    return answer.errno((flags & RENAME_NOREPLACE) !== 0 ? 'EEXIST' : 'EBUSY');
  }
  if (from.errno !== 0) return answer.errno(from.errno);
  if (from.rel.length === 0 || to.rel.length === 0) return answer.errno('EBUSY');
  const targetExists = !to.lastMissing;
  if ((flags & RENAME_NOREPLACE) !== 0 && targetExists) return answer.errno('EEXIST');
  if (exchange && !targetExists) return answer.errno('ENOENT');
  const fromPath = from.path;
  const toPath = to.path;
  const fromDir = from.kind === 'directory';
  const toDir = to.kind === 'directory';
  const slashed = (path: Buffer) => path[path.length - 1] === 0x2f;
  if (exchange && !toDir && slashed(paths[1])) return answer.errno('ENOTDIR');
  if (!fromDir && (slashed(paths[0]) || slashed(paths[1]))) return answer.errno('ENOTDIR');
  // lock_rename()'s trap: the source above the target, or the target above the source.
  if (toPath.startsWith(`${fromPath}/`)) return answer.errno('EINVAL');
  if (fromPath.startsWith(`${toPath}/`)) return answer.errno(exchange ? 'EINVAL' : 'ENOTEMPTY');
  if (fromPath === toPath) return answer.value(0);
  // hard links of one file: nothing (rename(2))
  if (targetExists && !exchange && sameObject(from, to)) return answer.value(0);
  // vfs_rename(): may_delete() of the source, then may_create() or
  // may_delete() of the target, each the directory's permission before
  // the target's kind; ENOTEMPTY is the file system's, last.
  for (const r of [from, to]) {
    const may = mayChange(broker, parentOf(r));
    if (may < 0) return answer.errno(-may);
  }
  // may_delete()'s check_sticky(), also before the kinds.
  for (const r of targetExists ? [from, to] : [from]) {
    const sticky = stickyAllows(ctx, r);
    if (sticky < 0) return answer.errno(-sticky);
  }
  if (targetExists && !exchange) {
    if (fromDir && !toDir) return answer.errno('ENOTDIR');
    if (!fromDir && toDir) return answer.errno('EISDIR');
  }
  // vfs_rename(): a directory that changes parent needs write permission on
  // itself (its `..` changes), and so does an exchanged target directory.
  if (from.rel.slice(0, -1).join('/') !== to.rel.slice(0, -1).join('/')) {
    for (const r of exchange ? [from, to] : [from]) {
      if (r.kind !== 'directory') continue;
      const writable = access(broker, r.fd, W_OK);
      if (writable < 0) return answer.errno(-writable);
    }
  }
  if (targetExists && !exchange && toDir) {
    const names = merged(session, to);
    if (typeof names === 'number') return answer.errno(-names);
    if (names.size > 0) return answer.errno('ENOTEMPTY');
  }
  const fromLower = lowerVisible(session, from);
  const toLower = lowerHas(to);
  const oldDir = wholeInUpper(session, broker, from);
  if (oldDir < 0) return answer.errno(-oldDir);
  let newDir = -1;
  try {
    if (exchange) {
      const exchanged = wholeInUpper(session, broker, to);
      if (exchanged < 0) return answer.errno(-exchanged);
      close(exchanged);
    }
    newDir = upperDir(session.workdir, broker, to.rel.slice(0, -1));
    if (newDir < 0) return answer.errno(-newDir);
    // An empty directory of the lower replaced: nothing of it must show beneath.
    const renamed = renameIn(broker, oldDir, from.name, newDir, to.name, flags & RENAME_EXCHANGE);
    if (renamed < 0) return answer.errno(-renamed);
    const layer = session.workdir.layer;
    if (exchange) {
      if (toDir) layer.recordOpaque(fromPath);
      if (fromDir) layer.recordOpaque(toPath);
    } else {
      if (fromLower) layer.recordDelete(fromPath);
      if (fromDir && toLower) layer.recordOpaque(toPath);
    }
  } finally {
    close(oldDir);
    if (newDir >= 0) close(newDir);
  }
  changed(session);
  return answer.value(0);
}

/** link, linkat. */
export function onLink(ctx: Ctx): Answer {
  const a = ctx.args;
  const at = ctx.syscall === 'linkat';
  const flags = at ? uint(a[4]) : 0;
  if ((flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) !== 0) return answer.errno('EINVAL');
  const oldPath = copyPath(ctx, at ? a[1]! : a[0]!);
  const newPath = copyPath(ctx, at ? a[3]! : a[1]!);
  if (at && oldPath.length === 0 && (flags & AT_EMPTY_PATH) !== 0 && newPath.length > 0) {
    return linkDescriptor(ctx, int(a[0]), int(a[2]), newPath);
  }
  if (oldPath.length === 0 || newPath.length === 0) return answer.continue();
  const session = sessionOf(ctx);
  const from = resolve(
    ctx,
    session,
    oldPath,
    at ? int(a[0]) : AT_FDCWD,
    (flags & AT_SYMLINK_FOLLOW) !== 0,
  );
  let to: Resolved | null = null;
  try {
    to = resolve(ctx, session, newPath, at ? int(a[2]) : AT_FDCWD, false, true);
    if (from.where === 'outside' && to.where === 'outside') return answer.continue();
    if (from.where === 'outside' || to.where === 'outside') {
      if (from.where === 'outside' && from.walked.errno !== 0) return answer.continue();
      return answer.errno('EXDEV');
    }
    if (from.errno !== 0) return answer.errno(from.errno);
    if (to.errno === 0) return answer.errno('EEXIST');
    if (!to.lastMissing) return answer.errno(to.errno);
    if (from.kind === 'directory') return answer.errno('EPERM');
    const broker = brokerOf(ctx);
    const may = mayChange(broker, parentOf(to));
    if (may < 0) return answer.errno(-may);
    const linkable = mayLink(ctx, broker, from);
    if (linkable < 0) return answer.errno(-linkable);
    const oldDir = wholeInUpper(session, broker, from);
    if (oldDir < 0) return answer.errno(-oldDir);
    let newDir = -1;
    try {
      newDir = upperDir(session.workdir, broker, to.rel.slice(0, -1));
      if (newDir < 0) return answer.errno(-newDir);
      const linked = linkIn(broker, oldDir, from.name, newDir, to.name);
      if (linked < 0) return answer.errno(-linked);
    } finally {
      close(oldDir);
      if (newDir >= 0) close(newDir);
    }
    changed(session);
    return answer.value(0);
  } finally {
    closeResolved(from);
    if (to !== null) closeResolved(to);
  }
}

/**
 * linkat(fd, "", newdirfd, newpath, AT_EMPTY_PATH). Its source is a file
 * the caller holds; one of the layer's (opened by the reaper: a tmpfile, a
 * file of the upper) is linked by the reaper from the very open file
 * description, so that the kernel's checks are its own: the opener's
 * credentials against the linker's (LOOKUP_LINKAT_EMPTY in do_linkat(),
 * fs/namei.c), a tmpfile made with O_EXCL (ENOENT), the same mount. The
 * rest is the kernel's. (linkat of /proc/self/fd/N with AT_SYMLINK_FOLLOW
 * is EXDEV for a tmpfile in the sandbox's Landlock domain, measured on
 * 6.18 with the file and the new name in one directory: onLink's EXDEV for
 * a path from outside the workdir is the kernel's answer there.)
 */
function linkDescriptor(ctx: Ctx, oldDirfd: number, newDirfd: number, newPath: Buffer): Answer {
  const session = sessionOf(ctx);
  const to = resolve(ctx, session, newPath, newDirfd, false, true);
  try {
    if (to.where === 'outside') return answer.continue();
    const source = ctx.getFd(oldDirfd);
    return linkTmpfile(ctx, session, source, to);
  } finally {
    closeResolved(to);
  }
}

/** Links the file `source` (this process's descriptor, closed here) at `to` in the layer, by the reaper. */
function linkTmpfile(ctx: Ctx, session: Session, source: number, to: Inside): Answer {
  try {
    if (to.errno === 0) return answer.errno('EEXIST');
    if (!to.lastMissing) return answer.errno(to.errno);
    const found = identify(source);
    if (typeof found === 'number') return answer.errno(-found);
    if (found.mode === S_IFDIR) return answer.errno('EPERM');
    const broker = brokerOf(ctx);
    const may = mayChange(broker, parentOf(to));
    if (may < 0) return answer.errno(-may);
    const dir = upperDir(session.workdir, broker, to.rel.slice(0, -1));
    if (dir < 0) return answer.errno(-dir);
    try {
      const linked = withEmptyName(broker, source, dir, to.name);
      if (linked < 0) return answer.errno(-linked);
    } finally {
      close(dir);
    }
    changed(session);
    return answer.value(0);
  } finally {
    close(source);
  }
}

function withEmptyName(broker: OnBehalf, source: number, dir: number, name: string): number {
  const data = Buffer.concat([Buffer.from([0]), cName(name)]);
  return reaperCall(
    broker,
    'linkat',
    [{ fd: source }, { data: 0 }, { fd: dir }, { data: 1 }, AT_EMPTY_PATH],
    data,
  );
}

/** truncate(path, length). */
export function onTruncate(ctx: Ctx): Answer {
  const a = ctx.args;
  const length = BigInt.asIntN(64, a[1] ?? 0n);
  return withPath(ctx, AT_FDCWD, a[0]!, true, (r, session, broker) => {
    if (r.errno !== 0) return answer.errno(r.errno);
    if (r.kind === 'directory') return answer.errno('EISDIR');
    if (length < 0n) return answer.errno('EINVAL');
    const allowed = access(broker, r.fd, W_OK);
    if (allowed < 0) return answer.errno(-allowed);
    let dir = -1;
    if (r.side === 'lower') {
      const copy = copyUp(session.workdir, broker, r, length === 0n);
      if (typeof copy === 'number') return answer.errno(-copy);
      close(copy.fd);
      dir = copy.dir;
    }
    try {
      const fd = openIn(broker, dir >= 0 ? dir : r.parent!.upper, r.name, O.O_WRONLY);
      if (fd < 0) return answer.errno(-fd);
      try {
        const grown = Number(length);
        if (!session.workdir.layer.reserve(Math.max(0, grown - sizeOf(fd)))) {
          return answer.errno('ENOSPC');
        }
        return answer.fromResult(trySyscall('ftruncate', fd, length));
      } finally {
        close(fd);
      }
    } finally {
      if (dir >= 0) close(dir);
      changed(session);
    }
  });
}

function sizeOf(fd: number): number {
  const buffer = Buffer.alloc(256);
  if (trySyscall('statx', fd, Buffer.from('\0'), AT_EMPTY_PATH, 0x200, buffer) < 0) return 0;
  return Number(buffer.readBigUInt64LE(40));
}

/**
 * The metadata calls by path (chmod, chown, utimes and their *at forms): the
 * object copied up (a directory without its entries), then changed there by
 * the reaper. Calls on a descriptor act on the object it holds: an
 * injected one is of the upper already.
 */
export function onMetadata(ctx: Ctx): Answer {
  const byDescriptor = onDescriptorMetadata(ctx);
  if (byDescriptor !== null) return byDescriptor;
  const a = ctx.args;
  let dirfd = AT_FDCWD;
  let address: bigint;
  let follow = true;
  let apply: (broker: OnBehalf, dir: number, name: string) => number;
  /** The same change on a pinned object outside the workdir. */
  let pinned: (fd: number) => number;
  /** chmod of a symlink itself: the kernel says EOPNOTSUPP (fchmodat2(2)). */
  let symlinkChmod = false;
  switch (ctx.syscall) {
    case 'chmod':
    case 'fchmodat':
    case 'fchmodat2': {
      const at = ctx.syscall !== 'chmod';
      if (at) dirfd = int(a[0]);
      address = at ? a[1]! : a[0]!;
      const mode = uint(at ? a[2] : a[1]) & 0o7777;
      if (ctx.syscall === 'fchmodat2') {
        const flags = uint(a[3]);
        if ((flags & ~AT_FLAGS) !== 0) return answer.errno('EINVAL');
        follow = (flags & AT_SYMLINK_NOFOLLOW) === 0;
      }
      apply = (broker, dir, name) => chmodIn(broker, dir, name, mode);
      pinned = onPinned.chmod(mode);
      symlinkChmod = true;
      break;
    }
    case 'chown':
    case 'lchown':
    case 'fchownat': {
      const at = ctx.syscall === 'fchownat';
      if (at) dirfd = int(a[0]);
      address = at ? a[1]! : a[0]!;
      const uid = uint(at ? a[2] : a[1]);
      const gid = uint(at ? a[3] : a[2]);
      const flags = at ? uint(a[4]) : 0;
      if ((flags & ~AT_FLAGS) !== 0) return answer.errno('EINVAL');
      follow = ctx.syscall === 'chown' || (at && (flags & AT_SYMLINK_NOFOLLOW) === 0);
      apply = (broker, dir, name) =>
        brokerCallNamed(broker, 'fchownat', dir, name, [uid, gid, AT_SYMLINK_NOFOLLOW]);
      pinned = onPinned.chown(uid, gid);
      break;
    }
    case 'utimensat': {
      dirfd = int(a[0]);
      address = a[1]!;
      const flags = uint(a[3]);
      if ((flags & ~AT_FLAGS) !== 0) return answer.errno('EINVAL');
      follow = (flags & AT_SYMLINK_NOFOLLOW) === 0;
      const times = a[2] === 0n ? null : Buffer.from(ctx.read(a[2]!, 32));
      apply = (broker, dir, name) => utimesIn(broker, dir, name, times);
      pinned = onPinned.utimes(times);
      break;
    }
    case 'utime':
    case 'utimes':
    case 'futimesat': {
      const at = ctx.syscall === 'futimesat';
      if (at) dirfd = int(a[0]);
      address = at ? a[1]! : a[0]!;
      const pointer = at ? a[2]! : a[1]!;
      let times: Buffer | null = null;
      if (pointer !== 0n) {
        times = Buffer.alloc(32);
        if (ctx.syscall === 'utime') {
          const buf = ctx.read(pointer, 16); // struct utimbuf { actime; modtime; }
          times.writeBigInt64LE(buf.readBigInt64LE(0), 0);
          times.writeBigInt64LE(buf.readBigInt64LE(8), 16);
        } else {
          const tv = ctx.read(pointer, 32); // struct timeval[2]
          for (const i of [0, 1]) {
            const usec = tv.readBigInt64LE(16 * i + 8);
            if (usec < 0n || usec >= 1_000_000n) return answer.errno('EINVAL');
            times.writeBigInt64LE(tv.readBigInt64LE(16 * i), 16 * i);
            times.writeBigInt64LE(usec * 1000n, 16 * i + 8);
          }
        }
      }
      apply = (broker, dir, name) => utimesIn(broker, dir, name, times);
      pinned = onPinned.utimes(times);
      break;
    }
    default:
      return answer.errno('ENOSYS');
  }
  return withPath(
    ctx,
    dirfd,
    address,
    follow,
    (r, session, broker) => {
      if (r.errno !== 0) return answer.errno(r.errno);
      // The workdir itself: changed on the upper's root (which a commit
      // does not carry over: the layer holds what is inside the workdir).
      if (r.rel.length === 0) {
        const root = trySyscall('fcntl', session.workdir.upperRoot, F_DUPFD_CLOEXEC, 0);
        if (root < 0) return answer.errno(-root);
        try {
          changed(session);
          return answer.fromResult(apply(broker, root, '.'));
        } finally {
          close(root);
        }
      }
      if (symlinkChmod && r.kind === 'symlink') return answer.errno('EOPNOTSUPP');
      const dir = upperHolderOf(session.workdir, broker, r);
      if (dir < 0) return answer.errno(-dir);
      try {
        changed(session);
        return answer.fromResult(apply(broker, dir, r.name));
      } finally {
        close(dir);
      }
    },
    false,
    (errno, path, session, found) =>
      onOutsidePath(
        ctx,
        session,
        { path, dirfd, follow },
        errno,
        {
          inLayer: apply,
          onPinned: pinned,
          ...(symlinkChmod ? { onSymlink: 'EOPNOTSUPP' as const } : {}),
        },
        found,
      ),
  );
}

function brokerCallNamed(
  broker: OnBehalf,
  syscall: string,
  dir: number,
  name: string,
  rest: readonly number[],
): number {
  return reaperCall(broker, syscall, [{ fd: dir }, { data: 0 }, ...rest], cName(name));
}
