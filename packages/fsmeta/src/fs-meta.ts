// Metadata changes as a handler module of @sandlock/dispatch. Landlock does
// not mediate chmod, chown, utimes or extended attributes: a sandboxed program could
// change them on any file it owns, granted or not (a sandbox started by root
// owns root's files). This module is notified of every such call and does it
// on behalf of the caller, on an object it pinned, after checking the object
// against the policy's writable trees. The supervisor imports this file in its
// worker threads by URL (FS_META_MODULE): no side effects at import.
//
// Decided on copies (README of @sandlock/dispatch): the caller's arguments
// (path, times, name, value) are copied once; the path is walked as the
// kernel walks it for the caller and the object opened O_PATH (pinned), the
// pinned object's path checked, and the change made through
// /proc/self/fd/<pinned>: a thread rewriting the path after the check changes
// nothing the check did not see. A descriptor call is made on the duplicate
// that was checked, never by the caller's number, which another of its
// threads may point at another file meanwhile (dup2). The walk's lookups and
// the change take the caller's file-system ids, groups and capabilities.
import { fstatSync, readlinkSync } from 'node:fs';
import {
  type Answer,
  answer,
  defineModule,
  type HandlerContext,
  int,
  uint,
} from '@sandlock/dispatch/module';
import { canonical, type ModulePolicy } from '@sandlock/policy';
import { metadataCalls } from '@sandlock/seccomp';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  type CallerIds,
  callAsCaller,
  close,
  credentialsOf,
  ERRNO,
  F_GET_SEALS,
  hostArch,
  openFlags,
  PATH_MAX,
  readCStringBytes,
  remoteAccess,
  S_IFLNK,
  S_IFMT,
  SysError,
  trySyscall,
  Walked,
  XATTR_ARGS_SIZE_VER0,
  XATTR_NAME_MAX,
  XATTR_SIZE_MAX,
} from '@sandlock/sys';
import { writableByPolicy } from './policy.js';

/** The calls of this module that exist on this architecture (aarch64 has no chmod, utime…). */
export const FS_META_SYSCALLS: readonly string[] = metadataCalls();

const O = openFlags(hostArch());
/** A name and its NUL. */
const XATTR_NAME_BUFFER = XATTR_NAME_MAX + 1;
const PAGE_SIZE = 4096;

/** Thrown while copying: the call fails with this errno (or is gone). */
class Refused extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}

/** What the call changes on. */
type Target =
  | { readonly kind: 'fd'; readonly fd: number }
  | {
      readonly kind: 'path';
      readonly dirfd: number;
      /** The path's bytes; '' with AT_EMPTY_PATH: the dirfd's object itself. */
      readonly path: Buffer;
      readonly noFollow: boolean;
      readonly emptyPath: boolean;
    };

/** The change, with every caller buffer copied. */
type Change =
  | { readonly kind: 'chmod'; readonly mode: number }
  /** struct timespec[2], or null for now. */
  | { readonly kind: 'utimens'; readonly times: Buffer | null }
  | {
      readonly kind: 'setxattr';
      readonly name: Buffer;
      readonly value: Buffer;
      readonly size: number;
      readonly flags: number;
    }
  | { readonly kind: 'removexattr'; readonly name: Buffer }
  /** -1 (0xffffffff) leaves the id as it is. */
  | { readonly kind: 'chown'; readonly uid: number; readonly gid: number };

interface Call {
  readonly target: Target;
  readonly change: Change;
  /** chmod of a symlink itself (fchmodat2 with AT_SYMLINK_NOFOLLOW): the kernel says EOPNOTSUPP. */
  readonly noSymlinkChmod?: boolean;
}

/** Copies `length` bytes of the caller's memory (ctx.read checks the id after reading). */
function copy(ctx: HandlerContext, address: bigint, length: number): Buffer {
  if (length === 0) return Buffer.alloc(0);
  return Buffer.from(ctx.read(address, length));
}

/** A NUL-terminated string of the caller, as bytes; `tooLong` when it has no NUL within `max`. */
function copyString(ctx: HandlerContext, address: bigint, max: number, tooLong: number): Buffer {
  if (address === 0n) throw new Refused(ERRNO.EFAULT);
  try {
    return readCStringBytes(ctx.pid, address, max - 1);
  } catch (error) {
    if (error instanceof SysError && error.errno === ERRNO.ENAMETOOLONG) {
      throw new Refused(tooLong);
    }
    throw new Refused(ERRNO.EFAULT);
  }
}

function copyPath(ctx: HandlerContext, address: bigint): Buffer {
  return copyString(ctx, address, PATH_MAX, ERRNO.ENAMETOOLONG);
}

/** An xattr name: empty or longer than XATTR_NAME_MAX is ERANGE (fs/xattr.c). */
function copyName(ctx: HandlerContext, address: bigint): Buffer {
  const name = copyString(ctx, address, XATTR_NAME_BUFFER, ERRNO.ERANGE);
  if (name.length === 0) throw new Refused(ERRNO.ERANGE);
  return name;
}

/** The at-flags a call accepts; any other bit is EINVAL. */
function atFlags(flags: number, allowed: number): number {
  if ((flags & ~allowed) !== 0) throw new Refused(ERRNO.EINVAL);
  return flags;
}

function pathTarget(ctx: HandlerContext, dirfd: number, address: bigint, flags: number): Target {
  const path = copyPath(ctx, address);
  const emptyPath = path.length === 0 && (flags & AT_EMPTY_PATH) !== 0;
  if (path.length === 0 && !emptyPath) throw new Refused(ERRNO.ENOENT);
  return { kind: 'path', dirfd, path, noFollow: (flags & AT_SYMLINK_NOFOLLOW) !== 0, emptyPath };
}

/** struct timeval[2] as struct timespec[2]; a microsecond count out of range is EINVAL (utimes(2)). */
function timevals(ctx: HandlerContext, address: bigint): Buffer | null {
  if (address === 0n) return null;
  const tv = copy(ctx, address, 32);
  const ts = Buffer.alloc(32);
  for (const i of [0, 1]) {
    const usec = tv.readBigInt64LE(16 * i + 8);
    if (usec < 0n || usec >= 1_000_000n) throw new Refused(ERRNO.EINVAL);
    ts.writeBigInt64LE(tv.readBigInt64LE(16 * i), 16 * i);
    ts.writeBigInt64LE(usec * 1000n, 16 * i + 8);
  }
  return ts;
}

function setxattrChange(
  ctx: HandlerContext,
  name: bigint,
  value: bigint,
  size: number,
  flags: number,
): Change {
  const copiedName = copyName(ctx, name);
  if (size > XATTR_SIZE_MAX) throw new Refused(ERRNO.E2BIG);
  const copiedValue = size > 0 ? copy(ctx, value, size) : Buffer.alloc(0);
  return { kind: 'setxattr', name: copiedName, value: copiedValue, size, flags };
}

/** The call's arguments, copied once. */
function readCall(ctx: HandlerContext): Call {
  const a = ctx.args;
  switch (ctx.syscall) {
    case 'chmod':
      return {
        target: pathTarget(ctx, AT_FDCWD, a[0]!, 0),
        change: { kind: 'chmod', mode: uint(a[1]) & 0xffff },
      };
    case 'fchmod':
      return {
        target: { kind: 'fd', fd: int(a[0]) },
        change: { kind: 'chmod', mode: uint(a[1]) & 0xffff },
      };
    case 'fchmodat':
      return {
        target: pathTarget(ctx, int(a[0]), a[1]!, 0),
        change: { kind: 'chmod', mode: uint(a[2]) & 0xffff },
      };
    case 'fchmodat2': {
      const flags = atFlags(uint(a[3]), AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH);
      return {
        target: pathTarget(ctx, int(a[0]), a[1]!, flags),
        change: { kind: 'chmod', mode: uint(a[2]) & 0xffff },
        noSymlinkChmod: (flags & AT_SYMLINK_NOFOLLOW) !== 0,
      };
    }
    case 'utime': {
      const target = pathTarget(ctx, AT_FDCWD, a[0]!, 0);
      let times: Buffer | null = null;
      if (a[1] !== 0n) {
        const buf = copy(ctx, a[1]!, 16); // struct utimbuf { actime; modtime; }
        times = Buffer.alloc(32);
        times.writeBigInt64LE(buf.readBigInt64LE(0), 0);
        times.writeBigInt64LE(buf.readBigInt64LE(8), 16);
      }
      return { target, change: { kind: 'utimens', times } };
    }
    case 'utimes':
      return {
        target: pathTarget(ctx, AT_FDCWD, a[0]!, 0),
        change: { kind: 'utimens', times: timevals(ctx, a[1]!) },
      };
    case 'futimesat': {
      // A NULL path changes the dirfd's file (fs/utimes.c, do_utimes).
      const target: Target =
        a[1] === 0n ? { kind: 'fd', fd: int(a[0]) } : pathTarget(ctx, int(a[0]), a[1]!, 0);
      return { target, change: { kind: 'utimens', times: timevals(ctx, a[2]!) } };
    }
    case 'utimensat': {
      const flags = atFlags(uint(a[3]), AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH);
      let target: Target;
      if (a[1] === 0n) {
        // futimens: the dirfd's file; with AT_SYMLINK_NOFOLLOW, EINVAL (do_utimes_fd).
        if ((flags & AT_SYMLINK_NOFOLLOW) !== 0) throw new Refused(ERRNO.EINVAL);
        target = { kind: 'fd', fd: int(a[0]) };
      } else {
        target = pathTarget(ctx, int(a[0]), a[1]!, flags);
      }
      const times = a[2] === 0n ? null : copy(ctx, a[2]!, 32);
      return { target, change: { kind: 'utimens', times } };
    }
    case 'chown':
    case 'lchown':
      return {
        target: pathTarget(
          ctx,
          AT_FDCWD,
          a[0]!,
          ctx.syscall === 'lchown' ? AT_SYMLINK_NOFOLLOW : 0,
        ),
        change: { kind: 'chown', uid: uint(a[1]), gid: uint(a[2]) },
      };
    case 'fchown':
      return {
        target: { kind: 'fd', fd: int(a[0]) },
        change: { kind: 'chown', uid: uint(a[1]), gid: uint(a[2]) },
      };
    case 'fchownat': {
      const flags = atFlags(uint(a[4]), AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH);
      return {
        target: pathTarget(ctx, int(a[0]), a[1]!, flags),
        change: { kind: 'chown', uid: uint(a[2]), gid: uint(a[3]) },
      };
    }
    case 'setxattr':
    case 'lsetxattr':
      return {
        target: pathTarget(
          ctx,
          AT_FDCWD,
          a[0]!,
          ctx.syscall === 'lsetxattr' ? AT_SYMLINK_NOFOLLOW : 0,
        ),
        change: setxattrChange(ctx, a[1]!, a[2]!, Number(a[3] ?? 0n), uint(a[4])),
      };
    case 'fsetxattr':
      return {
        target: { kind: 'fd', fd: int(a[0]) },
        change: setxattrChange(ctx, a[1]!, a[2]!, Number(a[3] ?? 0n), uint(a[4])),
      };
    case 'removexattr':
    case 'lremovexattr':
      return {
        target: pathTarget(
          ctx,
          AT_FDCWD,
          a[0]!,
          ctx.syscall === 'lremovexattr' ? AT_SYMLINK_NOFOLLOW : 0,
        ),
        change: { kind: 'removexattr', name: copyName(ctx, a[1]!) },
      };
    case 'fremovexattr':
      return {
        target: { kind: 'fd', fd: int(a[0]) },
        change: { kind: 'removexattr', name: copyName(ctx, a[1]!) },
      };
    case 'setxattrat': {
      const flags = atFlags(uint(a[2]), AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH);
      const usize = Number(a[5] ?? 0n);
      if (usize < XATTR_ARGS_SIZE_VER0) throw new Refused(ERRNO.EINVAL);
      if (usize > PAGE_SIZE) throw new Refused(ERRNO.E2BIG);
      // copy_struct_from_user: a larger struct's extra bytes must be zero.
      const args = copy(ctx, a[4]!, usize);
      if (args.subarray(XATTR_ARGS_SIZE_VER0).some((byte) => byte !== 0)) {
        throw new Refused(ERRNO.E2BIG);
      }
      const target = atTarget(ctx, int(a[0]), a[1]!, flags);
      return {
        target,
        change: setxattrChange(
          ctx,
          a[3]!,
          args.readBigUInt64LE(0),
          args.readUInt32LE(8),
          args.readUInt32LE(12),
        ),
      };
    }
    case 'removexattrat': {
      const flags = atFlags(uint(a[2]), AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH);
      const target = atTarget(ctx, int(a[0]), a[1]!, flags);
      return { target, change: { kind: 'removexattr', name: copyName(ctx, a[3]!) } };
    }
    default:
      throw new Refused(ERRNO.EPERM);
  }
}

/** setxattrat/removexattrat: a NULL path with AT_EMPTY_PATH is the dirfd's object. */
function atTarget(ctx: HandlerContext, dirfd: number, address: bigint, flags: number): Target {
  if (address === 0n && (flags & AT_EMPTY_PATH) !== 0) {
    return { kind: 'path', dirfd, path: Buffer.alloc(0), noFollow: false, emptyPath: true };
  }
  return pathTarget(ctx, dirfd, address, flags);
}

/** What every lookup and change made on a caller's behalf takes (callAsCaller). */
interface Caller {
  readonly capEff: bigint;
  readonly ids: CallerIds;
}

/**
 * The caller's file-system ids, groups and effective capabilities
 * (/proc/<tid>/status): made with them on this thread, a change is judged
 * by the kernel's own checks as the caller's (owner-only chmod, utimes,
 * xattr permissions, CAP_FOWNER). Null when they cannot be read.
 */
function callerOf(ctx: HandlerContext): Caller | null {
  const status = credentialsOf(readText(`/proc/${ctx.pid}/status`) ?? '');
  if (status === null) return null;
  const ids: CallerIds = {
    fsuid: Number(status.fsuid),
    fsgid: Number(status.fsgid),
    groups: status.groups === '' ? [] : status.groups.split(/\s+/).map(Number),
  };
  if (![ids.fsuid, ids.fsgid, ...ids.groups].every(Number.isSafeInteger)) return null;
  return { capEff: status.capEff, ids };
}

const textBuffer = Buffer.alloc(8192);

function readText(path: string): string | null {
  const fd = trySyscall('openat', AT_FDCWD, Buffer.from(`${path}\0`), O.O_RDONLY | O.O_CLOEXEC, 0);
  if (fd < 0) return null;
  try {
    const length = trySyscall('read', fd, textBuffer, textBuffer.length);
    return length < 0 ? null : textBuffer.toString('latin1', 0, length);
  } finally {
    close(fd);
  }
}

const EMPTY_PATH = Buffer.from([0]);

/** /proc/self/fd/<fd>, NUL-terminated: the pinned object, reached by the supervisor. */
function selfFd(fd: number): Buffer {
  return Buffer.from(`/proc/self/fd/${fd}\0`);
}

/**
 * The target opened O_PATH (pinned), resolved as the kernel would for the
 * caller (ctx.walk: its root, its cwd or dirfd, its /proc/self, magic links
 * of its own sandbox's processes only), the lookups made with the caller's
 * credentials (search permission); -errno on failure. An empty path
 * (AT_EMPTY_PATH) pins the dirfd itself.
 */
function pin(ctx: HandlerContext, target: Target & { kind: 'path' }, caller: Caller): number {
  // CallError(EBADF) for a dirfd that is not open.
  if (target.emptyPath) return ctx.openStart(target.dirfd);
  const walked = ctx.walk(target.path, {
    dirfd: target.dirfd,
    followLast: !target.noFollow,
    asCaller: (walk) => {
      const done = callAsCaller(caller.capEff, walk, caller.ids);
      if (done !== null) return done.value;
      const refused = new Walked();
      refused.errno = ERRNO.EPERM; // the credentials could not be taken
      return refused;
    },
  });
  if (walked.errno !== 0) {
    walked.close();
    return -walked.errno;
  }
  // The object is the caller's to keep; its directory is not needed.
  const fd = walked.fd;
  walked.fd = -1;
  walked.close();
  return fd;
}

/**
 * Whether the pinned object may be changed: its path (readlink of
 * /proc/self/fd/<fd>) lies in a writable tree of the policy and in no denied
 * one. Objects without a path (pipes, sockets, anonymous inodes, memfds) are
 * the sandbox's own.
 */
function allowed(policy: ModulePolicy, fd: number): boolean {
  let link: string;
  let unlinked: boolean;
  try {
    link = readlinkSync(`/proc/self/fd/${fd}`, 'latin1');
    unlinked = fstatSync(fd).nlink === 0;
  } catch {
    return false;
  }
  if (isMemfd(fd, link, unlinked)) return true;
  const { fsWrite, fsDeny, workdir } = policy;
  return writableByPolicy(
    { fsWrite, fsDeny, workdir: workdir === null ? null : canonicalWorkdir(workdir) },
    link,
    unlinked,
  );
}

/** The workdir's canonical path, resolved once per path given. */
const workdirs = new Map<string, string>();

function canonicalWorkdir(workdir: string): string {
  let found = workdirs.get(workdir);
  if (found === undefined) {
    found = canonical(workdir);
    workdirs.set(workdir, found);
  }
  return found;
}

/** The pinned object's path, for a report. */
function pathOf(fd: number): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return `(descriptor ${fd})`;
  }
}

/** A memfd reads as "/memfd:<name> (deleted)": unlinked, and sealable (F_GET_SEALS). */
function isMemfd(fd: number, link: string, unlinked: boolean): boolean {
  if (!unlinked || !link.startsWith('/memfd:') || !link.endsWith(' (deleted)')) return false;
  return trySyscall('fcntl', fd, F_GET_SEALS, 0) >= 0;
}

/** The change on the pinned object: by descriptor for the f* calls (the kernel's checks on it), else through /proc/self/fd. */
function perform(change: Change, fd: number, byDescriptor: boolean): number {
  const path = selfFd(fd);
  switch (change.kind) {
    case 'chmod':
      return byDescriptor
        ? trySyscall('fchmod', fd, change.mode)
        : trySyscall('fchmodat', AT_FDCWD, path, change.mode);
    case 'utimens':
      return byDescriptor
        ? trySyscall('utimensat', fd, null, change.times, 0)
        : trySyscall('utimensat', AT_FDCWD, path, change.times, 0);
    case 'setxattr': {
      const name = Buffer.concat([change.name, Buffer.from([0])]);
      // A non-empty buffer: koffi passes an empty one's address as NULL.
      const value = change.value.length > 0 ? change.value : Buffer.alloc(1);
      return byDescriptor
        ? trySyscall('fsetxattr', fd, name, value, change.size, change.flags)
        : trySyscall('setxattr', path, name, value, change.size, change.flags);
    }
    case 'removexattr': {
      const name = Buffer.concat([change.name, Buffer.from([0])]);
      return byDescriptor
        ? trySyscall('fremovexattr', fd, name)
        : trySyscall('removexattr', path, name);
    }
    case 'chown':
      // The pinned object itself (AT_EMPTY_PATH): a symlink pinned for lchown stays one.
      return byDescriptor
        ? trySyscall('fchown', fd, change.uid, change.gid)
        : trySyscall('fchownat', fd, EMPTY_PATH, change.uid, change.gid, AT_EMPTY_PATH);
  }
}

/**
 * The file behind the caller's descriptor: a duplicate (pidfd_getfd), or
 * where a seccomp profile refuses that (a container's default), the file
 * opened anew O_PATH through /proc/<tid>/fd/N, changed by path: the same
 * file, checked against the policy as the duplicate would be. An O_PATH
 * descriptor of the caller's is refused as the f* call refuses it (EBADF),
 * read from its fdinfo.
 */
function callerFile(ctx: HandlerContext<ModulePolicy>, fd: number): number {
  if (remoteAccess().pidfdGetfd) return ctx.getFd(fd);
  const info = readText(`/proc/${ctx.pid}/fdinfo/${fd}`);
  const flags = info === null ? null : /^flags:\s*([0-7]+)/m.exec(info);
  if (!ctx.valid()) throw new Refused(ERRNO.ESRCH);
  if (flags === null || (Number.parseInt(flags[1]!, 8) & O.O_PATH) !== 0) {
    throw new Refused(ERRNO.EBADF);
  }
  return ctx.openStart(fd);
}

function onMetadata(ctx: HandlerContext<ModulePolicy>): Answer {
  let call: Call;
  try {
    call = readCall(ctx);
  } catch (error) {
    if (error instanceof Refused)
      return ctx.valid() ? answer.errno(error.errno) : answer.continue();
    throw error;
  }
  const caller = callerOf(ctx);
  if (!ctx.valid()) return answer.continue(); // gone: nothing is answered
  if (caller === null) {
    ctx.refused({ what: ctx.syscall, rule: "fs-meta: the caller's credentials cannot be read" });
    return answer.errno(ERRNO.EPERM);
  }
  const { target } = call;
  let fd: number;
  try {
    // The caller's descriptor is taken with the supervisor's rights
    // (pidfd_getfd checks real ids); the walk's lookups are the caller's.
    fd = target.kind === 'fd' ? callerFile(ctx, target.fd) : pin(ctx, target, caller);
  } catch (error) {
    if (error instanceof Refused)
      return ctx.valid() ? answer.errno(error.errno) : answer.continue();
    throw error;
  }
  if (fd < 0) return answer.errno(-fd);
  try {
    if (!allowed(ctx.session.policy, fd)) {
      ctx.refused({
        what: () => `${ctx.syscall} ${pathOf(fd)}`,
        rule: 'fsWrite: not in a writable tree',
      });
      return answer.errno(ERRNO.EACCES);
    }
    if (call.noSymlinkChmod) {
      const stat = fstatSync(fd);
      if ((stat.mode & S_IFMT) === S_IFLNK) return answer.errno(ERRNO.EOPNOTSUPP);
    }
    // An f* call on the duplicate keeps the kernel's checks on the
    // descriptor (EBADF for O_PATH); a path call (or AT_EMPTY_PATH, or a
    // caller's /proc/self/fd/N) goes through /proc/self/fd of the pinned one.
    const byDescriptor = target.kind === 'fd' && remoteAccess().pidfdGetfd;
    const done = callAsCaller(
      caller.capEff,
      () => perform(call.change, fd, byDescriptor),
      caller.ids,
    );
    return done === null ? answer.errno(ERRNO.EPERM) : answer.fromResult(done.value);
  } finally {
    close(fd);
  }
}

/**
 * On for a sandbox of a root supervisor that may write somewhere (the
 * policy's `mediatesMetadata`: as root, it owns root's files everywhere;
 * as another user, the supervisor can take its ids): its chmod, chown,
 * utimes and extended attribute changes are done on behalf, on objects its policy
 * lets it write. One that may write nowhere has these calls refused by its
 * filter instead (no supervisor).
 */
export default defineModule<unknown, ModulePolicy>({
  name: 'fs-meta',
  syscalls: FS_META_SYSCALLS,
  enabled: (policy) => policy.mediatesMetadata,
  handlers: Object.fromEntries(FS_META_SYSCALLS.map((name) => [name, onMetadata])),
});
