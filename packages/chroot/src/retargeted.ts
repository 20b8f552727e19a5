// chdir and execve inside the root: neither can be made on the sandbox's
// behalf (the cwd is the caller's own, an exec replaces the caller), and the
// caller's memory is not rewritten. The directory or program is found
// inside the root and opened by the reaper, and the caller's call is
// retargeted (the retarget answer of @sandlock/dispatch: a transient ptrace
// makes the caller's thread run another call instead, with integer
// arguments) to fchdir or execveat(AT_EMPTY_PATH) of the injected
// descriptor.

import { readFileSync, readlinkSync } from 'node:fs';
import {
  type Answer,
  answer,
  CallError,
  chdirBeneath,
  type ExecArg,
} from '@sandlock/dispatch/module';
import {
  AT_EACCESS,
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  close,
  ERRNO,
  F_GETFL,
  fcntl,
  hostArch,
  openFlags,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
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
  sessionOf,
  threadGroup,
  uint,
} from './call.js';
import {
  execOnlyCopy,
  interpreterOf,
  MAX_DEPTH,
  patchedCopy,
  patchedScript,
  sealedCopy,
  shebangOf,
} from './exec.js';
import { execWalk } from './layer-walk.js';
import { execDescriptorOf } from './own-fd.js';
import { throughProcRoot } from './proc-root.js';
import type { Found } from './root.js';

const O = openFlags(hostArch());
const X_OK = 1;
const O_ACCMODE = 3;

/**
 * The reaper, for an exec too when the caller narrowed itself: execveat of
 * the descriptor opens the file again in the caller (do_open_execat(),
 * fs/exec.c), where its own domain checks the execute right.
 */
function execBroker(ctx: Ctx) {
  const exec = ctx.syscall === 'execve' || ctx.syscall === 'execveat';
  return brokerOf(exec ? { session: ctx.session } : ctx);
}

function reaperOpen(ctx: Ctx, r: Found, flags: number): number {
  const broker = execBroker(ctx);
  if (r.parent >= 0)
    return broker.openat(r.parent, Buffer.from(r.name, 'latin1'), flags | O.O_NOFOLLOW);
  return broker.openat(r.fd, Buffer.from('.'), flags);
}

export function onChdir(ctx: Ctx): Answer {
  const session = sessionOf(ctx);
  const address = ctx.args[0]!;
  const path = copyPath(ctx, address);
  if (path.length === 0) return answer.errno(ERRNO.ENOENT);
  const r = resolve(ctx, session, path, AT_FDCWD, { followLast: true });
  try {
    if (r.proc) return answer.errno(ERRNO.EACCES);
    if (r.errno !== 0) return answer.errno(r.errno);
    if (r.mode !== S_IFDIR) return answer.errno(ERRNO.ENOTDIR);
    const fd = reaperOpen(ctx, r, O.O_RDONLY | O.O_DIRECTORY | O.O_CLOEXEC);
    if (fd === -ERRNO.EACCES) return searchOnly(ctx, r, path, address);
    if (fd < 0) return answer.errno(-fd);
    return answer.retarget('fchdir', ['fd'], { fd });
  } finally {
    r.close();
  }
}

/**
 * chdir to a directory the caller may search but not read (ADDFD takes no
 * O_PATH file, and a read-only open is refused): the caller's own
 * openat(dir, name, O_PATH | O_DIRECTORY) then fchdir of what it returned,
 * one retarget running both. `name` is the last name of the caller's own
 * path string (a name, `..`, a symlink), `dir` what the path before it
 * names inside the root (injected; the caller's cwd for a single name).
 * The kernel's lookup of `name` is its own (from the host's view: `..` at
 * a mount's top, an absolute symlink go elsewhere) and takes the string
 * from the caller's memory, which another thread could change meanwhile:
 * the descriptor it returns must be the directory found (device and inode)
 * or fchdir does not run (EACCES).
 */
function searchOnly(ctx: Ctx, r: Found, path: Buffer, address: bigint): Answer {
  const text = path.toString('latin1').replace(/(.)\/+$/, '$1');
  const slash = text.lastIndexOf('/');
  const name = text.slice(slash + 1);
  if (name === '' || name === '.') return answer.errno(ERRNO.EACCES);
  const searchable = mayExecute(ctx, r);
  if (searchable < 0) return answer.errno(-searchable);
  const before = slash < 0 ? '.' : slash === 0 ? '/' : text.slice(0, slash);
  const base = resolve(ctx, sessionOf(ctx), Buffer.from(before, 'latin1'), AT_FDCWD, {
    followLast: true,
  });
  let dir: number;
  try {
    if (base.errno !== 0 || base.proc || base.mode !== S_IFDIR) return answer.errno(ERRNO.EACCES);
    dir = reaperOpen(ctx, base, O.O_RDONLY | O.O_DIRECTORY | O.O_CLOEXEC);
  } finally {
    base.close();
  }
  if (dir < 0) return answer.errno(ERRNO.EACCES);
  const flags = O.O_PATH | O.O_DIRECTORY | O.O_CLOEXEC;
  return chdirBeneath(ctx.pid, dir, r.fd, address + BigInt(slash + 1), flags);
}

/** The reaper's X_OK check of a file the walk found (DAC, a noexec mount): 0 or -errno. */
function mayExecute(ctx: Ctx, r: Found): number {
  return reaper(brokerOf(ctx), 'faccessat2', (name) => [
    { fd: r.fd },
    name(''),
    X_OK,
    AT_EMPTY_PATH | AT_EACCESS,
  ]).result;
}

/** A regular file the walk found, opened for reading by the reaper: pushed to `opened`, or -errno. */
function openFile(ctx: Ctx, r: Found, opened: number[]): number {
  if (r.mode === S_IFLNK) return -ERRNO.ELOOP;
  if (r.mode !== S_IFREG) return -ERRNO.EACCES;
  const fd = reaperOpen(ctx, r, O.O_RDONLY | O.O_CLOEXEC);
  if (fd >= 0) opened.push(fd);
  return fd;
}

/**
 * What to execute for the ELF `exe`: the file itself (the
 * kernel checks it), or, when it names a loader, its patched copy naming
 * the root's loader, injected close-on-exec (the kernel opens it before it
 * closes those). A copy is checked here, as the kernel would check the
 * file. Pushes what it opens to `opened`; a number < 0 is -errno.
 */
function loadable(ctx: Ctx, exe: Executable, opened: number[]): number {
  const fd = exe.fd;
  const interp = interpreterOf(fd);
  if (interp === null || BY_DESCRIPTOR.test(interp.path)) {
    return exe.layered ? layeredCopy(exe, opened) : fd;
  }
  const allowed = exe.mayExecute();
  if (allowed < 0) return allowed;
  const loader = loaderWalk(ctx, interp.path);
  try {
    if (loader.errno !== 0 || loader.proc) return -ERRNO.ENOENT;
    const loaderFd = runnableLoader(ctx, loader, opened);
    if (loaderFd < 0) return loaderFd;
    const number = ctx.addFd(loaderFd, { cloexec: true });
    const copy = patchedCopy(fd, interp, number);
    if (copy < 0) return -ERRNO.ENOEXEC;
    opened.push(copy);
    return copy;
  } finally {
    loader.close();
  }
}

/** The loader (PT_INTERP) an ELF names, walked inside the root, the layer over it first (from `/`, as before). */
function loaderWalk(ctx: Ctx, path: string): Found {
  const absolute = path.startsWith('/') ? path : `/${path}`;
  return execWalk(ctx, sessionOf(ctx), Buffer.from(absolute, 'latin1'), AT_FDCWD, true);
}

/**
 * The loader the walk found, opened for the kernel to open again by its
 * descriptor: pushed to `opened`, or -errno. One of the layer's runs from
 * its copy, checked here as open_exec() checks it (MAY_EXEC).
 */
function runnableLoader(ctx: Ctx, loader: Found, opened: number[]): number {
  const fd = reaperOpen(ctx, loader, O.O_RDONLY | O.O_CLOEXEC);
  if (fd < 0) return fd;
  opened.push(fd);
  if (!loader.layered) return fd;
  return layeredCopy(found(ctx, loader, fd), opened);
}

/**
 * The sealed copy of a file of the layer over the root, to execute in its
 * place (the sandbox's Landlock domain has nothing of the layer's store):
 * checked here as the kernel would check the file. Pushed to `opened`, or
 * -errno.
 */
function layeredCopy(exe: Executable, opened: number[]): number {
  const allowed = exe.mayExecute();
  if (allowed < 0) return allowed;
  const copy = sealedCopy(exe.fd);
  opened.push(copy);
  return copy;
}

/** A file to execute, opened in this process. */
interface Executable {
  /** Read-only, close-on-exec. */
  readonly fd: number;
  /** Its path inside the root, for /proc/<pid>/exe (null: not known, a memfd). */
  readonly virtual: string | null;
  /** A file of the copy-on-write layer over the root: executed from a copy. */
  readonly layered: boolean;
  /** The caller's X_OK of the file: 0 or -errno. */
  mayExecute(): number;
}

/** The retargeted call: execveat(fd, "", argv, envp, AT_EMPTY_PATH), `empty` the address of an empty string of the caller's. */
interface Call {
  readonly empty: bigint;
  readonly argv: bigint;
  readonly envp: bigint;
  /** The script's name the kernel would give its interpreter (bprm->filename, fs/exec.c); null: the kernel's. */
  readonly filename: string | null;
  /** Whether the caller named the file by a path (its interpreter opens that path). */
  readonly byPath: boolean;
}

/**
 * execveat(fd, "") left to the kernel, with the caller's descriptor `fd`
 * replaced by the file to execute (ADDFD at its number): for a memfd of
 * the caller's (the kernel names it `/dev/fd/N` to a script's interpreter,
 * as this module would).
 */
interface Replace {
  readonly replace: number;
  /** The descriptor's close-on-exec flag, kept. */
  readonly cloexec: boolean;
}

/** A loader or `#!` interpreter named by a descriptor: a copy this module made, or the caller's own descriptor. */
const BY_DESCRIPTOR = /^\/proc\/self\/fd\/\d+(?:\/[^/]+)?$/;

/** One `#!` line followed: its interpreter as written, and whether it has an argument. */
interface Level {
  readonly written: string;
  readonly arg: boolean;
}

/** A script's interpreter made ready for the kernel to open by `name`. */
interface Named {
  readonly name: string;
  /** The program that finally runs, for /proc/<pid>/exe. */
  readonly virtual: string;
  /** The `#!` lines followed, the innermost first. */
  readonly levels: readonly Level[];
}

/**
 * The interpreter a `#!` line names, found inside the root (relative to
 * the cwd when relative, as open_exec() takes it), injected close-on-exec
 * and named by descriptor: the ELF (or its patched copy when it names a
 * loader), or, when it is a script itself, its sealed copy whose own `#!`
 * names its interpreter the same way, as binfmt_script follows it. Pushes
 * what it opens to `opened`; a number is -errno.
 */
function interpreterFor(
  ctx: Ctx,
  script: { interpreter: string; arg: string | null },
  opened: number[],
  depth: number,
): Named | number {
  const session = sessionOf(ctx);
  const interpreter = execWalk(
    ctx,
    session,
    Buffer.from(script.interpreter, 'latin1'),
    AT_FDCWD,
    true,
  );
  try {
    if (interpreter.proc) return -ERRNO.EACCES;
    if (interpreter.errno !== 0) return -interpreter.errno;
    const fd = openFile(ctx, interpreter, opened);
    if (fd < 0) return fd;
    if (depth + 1 > MAX_DEPTH) {
      // The kernel opened it (open_exec() checks MAY_EXEC), then stops: nothing is injected for it.
      const allowed = mayExecute(ctx, interpreter);
      return allowed < 0 ? allowed : -ERRNO.ELOOP;
    }
    const level = { written: script.interpreter, arg: script.arg !== null };
    const inner = shebangOf(fd);
    let file: number;
    let virtual: string;
    let levels: Level[] = [level];
    if (inner !== null) {
      // Its copy is executed: the caller's X_OK on the script is checked here, as open_exec() would.
      const allowed = mayExecute(ctx, interpreter);
      if (allowed < 0) return allowed;
      const next = interpreterFor(ctx, inner, opened, depth + 1);
      if (typeof next === 'number') return next;
      file = patchedScript(fd, inner, next.name);
      opened.push(file);
      virtual = next.virtual;
      levels = [...next.levels, level];
    } else {
      file = loadable(ctx, found(ctx, interpreter, fd), opened);
      if (file < 0) return file;
      virtual = interpreter.path;
    }
    const number = ctx.addFd(file, { cloexec: true });
    const base = script.interpreter.slice(script.interpreter.lastIndexOf('/') + 1);
    const dir = session.interpreters.open(number, base);
    if (dir !== null && dir < 0) return dir;
    let name = `/proc/self/fd/${number}`;
    if (dir !== null) {
      try {
        name = `/proc/self/fd/${ctx.addFd(dir, { cloexec: true })}/${base}`;
      } finally {
        close(dir);
      }
    }
    return { name, virtual, levels };
  } finally {
    interpreter.close();
  }
}

/**
 * The arguments binfmt_script gives the interpreter under chroot(2): each
 * level's `#!` name as written where the kernel put the descriptor's name,
 * and `filename` (null: the kernel's own) where it put the script's.
 */
function chrootArgs(levels: readonly Level[], filename: string | null): ExecArg[] {
  const args: ExecArg[] = [];
  let index = 0;
  for (const level of levels) {
    args.push({ index, value: level.written });
    index += level.arg ? 2 : 1;
  }
  if (filename !== null) args.push({ index, value: filename });
  return args;
}

/**
 * Runs `exe` in the caller: an ELF as itself or with the root's loader, a
 * script with the root's interpreter. `opened` holds what to close after.
 */
function execute(ctx: Ctx, exe: Executable, call: Call | Replace, opened: number[]): Answer {
  const session = sessionOf(ctx);
  const tgid = threadGroup(ctx.pid);
  const retarget = (
    file: number,
    virtual: string | null,
    cloexec: boolean,
    execArgs: readonly ExecArg[] = [],
  ): Answer => {
    if (virtual !== null) session.exes.set(tgid, virtual);
    if ('replace' in call) {
      ctx.addFd(file, { targetFd: call.replace, cloexec: cloexec && call.cloexec });
      return answer.continue();
    }
    const own = opened.indexOf(file);
    if (own >= 0) opened.splice(own, 1); // the answer owns it
    return answer.retarget('execveat', ['fd', call.empty, call.argv, call.envp, AT_EMPTY_PATH], {
      fd: file,
      cloexec,
      execArgs,
    });
  };
  session.scripts.drop(tgid);
  const script = shebangOf(exe.fd);
  if (script === null) {
    const file = loadable(ctx, exe, opened);
    return file < 0 ? answer.errno(-file) : retarget(file, exe.virtual, true);
  }
  const allowed = exe.mayExecute();
  if (allowed < 0) return answer.errno(-allowed);
  // binfmt_script would open the interpreter by its path from the host's
  // root: the script runs from a sealed copy whose `#!` names the root's
  // interpreter by descriptor (interpreterFor). The copy's descriptor is
  // not close-on-exec: the kernel refuses to run a script whose descriptor
  // the interpreter could not open (BINPRM_FLAGS_PATH_INACCESSIBLE, ENOENT),
  // and names it /dev/fd/N to the interpreter (own-fd.ts serves that
  // open), as an fexecve of the script would. When the caller executed a
  // path, the interpreter's arguments are the ones chroot(2) would give
  // (the path, the `#!` names as written), and its open of that path gets
  // the script checked here.
  const named = interpreterFor(ctx, script, opened, 0);
  if (typeof named === 'number') return answer.errno(-named);
  const copy = patchedScript(exe.fd, script, named.name);
  opened.push(copy);
  if ('replace' in call) return retarget(copy, named.virtual, false);
  // A script of the layer's: its interpreter's open of the path is the cow module's, before this one.
  if (call.filename !== null && call.byPath && !exe.layered) {
    const kept = opened.indexOf(exe.fd);
    if (kept >= 0) opened.splice(kept, 1);
    session.scripts.set(tgid, call.filename, exe.fd);
  }
  return retarget(copy, named.virtual, false, chrootArgs(named.levels, call.filename));
}

function found(ctx: Ctx, r: Found, fd: number): Executable {
  return { fd, virtual: r.path, layered: r.layered, mayExecute: () => mayExecute(ctx, r) };
}

/**
 * execveat(fd, "", AT_EMPTY_PATH) of the caller's own descriptor: the
 * kernel's, unless the file names a loader or an interpreter by path (the
 * kernel would look it up from the host's root), or is one this module
 * retargeted (those name theirs by descriptor).
 */
function onExecDescriptor(ctx: Ctx, call: Call): Answer {
  const dirfd = int(ctx.args[0]);
  let fd: number;
  try {
    fd = ctx.getFd(dirfd);
  } catch {
    return answer.continue(); // the kernel's EBADF
  }
  const opened = [fd];
  try {
    // A descriptor that reads nothing (access mode 3: an exec-only copy
    // made by executeExecOnly, or one the caller opened so, which needs
    // the file's read and write permission): the kernel's.
    const mode = fcntl(fd, F_GETFL) & O_ACCMODE;
    if (mode !== O.O_RDONLY && mode !== O.O_RDWR) return answer.continue();
    const script = shebangOf(fd);
    const named = script?.interpreter ?? interpreterOf(fd)?.path ?? null;
    if (named === null || BY_DESCRIPTOR.test(named)) return answer.continue();
    if (script !== null && closeOnExec(ctx, dirfd)) return answer.errno(ERRNO.ENOENT);
    // A file outside the root and the mounts is the kernel's: Landlock
    // decides on it and on what it names (a copy of it would be a memfd,
    // which Landlock does not check). A memfd is run with the root's loader
    // or interpreter: the sandbox could make that copy itself, naming a
    // loader it opened.
    let host = '';
    try {
      host = readlinkSync(`/proc/self/fd/${fd}`, 'latin1');
    } catch {}
    const inside = sessionOf(ctx).root.virtualOf(host);
    if (inside === null && !host.startsWith('/memfd:')) return answer.continue();
    const virtual = inside === null ? null : `/${inside.join('/')}`;
    const how: Call | Replace =
      inside === null ? { replace: dirfd, cloexec: closeOnExec(ctx, dirfd) } : call;
    const exe: Executable = {
      fd,
      virtual,
      layered: false,
      mayExecute: () =>
        reaper(brokerOf(ctx), 'faccessat2', (name) => [
          { fd },
          name(''),
          X_OK,
          AT_EMPTY_PATH | AT_EACCESS,
        ]).result,
    };
    return execute(ctx, exe, how, opened);
  } finally {
    for (const each of opened) close(each);
  }
}

/**
 * execve of `/proc/self/fd/N` or `/dev/fd/N`: as the kernel's, the caller's
 * descriptor N run as execveat(N, "", AT_EMPTY_PATH) would run it (the
 * walk would stop in /proc, or find the root's /dev). A file outside the
 * root and the mounts (a memfd aside) is executed as it is: the kernel
 * checks it, Landlock included, and looks up what it names from the host's
 * root, as for execveat of the descriptor.
 */
function onExecOwnDescriptor(ctx: Ctx, n: number, call: Call): Answer {
  let fd: number;
  try {
    fd = ctx.getFd(n);
  } catch (error) {
    // Not open (or O_PATH, which pidfd_getfd does not take): no such entry in /proc/self/fd.
    if (error instanceof CallError && error.errno === ERRNO.EBADF) return answer.errno('ENOENT');
    throw error;
  }
  const opened = [fd];
  try {
    let host = '';
    try {
      host = readlinkSync(`/proc/self/fd/${fd}`, 'latin1');
    } catch {}
    const inside = sessionOf(ctx).root.virtualOf(host);
    if (inside === null && !host.startsWith('/memfd:')) {
      opened.length = 0; // the answer owns it
      return answer.retarget('execveat', ['fd', call.empty, call.argv, call.envp, AT_EMPTY_PATH], {
        fd,
        cloexec: true,
      });
    }
    const exe: Executable = {
      fd,
      virtual: inside === null ? null : `/${inside.join('/')}`,
      layered: false,
      mayExecute: () =>
        reaper(brokerOf(ctx), 'faccessat2', (name) => [
          { fd },
          name(''),
          X_OK,
          AT_EMPTY_PATH | AT_EACCESS,
        ]).result,
    };
    return execute(ctx, exe, call, opened);
  } finally {
    for (const each of opened) close(each);
  }
}

/** Whether the caller's descriptor is close-on-exec (its fdinfo's flags). */
function closeOnExec(ctx: Ctx, fd: number): boolean {
  const info = readFileSync(`/proc/${ctx.pid}/fdinfo/${fd}`, 'latin1');
  const flags = /^flags:\s+([0-7]+)$/m.exec(info);
  return flags !== null && (Number.parseInt(flags[1]!, 8) & O.O_CLOEXEC) !== 0;
}

/**
 * A file the caller may execute but not read (mode 0111, as a sandbox's
 * root without CAP_DAC_OVERRIDE sees a root-owned one): the kernel's own
 * execveat(dir, name, AT_SYMLINK_NOFOLLOW), `dir` its directory inside the
 * root (injected), `name` the last name of the caller's own path string
 * when the walk found the file under that name. The kernel then checks the
 * permissions; a `#!` or PT_INTERP it names is looked up from the host's
 * root (refused by Landlock): only a static program runs this way.
 */
function executeUnread(ctx: Ctx, r: Found, path: Buffer, address: bigint, call: Call): Answer {
  const text = path.toString('latin1');
  const named = r.parent >= 0 && r.name !== '' && (text === r.name || text.endsWith(`/${r.name}`));
  if (!named || r.mode !== S_IFREG) return answer.errno(ERRNO.EACCES);
  const dir = execBroker(ctx).openat(
    r.parent,
    Buffer.from('.'),
    O.O_RDONLY | O.O_DIRECTORY | O.O_CLOEXEC,
  );
  if (dir < 0) return answer.errno(ERRNO.EACCES);
  const tgid = threadGroup(ctx.pid);
  sessionOf(ctx).scripts.drop(tgid);
  sessionOf(ctx).exes.set(tgid, r.path);
  const name = address + BigInt(text.length - r.name.length);
  // The retargeted call comes back through the filter, from this thread, in the retarget.
  byName.set(ctx.pid, name);
  return answer.retarget('execveat', ['fd', name, call.argv, call.envp, AT_SYMLINK_NOFOLLOW], {
    fd: dir,
  });
}

/** An owner for a copy none of whose uids the caller has (real, effective, saved, fs), or null. */
function ownerApart(ctx: Ctx): number | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${ctx.pid}/status`, 'latin1');
  } catch {
    return null;
  }
  const line = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(status);
  if (line === null) return null;
  const uids = line.slice(1).map(Number);
  const mine = process.geteuid?.() ?? 0;
  return [mine, NOBODY].find((uid) => !uids.includes(uid)) ?? null;
}

/** The overflow uid (/proc/sys/kernel/overflowuid's default): an owner no process of the sandbox runs as. */
const NOBODY = 65534;

/**
 * A dynamically linked program the caller may execute but not read (mode
 * 0111): read by this process (as root, which may), and run from its copy
 * naming the root's loader, a copy the caller may execute and not read
 * ({@link execOnlyCopy}). Null when that cannot be (this process may not
 * read it either, a script, a static program, a loader name that does not
 * fit, a caller with a Landlock domain of its own, whose domain would not
 * judge a memfd): the kernel's own exec then decides
 * ({@link executeUnread}).
 */
function executeExecOnly(ctx: Ctx, r: Found, call: Call, opened: number[]): Answer | null {
  if (r.mode !== S_IFREG || narrowedErrno(ctx) !== 0) return null;
  if (mayExecute(ctx, r) < 0) return null;
  const fd = trySyscall(
    'openat',
    AT_FDCWD,
    Buffer.from(`/proc/self/fd/${r.fd}\0`, 'latin1'),
    O.O_RDONLY | O.O_CLOEXEC,
    0,
  );
  if (fd < 0) return null;
  opened.push(fd);
  const interp = shebangOf(fd) === null ? interpreterOf(fd) : null;
  if (interp === null || BY_DESCRIPTOR.test(interp.path)) return null;
  const owner = ownerApart(ctx);
  if (owner === null) return null;
  const loader = loaderWalk(ctx, interp.path);
  let copy: number;
  try {
    if (loader.errno !== 0 || loader.proc) return answer.errno(ERRNO.ENOENT);
    const loaderFd = runnableLoader(ctx, loader, opened);
    if (loaderFd < 0) return answer.errno(-loaderFd);
    copy = execOnlyCopy(fd, interp, ctx.addFd(loaderFd, { cloexec: true }), owner);
  } catch {
    return null;
  } finally {
    loader.close();
  }
  if (copy < 0) return null;
  const tgid = threadGroup(ctx.pid);
  sessionOf(ctx).scripts.drop(tgid);
  sessionOf(ctx).exes.set(tgid, r.path);
  return answer.retarget('execveat', ['fd', call.empty, call.argv, call.envp, AT_EMPTY_PATH], {
    fd: copy,
    cloexec: true,
  });
}

/** Threads retargeted to execveat(dir, name) by {@link executeUnread}: the address of the name. */
const byName = new Map<number, bigint>();

export function onExec(ctx: Ctx): Answer {
  const a = ctx.args;
  const at = ctx.syscall === 'execveat';
  const flags = at ? uint(a[4]) : 0;
  const address = at ? a[1]! : a[0]!;
  const named = byName.get(ctx.pid);
  if (named !== undefined) {
    byName.delete(ctx.pid);
    if (at && address === named && flags === AT_SYMLINK_NOFOLLOW) return answer.continue();
  }
  const argv = at ? a[2]! : a[1]!;
  const envp = at ? a[3]! : a[2]!;
  if (at && (flags & AT_EMPTY_PATH) !== 0) {
    let empty = address === 0n;
    try {
      empty ||= ctx.read(address, 1)[0] === 0;
    } catch {}
    if (empty) {
      const filename = `/dev/fd/${int(a[0])}`;
      return onExecDescriptor(ctx, { empty: address, argv, envp, filename, byPath: false });
    }
  }
  const session = sessionOf(ctx);
  const path = copyPath(ctx, address);
  if (path.length === 0) return answer.errno(ERRNO.ENOENT);
  const dirfd = at ? int(a[0]) : AT_FDCWD;
  // The NUL that ends the caller's own path: the empty path of execveat.
  const empty = address + BigInt(path.length);
  const own = (flags & AT_SYMLINK_NOFOLLOW) === 0 ? execDescriptorOf(path) : null;
  if (own !== null) {
    const filename = path.toString('latin1');
    return onExecOwnDescriptor(ctx, own, { empty, argv, envp, filename, byPath: false });
  }
  const followLast = (flags & AT_SYMLINK_NOFOLLOW) === 0;
  let r = execWalk(ctx, session, path, dirfd, followLast);
  const opened: number[] = [];
  try {
    if (r.proc) {
      // Through /proc/<pid>/root of a process of the sandbox: the file
      // that names inside the root, the script's `$0` the path as given.
      const inRoot = throughProcRoot(ctx, session, path, followLast);
      if (typeof inRoot === 'number') return answer.errno(-inRoot);
      if (inRoot === null) return answer.errno(ERRNO.EACCES);
      r.close();
      r = execWalk(ctx, session, inRoot, AT_FDCWD, followLast);
      if (r.proc) return answer.errno(ERRNO.EACCES);
    }
    if (r.errno !== 0) return answer.errno(r.errno);
    const fd = openFile(ctx, r, opened);
    const text = path.toString('latin1');
    // alloc_bprm() (fs/exec.c): the path as given, or /dev/fd/<dirfd>/<path> when relative to a dirfd.
    const filename = dirfd === AT_FDCWD || text.startsWith('/') ? text : `/dev/fd/${dirfd}/${text}`;
    const call: Call = { empty, argv, envp, filename, byPath: true };
    if (fd === -ERRNO.EACCES) {
      return executeExecOnly(ctx, r, call, opened) ?? executeUnread(ctx, r, path, address, call);
    }
    if (fd < 0) return answer.errno(-fd);
    return execute(ctx, found(ctx, r, fd), call, opened);
  } finally {
    for (const each of opened) close(each);
    r.close();
  }
}
