// Opens of `/dev/fd/N` and `/proc/self/fd/N` inside the root: the caller's
// own descriptor N, duplicated. A root without /proc has neither, and the
// kernel names a script it runs from a descriptor `/dev/fd/N` to its
// interpreter (bprm->filename of an AT_EMPTY_PATH exec, fs/exec.c), as
// bash names a process substitution. What the caller gets is a descriptor
// it already has: never more access than N's (the kernel's reopen through
// /proc checks the inode's permissions; here the access mode must be
// within N's). Unlike that reopen, the duplicate shares N's offset.
import { fstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { type Answer, answer, CallError } from '@sandlock/dispatch/module';
import {
  close,
  ERRNO,
  F_GETFL,
  fcntl,
  hostArch,
  openFlags,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  trySyscall,
} from '@sandlock/sys';
import { type Ctx, narrowedRefusal, type Session } from './call.js';

const O = openFlags(hostArch());
const O_ACCMODE = 3;
const DEV_FD = /^\/dev\/fd\/(\d+)$/;
const PROC_FD = /^\/proc\/(?:self|thread-self)\/fd\/(\d+)$/;
const PTS = /^\/dev\/pts\/\d+$/;

/**
 * The descriptor an absolute path names as `/dev/fd/N`, or as
 * `/proc/self/fd/N` when no procfs is mounted at /proc (a mounted one is the
 * kernel's); null for any other path.
 */
export function ownDescriptorOf(session: Session, path: Buffer): number | null {
  if (path[0] !== 0x2f) return null;
  const text = path.toString('latin1').replace(/\/+/g, '/');
  const dev = DEV_FD.exec(text);
  if (dev !== null) return Number(dev[1]);
  const proc = PROC_FD.exec(text);
  if (proc === null) return null;
  const mounted = session.root.mounts.some(
    (mount) => mount.proc && mount.virt.length === 1 && mount.virt[0] === 'proc',
  );
  return mounted ? null : Number(proc[1]);
}

/**
 * The caller's descriptor an exec path names: `/dev/fd/N` or
 * `/proc/self/fd/N` (a mounted procfs is the host's, whose magic link there
 * names the same file); null for any other path. Node's spawn and glibc's
 * fexecve(3) fallback execute a descriptor by that name.
 */
export function execDescriptorOf(path: Buffer): number | null {
  if (path[0] !== 0x2f) return null;
  const text = path.toString('latin1').replace(/\/+/g, '/');
  const named = DEV_FD.exec(text) ?? PROC_FD.exec(text);
  return named === null ? null : Number(named[1]);
}

/**
 * The caller's descriptor open on the host's `/dev/pts/N` that an absolute
 * path names, for a root with nothing there: its terminal, which ttyname(3)
 * finds by the name readlink of /proc/self/fd/0 shows, then stats (glibc's
 * sysdeps/unix/sysv/linux/ttyname_r.c). Null for any other path.
 */
export function ownTerminalOf(ctx: Ctx, path: Buffer): number | null {
  if (path[0] !== 0x2f) return null;
  const text = path.toString('latin1').replace(/\/+/g, '/');
  if (!PTS.test(text)) return null;
  let entries: string[];
  try {
    entries = readdirSync(`/proc/${ctx.pid}/fd`);
  } catch {
    return null;
  }
  for (const entry of entries) {
    try {
      if (readlinkSync(`/proc/${ctx.pid}/fd/${entry}`, 'latin1') === text) return Number(entry);
    } catch {}
  }
  return null;
}

/**
 * The caller's descriptor open on its controlling terminal, for an open of
 * the host's /dev/tty mounted in the root: the kernel gives the opener's
 * controlling terminal there (tty_open_current_tty() in drivers/tty/tty_io.c),
 * and the reaper that opens what the root shows has none. Null without one,
 * or without a descriptor of it (the kernel's ENXIO, then).
 */
export function ownControllingTerminalOf(ctx: Ctx): number | null {
  let terminal: number;
  try {
    // proc(5): tty_nr, the 7th field, the device number as the kernel encodes it.
    const stat = readFileSync(`/proc/${ctx.pid}/stat`, 'latin1');
    terminal = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[4]);
    if (!(terminal > 0)) return null;
    for (const entry of readdirSync(`/proc/${ctx.pid}/fd`)) {
      try {
        const found = statSync(`/proc/${ctx.pid}/fd/${entry}`);
        if (found.isCharacterDevice() && found.rdev === terminal) return Number(entry);
      } catch {}
    }
  } catch {}
  return null;
}

function allows(have: number, want: number): boolean {
  const reads = (mode: number) => mode === O.O_RDONLY || mode === O.O_RDWR;
  const writes = (mode: number) => mode === O.O_WRONLY || mode === O.O_RDWR;
  return (!reads(want) || reads(have)) && (!writes(want) || writes(have));
}

/** The answer to an open of the caller's descriptor `n` with `flags`. */
export function openOwnDescriptor(ctx: Ctx, n: number, flags: number): Answer {
  // A new open file description of the caller's file, with rights (O_TRUNC) its domain may not give.
  const narrowed = narrowedRefusal(ctx);
  if (narrowed !== null) return narrowed;
  let fd: number;
  try {
    fd = ctx.getFd(n);
  } catch (error) {
    // Not open (or O_PATH, which pidfd_getfd does not take): /proc/self/fd has no such entry.
    if (error instanceof CallError && error.errno === ERRNO.EBADF) return answer.errno('ENOENT');
    throw error;
  }
  let handed = false;
  try {
    if ((flags & O.O_CREAT) !== 0 && (flags & O.O_EXCL) !== 0) return answer.errno('EEXIST');
    const type = fstatSync(fd).mode & S_IFMT;
    if ((flags & O.O_DIRECTORY) !== 0 && type !== S_IFDIR) return answer.errno('ENOTDIR');
    const want = flags & O_ACCMODE;
    if ((flags & O.O_PATH) === 0 && !allows(fcntl(fd, F_GETFL) & O_ACCMODE, want)) {
      return answer.errno('EACCES');
    }
    if ((flags & O.O_TRUNC) !== 0 && type === S_IFREG && want !== O.O_RDONLY) {
      const truncated = trySyscall('ftruncate', fd, 0);
      if (truncated < 0) return answer.errno(-truncated);
    }
    handed = true;
    return answer.inject(fd, { cloexec: (flags & O.O_CLOEXEC) !== 0 });
  } finally {
    if (!handed) close(fd);
  }
}
