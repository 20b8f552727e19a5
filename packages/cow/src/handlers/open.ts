// open, openat, openat2, creat inside the workdir. A read of what the layer
// has not touched, by a path the kernel resolves to the same lower object,
// is left to the kernel (Landlock lets the sandbox read the workdir).
// Anything else is opened by the reaper and the descriptor injected: a file
// or directory of the upper, a lower file reached through the layer, a
// write (the lower file copied up first, after the kernel's own access
// check on it), a creation.
import { fstatSync } from 'node:fs';
import { type Answer, answer, isRetargetedOpen, type OnBehalf } from '@sandlock/dispatch/module';
import {
  AT_FDCWD,
  callAsCaller,
  close,
  ERRNO,
  F_DUPFD_CLOEXEC,
  hostArch,
  OPEN_HOW_SIZE,
  openFlags,
  R_OK,
  RESOLVE_BENEATH,
  RESOLVE_CACHED,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  RESOLVE_NO_XDEV,
  trySyscall,
  W_OK,
} from '@sandlock/sys';
import {
  brokerOf,
  type Ctx,
  copyPath,
  int,
  type Maker,
  makerOf,
  narrowedRefusal,
  resolve,
  type Session,
  sessionOf,
  uint,
  untouched,
} from '../call.js';
import type { Inside, Outside, Restrict } from '../resolve.js';
import { openThroughLayer, throughLayer } from '../through-layer.js';
import {
  access,
  chmodFd,
  copyUp,
  createAsCaller,
  mayChange,
  openIn,
  takesDefaultAcl,
  upperDir,
} from '../upper.js';

const O = openFlags(hostArch());
const O_ACCMODE = 3;
const O_TMPFILE = O.__O_TMPFILE | O.O_DIRECTORY;
/** `/dev/fd/N` and `/proc/{self,thread-self}/fd/N`. */
const OWN_FD = /^\/+(?:dev\/+fd|proc\/+(?:self|thread-self)\/+fd)\/+\d+$/;
/** Flags that only say how to find or make the file: not passed on to an open of the object found. */
const LOOKUP_FLAGS = O.O_CREAT | O.O_EXCL | O.O_NOFOLLOW | O.O_CLOEXEC | O.O_PATH;
/** copy_struct_from_user() refuses a larger struct open_how (E2BIG). */
const OPEN_HOW_MAX = 4096n;
const KNOWN_RESOLVE =
  RESOLVE_NO_XDEV |
  RESOLVE_NO_MAGICLINKS |
  RESOLVE_NO_SYMLINKS |
  RESOLVE_BENEATH |
  RESOLVE_IN_ROOT |
  RESOLVE_CACHED;

interface OpenCall {
  dirfd: number;
  path: Buffer;
  flags: number;
  mode: number;
  /** openat2's RESOLVE_* flags (0 for the other calls). */
  resolve: number;
}

/**
 * The call's arguments, or null where the kernel refuses it before any
 * lookup (it then answers: continued).
 */
function readCall(ctx: Ctx): OpenCall | null {
  const a = ctx.args;
  switch (ctx.syscall) {
    case 'open':
      return {
        dirfd: AT_FDCWD,
        path: copyPath(ctx, a[0]!),
        flags: uint(a[1]),
        mode: uint(a[2]),
        resolve: 0,
      };
    case 'creat':
      return {
        dirfd: AT_FDCWD,
        path: copyPath(ctx, a[0]!),
        flags: O.O_CREAT | O.O_WRONLY | O.O_TRUNC,
        mode: uint(a[1]),
        resolve: 0,
      };
    case 'openat':
      return {
        dirfd: int(a[0]),
        path: copyPath(ctx, a[1]!),
        flags: uint(a[2]),
        mode: uint(a[3]),
        resolve: 0,
      };
    case 'openat2': {
      // build_open_flags() and copy_struct_from_user() in fs/open.c: EINVAL
      // for a short struct, unknown RESOLVE_* bits, BENEATH with IN_ROOT;
      // E2BIG for a longer one with non-zero bytes past what it knows.
      const size = a[3] ?? 0n;
      if (size < BigInt(OPEN_HOW_SIZE) || size > OPEN_HOW_MAX) return null;
      const how = ctx.read(a[2]!, Number(size));
      if (how.subarray(OPEN_HOW_SIZE).some((byte) => byte !== 0)) return null;
      const resolve = how.readBigUInt64LE(16);
      if ((resolve & ~BigInt(KNOWN_RESOLVE)) !== 0n) return null;
      const scopes = Number(resolve) & (RESOLVE_BENEATH | RESOLVE_IN_ROOT);
      if (scopes === (RESOLVE_BENEATH | RESOLVE_IN_ROOT)) return null;
      return {
        dirfd: int(a[0]),
        path: copyPath(ctx, a[1]!),
        flags: Number(how.readBigUInt64LE(0) & 0xffffffffn),
        mode: Number(how.readBigUInt64LE(8) & 0o7777n),
        resolve: Number(resolve),
      };
    }
    default:
      return null;
  }
}

function restrictionsOf(resolve: number): Restrict | undefined {
  if ((resolve & ~RESOLVE_CACHED) === 0) return undefined;
  return {
    noSymlinks: (resolve & RESOLVE_NO_SYMLINKS) !== 0,
    noMagicLinks: (resolve & (RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS)) !== 0,
    beneath: (resolve & RESOLVE_BENEATH) !== 0,
    inRoot: (resolve & RESOLVE_IN_ROOT) !== 0,
    noXdev: (resolve & RESOLVE_NO_XDEV) !== 0,
  };
}

export function onOpen(ctx: Ctx): Answer {
  // The caller's own openat a handler retargeted it to (a search-only chdir: where.ts, the chroot
  // module's; a narrowed caller's open inside a root): the kernel's.
  if (isRetargetedOpen(ctx)) return answer.continue();
  const session = sessionOf(ctx);
  const call = readCall(ctx);
  if (call === null || call.path.length === 0) return answer.continue(); // the kernel's EINVAL, ENOENT
  // The caller's own descriptor by name: the chroot module's, after this
  // one (its root has no /dev/fd; chroot's own-fd.ts). A script the layer
  // holds runs from a copy its interpreter opens as /dev/fd/N.
  if (session.workdir.chroot && call.resolve === 0 && OWN_FD.test(call.path.toString('latin1'))) {
    return answer.continue();
  }
  const { flags } = call;
  const cached = (call.resolve & RESOLVE_CACHED) !== 0;
  // build_open_flags(): RESOLVE_CACHED with a create, a truncate or
  // O_TMPFILE is EAGAIN before any lookup.
  if (cached && (flags & (O.O_CREAT | O.O_TRUNC | O.__O_TMPFILE)) !== 0) return answer.continue();
  if (call.resolve === 0 && readsOnly(flags)) {
    // Beneath the workdir's own directory, which the layer lists merged
    // once it changed anything (openInside).
    const rel = untouched(ctx, session, call.path, call.dirfd, (flags & O.O_NOFOLLOW) === 0);
    if (rel !== null && rel.length > 0) return answer.continue();
  }
  const exclusive = (flags & O.O_CREAT) !== 0 && (flags & O.O_EXCL) !== 0;
  // O_CREAT|O_EXCL never follows a symlink in the last component (open(2)).
  const followLast = (flags & O.O_NOFOLLOW) === 0 && !exclusive;
  // O_CREAT with a trailing slash is EISDIR once the directory is found
  // (open_last_lookups() in fs/namei.c): the last name is not followed.
  const creatingDirectory = (flags & O.O_CREAT) !== 0 && call.path[call.path.length - 1] === 0x2f;
  const resolved = resolve(
    ctx,
    session,
    call.path,
    call.dirfd,
    followLast,
    creatingDirectory,
    restrictionsOf(call.resolve),
  );
  if (resolved.where === 'outside') {
    const { errno } = resolved.walked;
    try {
      if (call.resolve === 0 && throughLayer(resolved)) {
        return openOutside(ctx, session, resolved, call);
      }
    } finally {
      resolved.walked.close();
    }
    // A restriction the resolver applied (EXDEV, ELOOP) on a walk the
    // kernel would take elsewhere; any other result is the kernel's to give.
    if (call.resolve !== 0 && (errno === ERRNO.EXDEV || errno === ERRNO.ELOOP)) {
      return answer.errno(errno);
    }
    return answer.continue();
  }
  try {
    // RESOLVE_CACHED: a lookup the layer serves is never one the dcache
    // alone completes; EAGAIN, on which openat2(2) tells callers to retry
    // without the flag.
    if (cached && (!resolved.pure || opensForWriting(flags) || resolved.upper >= 0)) {
      return answer.errno('EAGAIN');
    }
    return openInside(ctx, session, resolved, call);
  } finally {
    resolved.close();
  }
}

/**
 * An open through a link of the layer to outside the workdir: the reaper's
 * open (through-layer.ts), injected. O_PATH as in openInside: read-only.
 */
function openOutside(
  ctx: Ctx,
  session: Session,
  outside: Outside & { readonly throughLayer: string },
  call: OpenCall,
): Answer {
  const { flags } = call;
  const opens = (flags & O.O_PATH) !== 0 ? (flags & ~(O.O_PATH | O_ACCMODE)) | O.O_RDONLY : flags;
  const perms = call.mode & 0o7777 & ~makerOf(ctx).umask;
  const fd = openThroughLayer(ctx, session, outside, opens, perms);
  if (fd < 0) return answer.errno(-fd);
  return inject(fd, flags);
}

function inject(fd: number, flags: number): Answer {
  return answer.inject(fd, { cloexec: (flags & O.O_CLOEXEC) !== 0 });
}

function openInside(ctx: Ctx, session: Session, r: Inside, call: OpenCall): Answer {
  const { flags } = call;
  const broker = brokerOf(ctx);
  const accmode = flags & O_ACCMODE;
  const trailingSlash = call.path[call.path.length - 1] === 0x2f;
  if (r.errno !== 0 && !r.lastMissing) return answer.errno(r.errno);
  if ((flags & O.O_CREAT) !== 0 && trailingSlash) return answer.errno('EISDIR');
  if ((flags & O_TMPFILE) === O_TMPFILE) return tmpfileIn(ctx, session, r, call);
  if (r.lastMissing) {
    if ((flags & O.O_CREAT) === 0) return answer.errno('ENOENT');
    if (trailingSlash) return answer.errno('EISDIR');
    if ((flags & O.O_DIRECTORY) !== 0) return answer.errno('EINVAL');
    // The worker may make the file itself.
    const narrowed = narrowedRefusal(ctx);
    if (narrowed !== null) return narrowed;
    const parent = r.parent!;
    // A directory the upper has: the open below, in it, is the kernel's own
    // check of write and search permission there (may_o_create() in
    // fs/namei.c). One only in the lower is checked before its copy is made.
    if (parent.upper < 0) {
      const may = mayChange(broker, parent.lower);
      if (may < 0) return answer.errno(-may);
    }
    const dir =
      parent.upper >= 0
        ? trySyscall('fcntl', parent.upper, F_DUPFD_CLOEXEC, 0)
        : upperDir(session.workdir, broker, r.rel.slice(0, -1));
    if (dir < 0) return answer.errno(-dir);
    const maker = makerOf(ctx);
    const byAcl = takesDefaultAcl(dir);
    if (typeof byAcl === 'number') {
      close(dir);
      return answer.errno(-byAcl);
    }
    const perms = call.mode & 0o7777 & (byAcl ? 0o7777 : ~maker.umask);
    const openAs = flags & ~LOOKUP_FLAGS;
    let fd: number;
    try {
      fd = maker.asWorker
        ? createAsCaller(dir, r.name, openAs, perms, byAcl)
        : openIn(broker, dir, r.name, openAs | O.O_CREAT | O.O_EXCL, perms);
    } finally {
      close(dir);
    }
    if (fd < 0) return answer.errno(-fd);
    // The reaper's umask is not the caller's. The mode is set as the caller
    // would set it, so a set-group-ID bit the kernel clears for it (no
    // CAP_FSETID, not in the file's group: mode_strip_sgid() at the create,
    // setattr_should_drop_sgid() on chmod) is cleared here too. A default
    // ACL of the directory made the caller's mode already (no umask).
    if (!maker.asWorker && !byAcl) {
      const moded = setMode(broker, maker, fd, perms);
      if (moded < 0) {
        close(fd);
        return answer.errno(-moded);
      }
    }
    session.changed = true;
    return inject(fd, flags);
  }
  if (exclusiveCreate(flags)) return answer.errno('EEXIST');
  if (r.kind === 'symlink') {
    // O_NOFOLLOW on a symlink (open(2)); an O_PATH of the link itself, where
    // the kernel finds the same one, is the kernel's.
    if ((flags & O.O_PATH) !== 0 && r.pure) return answer.continue();
    return answer.errno('ELOOP');
  }
  if (r.kind === 'directory') {
    if (accmode !== O.O_RDONLY || (flags & O.O_CREAT) !== 0) return answer.errno('EISDIR');
    const changed = r.upper >= 0 && (r.rel.length > 0 || session.changed);
    if (!changed && r.pure) return answer.continue();
    // An O_PATH descriptor cannot be injected (seccomp_notify_addfd() takes
    // its file with fget, which skips O_PATH files): a directory is opened
    // for reading instead, which serves every use of an O_PATH one.
    // By its name in its parent, as the kernel opens it (`.` inside it would
    // need search permission on it).
    const dirFlags = (flags & ~(LOOKUP_FLAGS | O_ACCMODE)) | O.O_RDONLY | O.O_DIRECTORY;
    const fd =
      r.rel.length === 0
        ? broker.openat(changed ? r.upper : r.lower, Buffer.from('.'), dirFlags)
        : openIn(broker, changed ? r.parent!.upper : r.parent!.lower, r.name, dirFlags);
    if (fd < 0) return answer.errno(-fd);
    return inject(fd, flags);
  }
  if ((flags & O.O_DIRECTORY) !== 0) return answer.errno('ENOTDIR');
  const pathOnly = (flags & O.O_PATH) !== 0;
  const writes = !pathOnly && (accmode !== O.O_RDONLY || (flags & O.O_TRUNC) !== 0);
  // O_PATH: opened for reading (see above); a file the caller may not read
  // then fails where the kernel's O_PATH would not.
  const openAs = pathOnly ? O.O_RDONLY : flags & ~LOOKUP_FLAGS;
  if (r.side === 'upper') {
    const fd = openIn(broker, r.parent!.upper, r.name, openAs);
    if (fd < 0) return answer.errno(-fd);
    if (writes) session.changed = true;
    return inject(fd, flags);
  }
  if (!writes) {
    if (r.pure) return answer.continue();
    const fd = openIn(broker, r.parent!.lower, r.name, openAs);
    if (fd < 0) return answer.errno(-fd);
    return inject(fd, flags);
  }
  // A write to a file of the lower: the kernel's permission check on it
  // (the caller's credentials, no capabilities), then a copy in the upper.
  const allowed = access(broker, r.lower, accmode === O.O_RDWR ? R_OK | W_OK : W_OK);
  if (allowed < 0) return answer.errno(-allowed);
  const copy = copyUp(session.workdir, broker, r, (flags & O.O_TRUNC) !== 0);
  if (typeof copy === 'number') return answer.errno(-copy);
  session.changed = true;
  try {
    const fd = openIn(broker, copy.dir, r.name, openAs);
    if (fd < 0) return answer.errno(-fd);
    return inject(fd, flags);
  } finally {
    close(copy.fd);
    close(copy.dir);
  }
}

/**
 * O_TMPFILE in a directory of the workdir: an unnamed file in the layer's
 * directory there, made by the reaper after the kernel's check of write
 * and search permission on the directory the caller sees (vfs_tmpfile()
 * in fs/namei.c). linkat(fd, "", …, AT_EMPTY_PATH) gives it a name in the
 * layer (onLink); unnamed, it goes with its last descriptor.
 */
function tmpfileIn(ctx: Ctx, session: Session, r: Inside, call: OpenCall): Answer {
  const { flags } = call;
  // build_open_flags() refuses these before any lookup.
  if ((flags & O_ACCMODE) === O.O_RDONLY || (flags & O.O_CREAT) !== 0) return answer.continue();
  if (r.errno !== 0) return answer.errno(r.errno);
  if (r.kind !== 'directory') return answer.errno('ENOTDIR');
  const broker = brokerOf(ctx);
  const may = mayChange(broker, r.fd);
  if (may < 0) return answer.errno(-may);
  const dir = upperDir(session.workdir, broker, r.rel);
  if (dir < 0) return answer.errno(-dir);
  const maker = makerOf(ctx);
  const perms = call.mode & 0o7777 & ~maker.umask;
  let fd: number;
  try {
    fd = broker.openat(dir, Buffer.from('.'), flags & ~(O.O_NOFOLLOW | O.O_PATH), perms);
  } finally {
    close(dir);
  }
  if (fd < 0) return answer.errno(-fd);
  const moded = setMode(broker, maker, fd, perms);
  if (moded < 0) {
    close(fd);
    return answer.errno(-moded);
  }
  return inject(fd, flags);
}

/**
 * The mode of a file the reaper just made, set as its caller: by the reaper
 * (the sandbox's ids and groups, no capability) for a caller with none, as
 * a sandbox runs; else by this thread with the caller's capabilities. A
 * mode already right is left alone (an fchmod is an IN_ATTRIB event the
 * kernel's create has not). 0 or -errno.
 */
function setMode(broker: OnBehalf, maker: Maker, fd: number, perms: number): number {
  if ((fstatSync(fd).mode & 0o7777) === perms) return 0;
  if (maker.capEff === 0n) return chmodFd(broker, fd, perms);
  const set = callAsCaller(maker.capEff, () => trySyscall('fchmod', fd, perms));
  return set === null ? -ERRNO.EPERM : set.value;
}

/** An open that neither writes, truncates nor makes anything (O_PATH aside: accmode O_RDONLY). */
function readsOnly(flags: number): boolean {
  return (
    (flags & O_ACCMODE) === O.O_RDONLY && (flags & (O.O_CREAT | O.O_TRUNC | O.__O_TMPFILE)) === 0
  );
}

function opensForWriting(flags: number): boolean {
  return (flags & O.O_PATH) === 0 && (flags & O_ACCMODE) !== O.O_RDONLY;
}

function exclusiveCreate(flags: number): boolean {
  return (flags & O.O_CREAT) !== 0 && (flags & O.O_EXCL) !== 0;
}
