// chdir and execve inside the root: neither can be made on the sandbox's
// behalf (the cwd is the caller's own, an exec replaces the caller), and the
// caller's memory is not rewritten. The directory or program is found
// inside the root and opened by the reaper, and the caller's call is
// retargeted (the retarget answer of @sandlock/dispatch: a transient ptrace
// makes the caller's thread run another call instead, with integer
// arguments) to fchdir or execveat(AT_EMPTY_PATH) of the injected
// descriptor.
import { type Answer, answer } from '@sandlock/dispatch/module';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  close,
  ERRNO,
  hostArch,
  openFlags,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
} from '@sandlock/sys';
import {
  brokerOf,
  type Ctx,
  copyPath,
  int,
  resolve,
  sessionOf,
  threadGroup,
  uint,
} from './call.js';
import { interpreterOf, patchedCopy, shebangOf } from './exec.js';
import type { Found } from './root.js';

const O = openFlags(hostArch());

function reaperOpen(ctx: Ctx, r: Found, flags: number): number {
  const broker = brokerOf(ctx);
  if (r.parent >= 0)
    return broker.openat(r.parent, Buffer.from(r.name, 'latin1'), flags | O.O_NOFOLLOW);
  return broker.openat(r.fd, Buffer.from('.'), flags);
}

export function onChdir(ctx: Ctx): Answer {
  const session = sessionOf(ctx);
  const path = copyPath(ctx, ctx.args[0]!);
  if (path.length === 0) return answer.errno(ERRNO.ENOENT);
  const r = resolve(ctx, session, path, AT_FDCWD, { followLast: true });
  try {
    if (r.proc) return answer.errno(ERRNO.EACCES);
    if (r.errno !== 0) return answer.errno(r.errno);
    if (r.mode !== S_IFDIR) return answer.errno(ERRNO.ENOTDIR);
    // Opened for reading (ADDFD takes no O_PATH file): a directory the
    // caller may search but not read is refused here, where chdir would not.
    const fd = reaperOpen(ctx, r, O.O_RDONLY | O.O_DIRECTORY | O.O_CLOEXEC);
    if (fd < 0) return answer.errno(-fd);
    return answer.retarget('fchdir', ['fd'], { fd });
  } finally {
    r.close();
  }
}

export function onExec(ctx: Ctx): Answer {
  const a = ctx.args;
  const at = ctx.syscall === 'execveat';
  const flags = at ? uint(a[4]) : 0;
  const address = at ? a[1]! : a[0]!;
  if (at && (flags & AT_EMPTY_PATH) !== 0) {
    // The descriptor's own file: opened inside the root when it was opened.
    let empty = address === 0n;
    try {
      empty ||= ctx.read(address, 1)[0] === 0;
    } catch {}
    if (empty) return answer.continue();
  }
  const session = sessionOf(ctx);
  const path = copyPath(ctx, address);
  if (path.length === 0) return answer.errno(ERRNO.ENOENT);
  const dirfd = at ? int(a[0]) : AT_FDCWD;
  const argv = at ? a[2]! : a[1]!;
  const envp = at ? a[3]! : a[2]!;
  // The NUL that ends the caller's own path: the empty path of execveat.
  const empty = address + BigInt(path.length);
  const r = resolve(ctx, session, path, dirfd, {
    followLast: (flags & AT_SYMLINK_NOFOLLOW) === 0,
  });
  const opened: number[] = [];
  try {
    if (r.proc) return answer.errno(ERRNO.EACCES);
    if (r.errno !== 0) return answer.errno(r.errno);
    if (r.mode === S_IFLNK) return answer.errno(ERRNO.ELOOP);
    if (r.mode !== S_IFREG) return answer.errno(ERRNO.EACCES);
    const fd = reaperOpen(ctx, r, O.O_RDONLY | O.O_CLOEXEC);
    if (fd < 0) return answer.errno(-fd);
    opened.push(fd);
    let file = fd;
    const script = shebangOf(fd);
    const interp = script === null ? interpreterOf(fd) : null;
    if (script !== null) {
      // binfmt_script would take the interpreter from the host's root: the
      // script runs from a sealed copy whose #! names the root's interpreter
      // by descriptor. Its path for the interpreter is then /dev/fd/N.
      return answer.errno(ERRNO.ENOEXEC);
    }
    if (interp !== null) {
      const loader = session.root.walk(interp.path, null, { followLast: true });
      try {
        if (loader.errno !== 0) return answer.errno(ERRNO.ENOENT);
        const loaderFd = reaperOpen(ctx, loader, O.O_RDONLY | O.O_CLOEXEC);
        if (loaderFd < 0) return answer.errno(-loaderFd);
        opened.push(loaderFd);
        const number = ctx.addFd(loaderFd, { cloexec: true });
        const copy = patchedCopy(fd, interp, number);
        if (copy < 0) return answer.errno(ERRNO.ENOEXEC);
        file = copy;
      } finally {
        loader.close();
      }
    }
    session.exes.set(threadGroup(ctx.pid), r.path);
    const own = opened.indexOf(file);
    if (own >= 0) opened.splice(own, 1); // the answer owns it
    return answer.retarget('execveat', ['fd', empty, argv, envp, AT_EMPTY_PATH], { fd: file });
  } finally {
    for (const fd of opened) close(fd);
    r.close();
  }
}
