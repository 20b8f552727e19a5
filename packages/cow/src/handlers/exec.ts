// execve and execveat of a program the layer holds (written, copied up,
// renamed in the workdir): the kernel's lookup of the caller's path would
// find the lower's file or nothing, so the call is retargeted to
// execveat(fd, "", argv, envp, AT_EMPTY_PATH) of a descriptor of the
// layer's file (answer.retarget of @sandlock/dispatch). The empty path is
// the NUL that ends the caller's own path string: nothing is written in its
// memory, and a thread that changes that byte meanwhile makes the path
// non-empty, which the kernel resolves against a file's descriptor and
// refuses with ENOTDIR (measured), never another file.
//
// The descriptor is a sealed memfd holding a copy of the program, with its
// mode: the sandbox's Landlock domain has nothing of the layer's store (an
// execveat of the store's file failed with EACCES, measured), and a file of
// no mount is not Landlock's to refuse; the copy is also one the sandbox can
// no longer change between this decision and the exec. The kernel checks
// the caller's right to execute it (the program's mode, owner and group),
// and reads a `#!` line's interpreter in the caller's view.
import { readFileSync } from 'node:fs';
import { type Answer, answer } from '@sandlock/dispatch/module';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  close,
  ERRNO,
  F_ADD_SEALS,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  hostArch,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  MFD_EXEC,
  noAccessReopen,
  openFlags,
  readOnlyReopen,
  STATX_BASIC_STATS,
  trySyscall,
} from '@sandlock/sys';
import {
  type Ctx,
  copyPath,
  int,
  narrowedRefusal,
  resolve,
  type Session,
  sessionOf,
} from '../call.js';
import type { Outside } from '../resolve.js';
import { kindOf, openThroughLayer, throughLayer } from '../through-layer.js';

const O = openFlags(hostArch());
const EMPTY_NAME = Buffer.from('\0');
const NAME = Buffer.from('sandlock-program\0');

export function onExec(ctx: Ctx): Answer {
  const a = ctx.args;
  const at = ctx.syscall === 'execveat';
  const pathname = at ? a[1]! : a[0]!;
  const flags = at ? int(a[4]) : 0;
  const path = copyPath(ctx, pathname);
  // A descriptor's own file (fexecve): what it refers to was decided at its open.
  if (path.length === 0) return answer.continue();
  const session = sessionOf(ctx);
  // Under an emulated chroot, its module (after this one) runs every
  // program: it finds the program, its `#!` interpreter and its loader in
  // the layer's merged view (LAYER_VIEW, layer-view.ts), and gives a script
  // the arguments chroot(2) gives, which a retarget made here could not.
  if (session.workdir.chroot) return answer.continue();
  const dirfd = at ? int(a[0]) : AT_FDCWD;
  const resolved = resolve(ctx, session, path, dirfd, (flags & AT_SYMLINK_NOFOLLOW) === 0);
  if (resolved.where === 'outside') {
    try {
      if (!throughLayer(resolved)) return answer.continue();
      return execOutside(ctx, session, resolved, { pathname, path, dirfd, at });
    } finally {
      resolved.walked.close();
    }
  }
  try {
    if (resolved.errno !== 0) return answer.errno(resolved.errno);
    if (resolved.kind === 'symlink') return answer.errno('ELOOP'); // AT_SYMLINK_NOFOLLOW
    if (resolved.kind !== 'file') return answer.errno('EACCES');
    if (resolved.pure) return answer.continue();
    const narrowed = narrowedRefusal(ctx);
    if (narrowed !== null) return narrowed;
    const copy = programCopy(resolved.fd);
    if (copy < 0) return answer.errno(-copy);
    // Close-on-exec, but for a script: execveat of an empty path on a
    // close-on-exec descriptor marks the exec BINPRM_FLAGS_PATH_INACCESSIBLE
    // (alloc_bprm(), fs/exec.c), and load_script() (fs/binfmt_script.c)
    // then fails with ENOENT, since the interpreter it starts is handed
    // "/dev/fd/N" to open. So a script's interpreter inherits the
    // descriptor, a read-only one of the sealed copy (the memfd itself is
    // read-write). A binfmt_misc format is refused the same way unless it
    // opens the binary itself ('O'); only `#!` is recognized here.
    const script = startsWithShebang(copy);
    // execveat of a relative path from a close-on-exec dirfd is
    // BINPRM_FLAGS_PATH_INACCESSIBLE too (alloc_bprm(), fs/exec.c): a
    // script is then ENOENT, as load_script() answers.
    if (script && dirfd !== AT_FDCWD && path[0] !== 0x2f && closeOnExec(ctx.pid, dirfd)) {
      close(copy);
      return answer.errno('ENOENT');
    }
    // Read-only when everyone may read the program: a script's interpreter
    // reads it through /dev/fd/N, an emulated chroot the ELF header to find
    // the root's loader.
    const fd = handedOver(copy);
    if (fd < 0) return answer.errno(-fd);
    const cloexec = !script;
    const argv = at ? a[2]! : a[1]!;
    const envp = at ? a[3]! : a[2]!;
    const end = pathname + BigInt(path.length);
    return answer.retarget('execveat', ['fd', end, argv, envp, AT_EMPTY_PATH], { fd, cloexec });
  } finally {
    resolved.close();
  }
}

/**
 * exec of a program reached through a link of the layer to outside the
 * workdir: execveat(fd, "", AT_EMPTY_PATH) of the reaper's descriptor of it
 * (through-layer.ts), by the caller's own thread. The exec opens that file
 * again for the caller (do_open_execat() in fs/exec.c): its execute
 * permission and the sandbox's Landlock domain are the kernel's to check.
 * The descriptor is read-only (ADDFD takes no O_PATH one): a program the
 * sandbox may execute but not read is EACCES here.
 */
function execOutside(
  ctx: Ctx,
  session: Session,
  outside: Outside & { readonly throughLayer: string },
  call: { pathname: bigint; path: Buffer; dirfd: number; at: boolean },
): Answer {
  const narrowed = narrowedRefusal(ctx);
  if (narrowed !== null) return narrowed;
  const fd = openThroughLayer(ctx, session, outside, O.O_RDONLY);
  if (fd < 0) return answer.errno(-fd);
  const kind = kindOf(fd);
  if (kind !== 'file') {
    close(fd);
    return answer.errno(
      kind === 'directory' ? 'EACCES' : typeof kind === 'number' ? -kind : 'EACCES',
    );
  }
  // A script's interpreter opens /dev/fd/N: not close-on-exec (see onExec).
  const script = startsWithShebang(fd);
  if (
    script &&
    call.dirfd !== AT_FDCWD &&
    call.path[0] !== 0x2f &&
    closeOnExec(ctx.pid, call.dirfd)
  ) {
    close(fd);
    return answer.errno('ENOENT');
  }
  const a = ctx.args;
  const argv = call.at ? a[2]! : a[1]!;
  const envp = call.at ? a[3]! : a[2]!;
  const end = call.pathname + BigInt(call.path.length);
  return answer.retarget('execveat', ['fd', end, argv, envp, AT_EMPTY_PATH], {
    fd,
    cloexec: !script,
  });
}

const SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
const statBuffer = Buffer.alloc(256);

/** A sealed memfd copy of the file `found` (O_PATH) refers to, with its permission bits; or -errno. */
function programCopy(found: number): number {
  const source = trySyscall('openat', found, EMPTY_NAME, O.O_RDONLY | O.O_CLOEXEC, 0);
  // O_PATH descriptors cannot be opened again by openat(""): through /proc.
  const file = source >= 0 ? source : procReopen(found);
  if (file < 0) return file;
  try {
    const got = trySyscall('statx', file, EMPTY_NAME, AT_EMPTY_PATH, STATX_BASIC_STATS, statBuffer);
    if (got < 0) return got;
    const mode = statBuffer.readUInt16LE(28) & 0o7777;
    const uid = statBuffer.readUInt32LE(20);
    const gid = statBuffer.readUInt32LE(24);
    let size = Number(statBuffer.readBigUInt64LE(40));
    let memfd = trySyscall('memfd_create', NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    // Before Linux 6.3 there is no MFD_EXEC, and every memfd may be executed.
    if (memfd === -ERRNO.EINVAL)
      memfd = trySyscall('memfd_create', NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (memfd < 0) return memfd;
    let result = 0;
    while (size > 0 && result >= 0) {
      result = trySyscall('sendfile', memfd, file, 0, Math.min(size, 1 << 30));
      if (result === 0) break;
      if (result > 0) size -= result;
    }
    // The program's owner and group, or the kernel checks the caller's
    // right to run it, read it (would_dump()) and reopen it (/proc/self/exe)
    // against the supervisor's: a user in a group the mode refuses would be
    // "other" to the copy. A supervisor that may not give it them refuses.
    if (result >= 0) result = ownedAs(memfd, uid, gid);
    if (result >= 0) result = trySyscall('fchmod', memfd, mode & 0o777);
    if (result >= 0) result = trySyscall('fcntl', memfd, F_ADD_SEALS, SEALS);
    if (result < 0) {
      close(memfd);
      return result;
    }
    return memfd;
  } finally {
    close(file);
  }
}

/** fchown of the memfd `fd` to `uid` and `gid` where it has other ids; 0 or -errno (EACCES for a chown refused). */
function ownedAs(fd: number, uid: number, gid: number): number {
  const got = trySyscall('statx', fd, EMPTY_NAME, AT_EMPTY_PATH, STATX_BASIC_STATS, statBuffer);
  if (got < 0) return got;
  if (statBuffer.readUInt32LE(20) === uid && statBuffer.readUInt32LE(24) === gid) return 0;
  const owned = trySyscall('fchown', fd, uid, gid);
  return owned === -ERRNO.EPERM ? -ERRNO.EACCES : owned;
}

/**
 * The memfd `copy` (closed) reopened through /proc for the caller, or
 * -errno: read-only when its mode lets every user read it; otherwise a
 * descriptor that neither reads nor writes, since the supervisor read the
 * program and a thread of the caller could read the descriptor before the
 * exec ends (a reopen through /proc still checks the copy's mode: an
 * execute-only program stays unreadable, as the kernel keeps it).
 */
function handedOver(copy: number): number {
  try {
    const got = trySyscall('statx', copy, EMPTY_NAME, AT_EMPTY_PATH, STATX_BASIC_STATS, statBuffer);
    const worldReadable = got >= 0 && (statBuffer.readUInt16LE(28) & 0o004) !== 0;
    return worldReadable ? readOnlyReopen(copy) : noAccessReopen(copy);
  } catch (error) {
    return -((error as { errno?: number }).errno ?? ERRNO.EACCES);
  } finally {
    close(copy);
  }
}

function procReopen(found: number): number {
  return trySyscall(
    'openat',
    AT_FDCWD,
    Buffer.from(`/proc/self/fd/${found}\0`),
    O.O_RDONLY | O.O_CLOEXEC,
    0,
  );
}

/** Whether the caller's descriptor is close-on-exec (its fdinfo flags); true when they cannot be read. */
function closeOnExec(tid: number, fd: number): boolean {
  try {
    const info = readFileSync(`/proc/${tid}/fdinfo/${fd}`, 'latin1');
    const flags = /^flags:\s+([0-7]+)$/m.exec(info);
    return flags === null || (Number.parseInt(flags[1]!, 8) & O.O_CLOEXEC) !== 0;
  } catch {
    return true;
  }
}

function startsWithShebang(fd: number): boolean {
  const head = Buffer.alloc(2);
  return trySyscall('pread64', fd, head, 2, 0) === 2 && head[0] === 0x23 && head[1] === 0x21;
}
