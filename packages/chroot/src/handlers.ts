// The path-taking calls of a sandbox inside an emulated chroot. Each path is
// walked inside the root (root.ts); what it names is then looked at here on
// the descriptor the walk pinned (stat, statx, readlink, statfs), or
// opened, changed, made or removed by the sandbox's reaper on the
// descriptors of the object or of the directory holding it: the reaper is
// in the sandbox's Landlock domain, which grants nothing outside the root
// but the mounts. A name is never looked up again by a string: the reaper's
// calls take the one last name beneath the pinned directory and do not
// follow a symlink there (O_NOFOLLOW; unlinkat, renameat2, linkat without
// AT_SYMLINK_FOLLOW, mkdirat, symlinkat, mknodat never do), or act on the
// pinned object itself (AT_EMPTY_PATH).
import { fstatSync, readlinkSync } from 'node:fs';
import { type Answer, answer, isRetargetedOpen } from '@sandlock/dispatch/module';
import {
  AT_EACCESS,
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_REMOVEDIR,
  AT_SYMLINK_FOLLOW,
  AT_SYMLINK_NOFOLLOW,
  close,
  ERRNO,
  hostArch,
  openFlags,
  RESOLVE_BENEATH,
  RESOLVE_CACHED,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  RESOLVE_NO_XDEV,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  structStatSize,
  trySyscall,
} from '@sandlock/sys';
import {
  brokerOf,
  type Ctx,
  copyPath,
  int,
  narrowedErrno,
  reaper,
  resolve,
  type Session,
  sessionOf,
  threadGroup,
  uint,
  umaskOf,
  writable,
} from './call.js';
import { narrowedCaller, narrowedOpen } from './narrowed-open.js';
import {
  openOwnDescriptor,
  ownControllingTerminalOf,
  ownDescriptorOf,
  ownTerminalOf,
} from './own-fd.js';
import { throughProcRoot } from './proc-root.js';
import type { Found } from './root.js';

const O = openFlags(hostArch());
const O_ACCMODE = 3;
const STAT_SIZE = structStatSize(hostArch());
const STATFS_SIZE = 120;
const AT_STATX_SYNC_TYPE = 0x6000;
const EMPTY = Buffer.from('\0');
const OPEN_HOW_SIZE_VER0 = 24n;
/** Flags that say how to find or make the file, not how to open the object found. */
const LOOKUP_FLAGS = O.O_CREAT | O.O_EXCL | O.O_NOFOLLOW | O.O_PATH;
/** An open for reading only, of what is there (a script's interpreter opening it, script-opens.ts). */
const READ_ONLY_OPEN = O_ACCMODE | O.O_CREAT | O.O_TRUNC | O.O_DIRECTORY | O.__O_TMPFILE;
/** Opens that change the file system as they open (made by a narrowed caller only through the reaper: refused). */
const CHANGING_OPEN = O.O_CREAT | O.O_TRUNC | O.__O_TMPFILE;
const { EROFS, EXDEV, EBUSY, EEXIST, ENOENT, EINVAL, ENOTDIR } = ERRNO;
const RESOLVE_ALL =
  RESOLVE_NO_XDEV |
  RESOLVE_NO_MAGICLINKS |
  RESOLVE_NO_SYMLINKS |
  RESOLVE_BENEATH |
  RESOLVE_IN_ROOT |
  RESOLVE_CACHED;

type Done = (r: Found) => Answer;

/**
 * Walks a path argument and runs `done` on what it found. A path into a
 * procfs mount is the kernel's: the string is absolute and names the mount
 * as written (the procfs modules then see it, and Landlock bounds it), or
 * it is refused.
 */
export function at(
  ctx: Ctx,
  address: bigint,
  dirfd: number,
  followLast: boolean,
  done: Done,
  create = false,
  handlesProc = false,
  resolveFlags = 0,
): Answer {
  return atPath(
    ctx,
    copyPath(ctx, address),
    dirfd,
    followLast,
    done,
    create,
    handlesProc,
    resolveFlags,
  );
}

/** {@link at} of a path already copied. */
function atPath(
  ctx: Ctx,
  path: Buffer,
  dirfd: number,
  followLast: boolean,
  done: Done,
  create = false,
  handlesProc = false,
  resolveFlags = 0,
): Answer {
  const session = sessionOf(ctx);
  if (path.length === 0) return answer.errno(ENOENT);
  const r = resolve(ctx, session, path, dirfd, { followLast, create, resolve: resolveFlags });
  try {
    if (r.proc) {
      // The kernel's walk of a /proc path starts at the caller's real root, not at a dirfd.
      if ((resolveFlags & (RESOLVE_BENEATH | RESOLVE_IN_ROOT)) !== 0) return answer.errno(EXDEV);
      const inRoot = throughProcRoot(ctx, session, path, followLast);
      if (typeof inRoot === 'number') return answer.errno(-inRoot);
      if (inRoot !== null) {
        if ((resolveFlags & (RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS)) !== 0) {
          return answer.errno(ERRNO.ELOOP);
        }
        return atPath(ctx, inRoot, AT_FDCWD, followLast, done, create, handlesProc, resolveFlags);
      }
      if (!handlesProc) return procPath(session, path);
    }
    return done(r);
  } finally {
    r.close();
  }
}

function procPath(session: Session, path: Buffer): Answer {
  const text = path.toString('latin1');
  const names = text.split('/');
  const lexical = text.startsWith('/') && !names.includes('..');
  const mounted = session.root.mounts.some(
    (mount) =>
      mount.proc &&
      mount.virt.every((name, i) => names.filter((n) => n !== '' && n !== '.')[i] === name),
  );
  return lexical && mounted ? answer.continue() : answer.errno(ERRNO.EACCES);
}

function inject(fd: number, flags: number): Answer {
  if (fd < 0) return answer.errno(-fd);
  return answer.inject(fd, { cloexec: (flags & O.O_CLOEXEC) !== 0 });
}

/** The reaper's openat of the object found (by its name beneath its directory, never following). */
function openFound(ctx: Ctx, r: Found, flags: number): number {
  const broker = brokerOf(ctx);
  const how = (flags & ~LOOKUP_FLAGS) | O.O_NOFOLLOW;
  if (r.parent >= 0) return broker.openat(r.parent, Buffer.from(r.name, 'latin1'), how);
  if (r.mode === S_IFDIR) return broker.openat(r.fd, Buffer.from('.'), how);
  // A file mounted on its own (/dev/null): by its name in its host directory.
  const mount = r.mount!;
  return broker.openat(mount.hostParent, Buffer.from(mount.hostName, 'latin1'), how);
}

function writes(flags: number): boolean {
  return (flags & O_ACCMODE) !== O.O_RDONLY || (flags & (O.O_TRUNC | O.O_CREAT)) !== 0;
}

// --- open, openat, openat2, creat

export function onOpen(ctx: Ctx): Answer {
  if (isRetargetedOpen(ctx)) return answer.continue();
  const a = ctx.args;
  let dirfd = AT_FDCWD;
  let address: bigint;
  let flags: number;
  let mode: number;
  let resolveFlags = 0;
  switch (ctx.syscall) {
    case 'open':
      [address, flags, mode] = [a[0]!, uint(a[1]), uint(a[2])];
      break;
    case 'creat':
      [address, flags, mode] = [a[0]!, O.O_CREAT | O.O_WRONLY | O.O_TRUNC, uint(a[1])];
      break;
    case 'openat':
      [dirfd, address, flags, mode] = [int(a[0]), a[1]!, uint(a[2]), uint(a[3])];
      break;
    case 'openat2': {
      if ((a[3] ?? 0n) < OPEN_HOW_SIZE_VER0) return answer.errno(EINVAL);
      const how = ctx.read(a[2]!, 24);
      const resolveBits = how.readBigUInt64LE(16);
      // build_open_flags() in fs/open.c: unknown bits, both roots at once.
      if ((resolveBits & ~BigInt(RESOLVE_ALL)) !== 0n) return answer.errno(EINVAL);
      resolveFlags = Number(resolveBits);
      if ((resolveFlags & RESOLVE_BENEATH) !== 0 && (resolveFlags & RESOLVE_IN_ROOT) !== 0) {
        return answer.errno(EINVAL);
      }
      dirfd = int(a[0]);
      address = a[1]!;
      flags = Number(how.readBigUInt64LE(0) & 0xffffffffn);
      mode = Number(how.readBigUInt64LE(8) & 0o7777n);
      // RESOLVE_CACHED: a lookup the kernel could not make from its caches
      // alone is EAGAIN (the caller retries without it); this walk never is.
      if ((resolveFlags & RESOLVE_CACHED) !== 0) return answer.errno(ERRNO.EAGAIN);
      break;
    }
    default:
      return answer.continue();
  }
  const exclusive = (flags & O.O_CREAT) !== 0 && (flags & O.O_EXCL) !== 0;
  const followLast = (flags & O.O_NOFOLLOW) === 0 && !exclusive;
  const trailingSlash = false;
  const path = copyPath(ctx, address);
  // Descriptors the caller names by /dev/fd/N (and a terminal it holds) are
  // served from its own table; a walk restricted by RESOLVE_* is the root's.
  const session = sessionOf(ctx);
  if (session.scripts.size > 0 && resolveFlags === 0 && (flags & READ_ONLY_OPEN) === O.O_RDONLY) {
    const script = session.scripts.take(threadGroup(ctx.pid), path.toString('latin1'));
    if (script !== null) {
      // Opened by the supervisor: a narrowed caller opens it as any other path (refused).
      if (narrowedErrno(ctx) !== 0) close(script);
      else return inject(script, flags);
    }
  }
  const own = resolveFlags === 0 ? ownDescriptorOf(session, path) : null;
  if (own !== null) return openOwnDescriptor(ctx, own, flags);
  const done = (r: Found): Answer => {
    if ((flags & O.__O_TMPFILE) !== 0) return answer.errno('EOPNOTSUPP');
    if (r.errno === ENOENT && resolveFlags === 0) {
      const terminal = ownTerminalOf(ctx, path);
      if (terminal !== null) return openOwnDescriptor(ctx, terminal, flags);
    }
    if (r.errno === 0 && r.parent < 0 && r.mount?.host === '/dev/tty' && (flags & O.O_PATH) === 0) {
      const terminal = ownControllingTerminalOf(ctx);
      return terminal === null
        ? answer.errno(ERRNO.ENXIO)
        : openOwnDescriptor(ctx, terminal, flags);
    }
    if (r.lastMissing) {
      if ((flags & O.O_CREAT) === 0) return answer.errno(ENOENT);
      if ((flags & O.O_DIRECTORY) !== 0) return answer.errno(EINVAL);
      if (r.mount?.readOnly) return answer.errno(EROFS);
      const perms = mode & 0o7777 & ~umaskOf(ctx.pid);
      const fd = brokerOf(ctx).openat(
        r.parent,
        Buffer.from(r.name, 'latin1'),
        (flags & ~(LOOKUP_FLAGS | O.O_CREAT)) | O.O_CREAT | O.O_EXCL | O.O_NOFOLLOW,
        perms,
      );
      // The reaper's umask is not the caller's; a mode already right is left
      // alone (an fchmod is an IN_ATTRIB event the kernel's create has not).
      // The reaper sets it, as the sandbox: a set-group-ID bit the kernel
      // cleared at the create (mode_strip_sgid() in fs/inode.c) stays
      // cleared (setattr_prepare() in fs/attr.c), which the supervisor's
      // CAP_FSETID would have kept.
      if (fd >= 0 && (fstatSync(fd).mode & 0o7777) !== perms) {
        reaper(brokerOf(ctx), 'fchmodat2', (name) => [{ fd }, name(''), perms, AT_EMPTY_PATH]);
      }
      return inject(fd, flags);
    }
    if (r.errno !== 0) return answer.errno(r.errno);
    if (exclusive) return answer.errno(EEXIST);
    if (r.mode === S_IFLNK) return answer.errno(ERRNO.ELOOP);
    if (r.mode === S_IFDIR && writes(flags)) return answer.errno(ERRNO.EISDIR);
    if (r.mode !== S_IFDIR && (flags & O.O_DIRECTORY) !== 0) return answer.errno(ENOTDIR);
    if (r.mount?.readOnly && writes(flags) && r.mode === S_IFREG) return answer.errno(EROFS);
    void trailingSlash;
    // An O_PATH descriptor cannot be injected (seccomp_notify_addfd() takes
    // its file with fget, which skips O_PATH files): it is opened for
    // reading, which serves every use of an O_PATH one it can.
    const openAs = (flags & O.O_PATH) !== 0 ? O.O_RDONLY | (flags & O.O_DIRECTORY) : flags;
    // A caller with a Landlock domain of its own opens by itself, so that
    // domain decides (narrowed-open.ts); an open that would change a file
    // (a create, a truncation) is refused before any change, as below.
    if (resolveFlags === 0 && (flags & CHANGING_OPEN) === 0 && narrowedCaller(ctx)) {
      const own = narrowedOpen(ctx, r, path, address, flags, mode);
      if (own !== null) return own;
    }
    return inject(openFound(ctx, r, openAs), flags);
  };
  return atPath(ctx, path, dirfd, followLast, done, false, false, resolveFlags);
}

// --- the stat family, access, readlink, statfs

function written(ctx: Ctx, address: bigint, data: Buffer, result: number): Answer {
  ctx.write(address, data);
  return answer.value(result);
}

export function onStat(ctx: Ctx): Answer {
  const a = ctx.args;
  let dirfd = AT_FDCWD;
  let address: bigint;
  let follow: boolean;
  let buffer: bigint;
  if (ctx.syscall === 'newfstatat') {
    const flags = uint(a[3]);
    if ((flags & AT_EMPTY_PATH) !== 0 && emptyPath(ctx, a[1]!)) return answer.continue();
    [dirfd, address, buffer, follow] = [
      int(a[0]),
      a[1]!,
      a[2]!,
      (flags & AT_SYMLINK_NOFOLLOW) === 0,
    ];
  } else {
    [address, buffer, follow] = [a[0]!, a[1]!, ctx.syscall === 'stat'];
  }
  return at(ctx, address, dirfd, follow, (r) => {
    const terminal = r.errno === ENOENT ? ownTerminalOf(ctx, copyPath(ctx, address)) : null;
    if (terminal !== null) {
      const out = Buffer.alloc(256);
      const result = ctx.onBehalf(terminal, 'newfstatat', EMPTY, out, AT_EMPTY_PATH);
      return result < 0
        ? answer.errno(-result)
        : written(ctx, buffer, out.subarray(0, STAT_SIZE), 0);
    }
    if (r.errno !== 0) return answer.errno(r.errno);
    const out = Buffer.alloc(256);
    const result = trySyscall('newfstatat', r.fd, EMPTY, out, AT_EMPTY_PATH);
    if (result < 0) return answer.errno(-result);
    return written(ctx, buffer, out.subarray(0, STAT_SIZE), 0);
  });
}

export function emptyPath(ctx: Ctx, address: bigint): boolean {
  if (address === 0n) return true;
  try {
    return ctx.read(address, 1)[0] === 0;
  } catch {
    return false;
  }
}

export function onStatx(ctx: Ctx): Answer {
  const a = ctx.args;
  const flags = uint(a[2]);
  if (a[1] === 0n || ((flags & AT_EMPTY_PATH) !== 0 && emptyPath(ctx, a[1]!))) {
    return answer.continue(); // the descriptor's own object
  }
  const follow = (flags & AT_SYMLINK_NOFOLLOW) === 0;
  return at(ctx, a[1]!, int(a[0]), follow, (r) => {
    const terminal = r.errno === ENOENT ? ownTerminalOf(ctx, copyPath(ctx, a[1]!)) : null;
    if (r.errno !== 0 && terminal === null) return answer.errno(r.errno);
    const out = Buffer.alloc(256);
    const sync = flags & AT_STATX_SYNC_TYPE;
    if (terminal !== null) {
      const got = ctx.onBehalf(terminal, 'statx', EMPTY, AT_EMPTY_PATH | sync, uint(a[3]), out);
      return got < 0 ? answer.errno(-got) : written(ctx, a[4]!, out, 0);
    }
    const result = trySyscall(
      'statx',
      r.fd,
      EMPTY,
      AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | sync,
      uint(a[3]),
      out,
    );
    if (result < 0) return answer.errno(-result);
    return written(ctx, a[4]!, out, 0);
  });
}

export function onAccess(ctx: Ctx): Answer {
  const a = ctx.args;
  const legacy = ctx.syscall === 'access';
  const dirfd = legacy ? AT_FDCWD : int(a[0]);
  const address = legacy ? a[0]! : a[1]!;
  const mode = uint(legacy ? a[1] : a[2]);
  const flags = ctx.syscall === 'faccessat2' ? uint(a[3]) : 0;
  if ((flags & AT_EMPTY_PATH) !== 0 && emptyPath(ctx, address)) return answer.continue();
  return at(ctx, address, dirfd, (flags & AT_SYMLINK_NOFOLLOW) === 0, (r) => {
    if (r.errno !== 0) return answer.errno(r.errno);
    if ((mode & 2) !== 0 && r.mount?.readOnly) return answer.errno(EROFS);
    const result = reaper(brokerOf(ctx), 'faccessat2', (name) => [
      { fd: r.fd },
      name(''),
      mode,
      AT_EMPTY_PATH | (flags & AT_EACCESS),
    ]).result;
    return result < 0 ? answer.errno(-result) : answer.value(0);
  });
}

/** /proc/<pid>/{root,cwd,exe,fd/N} of a process of the sandbox, as it sees them; null: not one of those. */
function procLink(ctx: Ctx, session: Session, text: string): string | null {
  const match = /^\/proc\/(self|thread-self|\d+)(?:\/task\/(\d+))?\/(root|cwd|exe|fd\/\d+)$/.exec(
    text.replace(/\/+/g, '/'),
  );
  if (match === null) return null;
  const who = match[1] === 'self' || match[1] === 'thread-self' ? ctx.pid : Number(match[1]);
  const what = match[3]!;
  if (what === 'root') return '/';
  if (what === 'exe') {
    const exe = session.exes.get(threadGroup(who));
    if (exe !== undefined) return exe;
  }
  let host: string;
  try {
    host = readlinkSync(`/proc/${who}/${what}`, 'latin1');
  } catch {
    return null;
  }
  if (!host.startsWith('/')) return host; // pipe:[…], socket:[…]
  const virt = session.root.virtualOf(host);
  return virt === null ? (what === 'cwd' ? '/' : host) : `/${virt.join('/')}`;
}

export function onReadlink(ctx: Ctx): Answer {
  const a = ctx.args;
  const legacy = ctx.syscall === 'readlink';
  const dirfd = legacy ? AT_FDCWD : int(a[0]);
  const address = legacy ? a[0]! : a[1]!;
  const buffer = legacy ? a[1]! : a[2]!;
  const size = int(legacy ? a[2] : a[3]);
  if (size <= 0) return answer.errno(EINVAL);
  const session = sessionOf(ctx);
  const reply = (text: string): Answer => {
    const bytes = Buffer.from(text, 'latin1').subarray(0, size);
    return written(ctx, buffer, bytes, bytes.length);
  };
  return at(
    ctx,
    address,
    dirfd,
    false,
    (r) => {
      if (r.proc) {
        // Inside a mounted /proc: the links that name a place are shown inside the root.
        const text = copyPath(ctx, address).toString('latin1');
        const shown = text.startsWith('/') ? procLink(ctx, session, text) : null;
        return shown !== null ? reply(shown) : procPath(session, copyPath(ctx, address));
      }
      if (r.errno !== 0) return answer.errno(r.errno);
      if (r.mode !== S_IFLNK) return answer.errno(EINVAL);
      const out = Buffer.alloc(4096);
      const length = trySyscall('readlinkat', r.fd, EMPTY, out, out.length);
      if (length < 0) return answer.errno(-length);
      return reply(out.toString('latin1', 0, length));
    },
    false,
    true,
  );
}

export function onStatfs(ctx: Ctx): Answer {
  return at(ctx, ctx.args[0]!, AT_FDCWD, true, (r) => {
    if (r.errno !== 0) return answer.errno(r.errno);
    const out = Buffer.alloc(STATFS_SIZE);
    const result = trySyscall('fstatfs', r.fd, out);
    if (result < 0) return answer.errno(-result);
    return written(ctx, ctx.args[1]!, out, 0);
  });
}

export function onGetcwd(ctx: Ctx): Answer {
  const session = sessionOf(ctx);
  let host: string;
  try {
    host = readlinkSync(`/proc/${ctx.pid}/cwd`, 'latin1');
  } catch {
    return answer.errno(ENOENT);
  }
  const virt = host.startsWith('/') ? session.root.virtualOf(host) : null;
  const text = `/${(virt ?? []).join('/')}`;
  const bytes = Buffer.from(`${text}\0`, 'latin1');
  if (bytes.length > uint(ctx.args[1])) return answer.errno(ERRNO.ERANGE);
  return written(ctx, ctx.args[0]!, bytes, bytes.length);
}

// --- changes, by the reaper

function changeable(r: Found): number {
  if (r.errno !== 0 && !r.lastMissing) return r.errno;
  if (r.mount?.readOnly) return EROFS;
  return 0;
}

function result(value: number): Answer {
  return value < 0 ? answer.errno(-value) : answer.value(0);
}

/** A name to make: its directory found, the name not there. */
function making(ctx: Ctx, address: bigint, dirfd: number, make: (r: Found) => number): Answer {
  return at(
    ctx,
    address,
    dirfd,
    false,
    (r) => {
      const errno = changeable(r);
      if (errno !== 0) return answer.errno(errno);
      if (!r.lastMissing) return answer.errno(EEXIST);
      return result(make(r));
    },
    true,
  );
}

/**
 * The path of a call with a legacy form and an *at form (mkdir, mkdirat):
 * the dirfd (AT_FDCWD for the legacy form), the path's address and the
 * argument after it, from argument `first` on (symlink's target comes before).
 */
function pathArgs(
  ctx: Ctx,
  legacy: string,
  first = 0,
): { dirfd: number; address: bigint; next: bigint | undefined } {
  const a = ctx.args.slice(first);
  return ctx.syscall === legacy
    ? { dirfd: AT_FDCWD, address: a[0]!, next: a[1] }
    : { dirfd: int(a[0]), address: a[1]!, next: a[2] };
}

export function onMkdir(ctx: Ctx): Answer {
  const { dirfd, address, next } = pathArgs(ctx, 'mkdir');
  const mode = uint(next);
  return making(
    ctx,
    address,
    dirfd,
    (r) =>
      reaper(brokerOf(ctx), 'mkdirat', (name) => [
        { fd: r.parent },
        name(r.name),
        mode & 0o7777 & ~umaskOf(ctx.pid),
      ]).result,
  );
}

export function onMknod(ctx: Ctx): Answer {
  const { dirfd, address, next } = pathArgs(ctx, 'mknod');
  const mode = uint(next);
  const type = mode & S_IFMT;
  if (type !== 0 && type !== S_IFREG && type !== S_IFIFO && type !== S_IFSOCK) {
    return answer.errno(ERRNO.EPERM); // a device: CAP_MKNOD, which the sandbox has not
  }
  return making(
    ctx,
    address,
    dirfd,
    (r) =>
      reaper(brokerOf(ctx), 'mknodat', (name) => [
        { fd: r.parent },
        name(r.name),
        (mode & ~0o7777) | (mode & 0o7777 & ~umaskOf(ctx.pid)),
        0,
      ]).result,
  );
}

export function onSymlink(ctx: Ctx): Answer {
  const target = copyPath(ctx, ctx.args[0]!);
  const { dirfd, address } = pathArgs(ctx, 'symlink', 1);
  return making(
    ctx,
    address,
    dirfd,
    (r) =>
      reaper(brokerOf(ctx), 'symlinkat', (name) => [name(target), { fd: r.parent }, name(r.name)])
        .result,
  );
}

export function onUnlink(ctx: Ctx): Answer {
  const a = ctx.args;
  let dirfd = AT_FDCWD;
  let address = a[0]!;
  let flags = ctx.syscall === 'rmdir' ? AT_REMOVEDIR : 0;
  if (ctx.syscall === 'unlinkat') [dirfd, address, flags] = [int(a[0]), a[1]!, uint(a[2])];
  return at(ctx, address, dirfd, false, (r) => {
    const errno = changeable(r);
    if (errno !== 0) return answer.errno(errno);
    if (r.lastMissing) return answer.errno(ENOENT);
    if (r.top) return answer.errno(EBUSY);
    if (r.dotted) return answer.errno((flags & AT_REMOVEDIR) !== 0 ? EINVAL : ERRNO.EISDIR);
    return result(
      reaper(brokerOf(ctx), 'unlinkat', (name) => [{ fd: r.parent }, name(r.name), flags]).result,
    );
  });
}

/** Both ends of a rename or link: in the same tree (the root's, or one mount's), as two mounts are two file systems. */
function twoPaths(
  ctx: Ctx,
  from: { dirfd: number; address: bigint; follow: boolean },
  to: { dirfd: number; address: bigint },
  act: (source: Found, target: Found) => Answer,
): Answer {
  return at(ctx, from.address, from.dirfd, from.follow, (source) =>
    at(
      ctx,
      to.address,
      to.dirfd,
      false,
      (target) => {
        if (source.errno !== 0) return answer.errno(source.errno);
        if (target.errno !== 0 && !target.lastMissing) return answer.errno(target.errno);
        if (source.mount !== target.mount) return answer.errno(EXDEV);
        if (source.mount?.readOnly) return answer.errno(EROFS);
        if (source.top || target.top) return answer.errno(EBUSY);
        if (source.dotted || target.dotted || source.parent < 0 || target.parent < 0) {
          return answer.errno(EBUSY);
        }
        return act(source, target);
      },
      true,
    ),
  );
}

export function onRename(ctx: Ctx): Answer {
  const a = ctx.args;
  const legacy = ctx.syscall === 'rename';
  const from = legacy
    ? { dirfd: AT_FDCWD, address: a[0]!, follow: false }
    : { dirfd: int(a[0]), address: a[1]!, follow: false };
  const to = legacy ? { dirfd: AT_FDCWD, address: a[1]! } : { dirfd: int(a[2]), address: a[3]! };
  const flags = ctx.syscall === 'renameat2' ? uint(a[4]) : 0;
  return twoPaths(ctx, from, to, (source, target) =>
    result(
      reaper(brokerOf(ctx), 'renameat2', (name) => [
        { fd: source.parent },
        name(source.name),
        { fd: target.parent },
        name(target.name),
        flags,
      ]).result,
    ),
  );
}

export function onLink(ctx: Ctx): Answer {
  const a = ctx.args;
  const legacy = ctx.syscall === 'link';
  const flags = legacy ? 0 : uint(a[4]);
  if ((flags & AT_EMPTY_PATH) !== 0) return answer.errno(ERRNO.EPERM); // linkat(fd, ""): CAP_DAC_READ_SEARCH
  const from = legacy
    ? { dirfd: AT_FDCWD, address: a[0]!, follow: false }
    : { dirfd: int(a[0]), address: a[1]!, follow: (flags & AT_SYMLINK_FOLLOW) !== 0 };
  const to = legacy ? { dirfd: AT_FDCWD, address: a[1]! } : { dirfd: int(a[2]), address: a[3]! };
  return twoPaths(ctx, from, to, (source, target) => {
    if (!target.lastMissing) return answer.errno(EEXIST);
    return result(
      reaper(brokerOf(ctx), 'linkat', (name) => [
        { fd: source.parent },
        name(source.name),
        { fd: target.parent },
        name(target.name),
        0,
      ]).result,
    );
  });
}

/**
 * The caller's times as utimensat's two timespecs: as given (utimensat), from
 * utime's struct utimbuf (two seconds) or from the struct timeval pair of
 * utimes and futimesat (microseconds, EINVAL out of range: do_futimesat() in
 * fs/utimes.c).
 */
function timespecs(ctx: Ctx, name: string, address: bigint): Buffer | typeof EINVAL {
  if (name === 'utimensat') return ctx.read(address, 32);
  const times = Buffer.alloc(32);
  if (name === 'utime') {
    const given = ctx.read(address, 16);
    times.writeBigInt64LE(given.readBigInt64LE(0), 0);
    times.writeBigInt64LE(given.readBigInt64LE(8), 16);
    return times;
  }
  const given = ctx.read(address, 32);
  for (const at of [0, 16]) {
    const usec = given.readBigInt64LE(at + 8);
    if (usec < 0n || usec >= 1_000_000n) return EINVAL;
    times.writeBigInt64LE(given.readBigInt64LE(at), at);
    times.writeBigInt64LE(usec * 1000n, at + 8);
  }
  return times;
}

/** chmod, chown, utimes…: on the object the walk pinned (AT_EMPTY_PATH), by the reaper. */
export function onMetadata(ctx: Ctx): Answer {
  const a = ctx.args;
  const name = ctx.syscall;
  let dirfd = AT_FDCWD;
  let address: bigint;
  let follow = true;
  let act: (r: Found) => number;
  const broker = brokerOf(ctx);
  const onFd =
    (
      syscall: string,
      args: (
        fd: { fd: number },
        empty: { data: number },
      ) => readonly (number | bigint | { fd: number } | { data: number })[],
      extra?: Buffer,
    ) =>
    (r: Found) =>
      reaper(broker, syscall, (n) => args({ fd: r.fd }, n('')), extra).result;
  switch (name) {
    case 'chmod':
    case 'fchmodat':
    case 'fchmodat2': {
      const mode = uint(name === 'chmod' ? a[1] : a[2]) & 0o7777;
      if (name !== 'chmod') [dirfd, address] = [int(a[0]), a[1]!];
      else address = a[0]!;
      if (name === 'fchmodat2') follow = (uint(a[3]) & AT_SYMLINK_NOFOLLOW) === 0;
      act = onFd('fchmodat2', (fd, empty) => [fd, empty, mode, AT_EMPTY_PATH]);
      break;
    }
    case 'chown':
    case 'lchown':
    case 'fchownat': {
      const [uid, gid] = name === 'fchownat' ? [a[2]!, a[3]!] : [a[1]!, a[2]!];
      if (name === 'fchownat') {
        [dirfd, address] = [int(a[0]), a[1]!];
        follow = (uint(a[4]) & AT_SYMLINK_NOFOLLOW) === 0;
      } else {
        address = a[0]!;
        follow = name === 'chown';
      }
      act = onFd('fchownat', (fd, empty) => [fd, empty, uid, gid, AT_EMPTY_PATH]);
      break;
    }
    case 'utimensat':
    case 'utime':
    case 'utimes':
    case 'futimesat': {
      const withDirfd = name !== 'utime' && name !== 'utimes';
      // futimens(fd), futimesat(fd, NULL): the descriptor's own object.
      if (withDirfd && a[1] === 0n) return answer.continue();
      [dirfd, address] = withDirfd ? [int(a[0]), a[1]!] : [AT_FDCWD, a[0]!];
      if (name === 'utimensat') follow = (uint(a[3]) & AT_SYMLINK_NOFOLLOW) === 0;
      const given = withDirfd ? a[2]! : a[1]!;
      const times = given === 0n ? null : timespecs(ctx, name, given);
      if (times === EINVAL) return answer.errno(EINVAL);
      act = (r) =>
        reaper(
          broker,
          'utimensat',
          (n) => [{ fd: r.fd }, n(''), times === null ? 0 : { data: 1 }, AT_EMPTY_PATH],
          times ?? undefined,
        ).result;
      break;
    }
    default:
      return answer.errno(ERRNO.ENOSYS);
  }
  return at(ctx, address, dirfd, follow, (r) => {
    const errno = changeable(r);
    if (errno !== 0) return answer.errno(errno);
    if (r.lastMissing) return answer.errno(ENOENT);
    // Landlock has no right for these: the policy's write paths are checked here (as fs-meta does).
    if (!writable(ctx, r)) {
      ctx.refused({ what: () => `${name} ${r.path}`, rule: 'fsWrite' });
      return answer.errno(ERRNO.EACCES);
    }
    return result(act(r));
  });
}

export function onTruncate(ctx: Ctx): Answer {
  const length = ctx.args[1]!;
  return at(ctx, ctx.args[0]!, AT_FDCWD, true, (r) => {
    const errno = changeable(r);
    if (errno !== 0) return answer.errno(errno);
    if (r.lastMissing) return answer.errno(ENOENT);
    if (r.mode === S_IFDIR) return answer.errno(ERRNO.EISDIR);
    const fd = openFound(ctx, r, O.O_WRONLY | O.O_CLOEXEC);
    if (fd < 0) return answer.errno(-fd);
    try {
      return result(reaper(brokerOf(ctx), 'ftruncate', () => [{ fd }, length]).result);
    } finally {
      close(fd);
    }
  });
}

/**
 * chroot(2) itself: EPERM, the kernel's answer without CAP_SYS_CHROOT, but
 * before its lookup of the path on the host (ksys_chroot() in fs/open.c
 * looks up first), which would tell what exists there.
 */
export function onChroot(_ctx: Ctx): Answer {
  return answer.errno(ERRNO.EPERM);
}

/**
 * uselib(2): what the host's kernel answers, ENOSYS when it is built
 * without CONFIG_USELIB (sys_ni_syscall; Debian's kernels since 6.x, this
 * machine's), else refused, never looked up from the host's root. The
 * kernel is asked once, with a null path: EFAULT from getname() when the
 * call exists, nothing loaded.
 */
export function onUselib(_ctx: Ctx): Answer {
  uselibErrno ??= trySyscall('uselib', 0) === -ERRNO.ENOSYS ? ERRNO.ENOSYS : ERRNO.EACCES;
  return answer.errno(uselibErrno);
}

let uselibErrno: number | null = null;
