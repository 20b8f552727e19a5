// What the proc-pids module needs to know about a path and a pid: whether a
// pid belongs to the sandbox, and where an open of a path lands as the
// *caller* sees it (its /proc/self, not the supervisor's). Worker thread
// only; no side effects at import.
import { lstatSync, readlinkSync } from 'node:fs';
import { AT_FDCWD, close, hostArch, ioctlBuffer, openFlags, trySyscall } from '@sandlock/sys';

const O = openFlags(hostArch());
const buffer = Buffer.alloc(4096);

/** The text of a small /proc file (one read), or null when it cannot be read (the process is gone). */
export function readProcFile(path: string, dirfd = AT_FDCWD): string | null {
  const fd = trySyscall('openat', dirfd, Buffer.from(`${path}\0`), O.O_RDONLY | O.O_CLOEXEC, 0);
  if (fd < 0) return null;
  try {
    const length = trySyscall('read', fd, buffer, buffer.length);
    return length < 0 ? null : buffer.toString('latin1', 0, length);
  } finally {
    close(fd);
  }
}

/**
 * The parent of a process or thread: field 4 of /proc/<pid>/stat, read
 * after the last `)` (the command name in field 2 may hold anything). For a
 * thread it is its thread group's parent (copy_process() in kernel/fork.c
 * gives CLONE_THREAD children the creator's real_parent). Null: no such pid.
 */
export function parentOf(pid: number): number | null {
  const fast = parentByPidfd(pid);
  return fast !== undefined ? fast : parentIn(readProcFile(`/proc/${pid}/stat`));
}

/** pidfd_open(2): a pidfd for any thread (Linux 6.9+). */
const PIDFD_THREAD = 0o200;
/**
 * PIDFD_GET_INFO (Linux 6.13+, include/uapi/linux/pidfd.h): _IOWR(0xFF, 11,
 * struct pidfd_info), whose first 64 bytes (PIDFD_INFO_SIZE_VER0) hold mask
 * (u64), cgroupid (u64), pid, tgid, ppid (u32 at 16, 20, 24)… The parent
 * comes without procfs building a whole stat line (~3 µs against ~11).
 */
const PIDFD_GET_INFO = 0xc040ff0b;
const PIDFD_INFO_PID = 1n;
const ESRCH = 3;
const info = Buffer.alloc(64);
let pidfdInfoWorks: boolean | null = null;

/** The parent through a pidfd, or -errno. */
function askPidfd(pid: number): number {
  const fd = trySyscall('pidfd_open', pid, PIDFD_THREAD);
  if (fd < 0) return fd;
  try {
    info.fill(0);
    info.writeBigUInt64LE(PIDFD_INFO_PID, 0);
    const result = ioctlBuffer(fd, PIDFD_GET_INFO, info);
    return result < 0 ? result : info.readUInt32LE(24);
  } finally {
    close(fd);
  }
}

/** The parent through a pidfd; null: no such pid; undefined: not on this kernel. */
function parentByPidfd(pid: number): number | null | undefined {
  // Once per thread, on the supervisor itself: EINVAL (no PIDFD_THREAD
  // before 6.9) or ENOTTY (no PIDFD_GET_INFO before 6.13) mean stat it is.
  pidfdInfoWorks ??= askPidfd(process.pid) >= 0;
  if (!pidfdInfoWorks) return undefined;
  if (pid <= 0) return null;
  const parent = askPidfd(pid);
  if (parent >= 0) return parent;
  // ESRCH: no such pid, or reaped meanwhile; anything else: stat decides.
  return parent === -ESRCH ? null : undefined;
}

/** Field 4 of a /proc/<pid>/stat text, or null. */
export function parentIn(stat: string | null): number | null {
  if (stat === null) return null;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 2);
  const ppid = Number(fields[1]);
  return Number.isInteger(ppid) ? ppid : null;
}

/** Chains longer than this are not believed (pid_max is at most 2^22). */
const MAX_DEPTH = 4096;

/**
 * Whether a pid (a process, or any thread of one: /proc/<tid> exists for
 * threads) belongs to the sandbox whose reaper is `reaper`: its parent
 * chain reaches the reaper. The reaper is not inside; neither is its own
 * threads (their parent is the reaper's). Null: no such pid. `memo` shares
 * answers between the pids of one listing (parents are process ids).
 */
export function insideSandbox(
  pid: number,
  reaper: number,
  memo?: Map<number, boolean>,
): boolean | null {
  if (pid === reaper) return false;
  if (pid <= 0) return null;
  const known = memo?.get(pid);
  if (known !== undefined) return known;
  const chain: number[] = [];
  let current = pid;
  let result = false;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const parent = parentOf(current);
    if (parent === null) {
      if (depth === 0) return null;
      break; // an ancestor died meanwhile: its children went to the reaper or init; fail closed
    }
    chain.push(current);
    if (parent === reaper) {
      result = true;
      break;
    }
    const memoed = memo?.get(parent);
    if (memoed !== undefined) {
      result = memoed;
      break;
    }
    if (parent <= 1) break; // init (1), or the kernel's own (0)
    current = parent;
  }
  if (memo !== undefined) for (const id of chain) memo.set(id, result);
  return result;
}

/** The caller as the resolver needs it: its thread id and thread group id. */
export interface Caller {
  readonly tid: number;
  /** Its thread group id (read from /proc/<tid>/status when first asked). */
  tgid(): number;
  /** The thread group id if it was read already, else null. */
  knownTgid(): number | null;
}

export type Resolved =
  /** A path without symlinks (its tail may not exist). `link`: it ends on a symlink left unfollowed (O_NOFOLLOW). */
  | { readonly kind: 'path'; readonly path: string; readonly link: boolean }
  /** It goes through /proc/<pid> of a pid outside the sandbox (or of none). */
  | { readonly kind: 'hidden' }
  /** It ends on, or goes through, a magic link of /proc/<pid> to an object without a path (pipe:[…], socket:[…], anon_inode:…, a namespace). */
  | { readonly kind: 'magic'; readonly pid: number }
  /** More than 40 symlinks (path_resolution(7)): ELOOP. */
  | { readonly kind: 'loop' };

const MAX_LINKS = 40;
const NUMERIC = /^\d+$/;
/** The magic links of a /proc/<pid> or /proc/<pid>/task/<tid> directory (tgid_base_stuff in fs/proc/base.c). */
const MAGIC_NAMES: ReadonlySet<string> = new Set(['cwd', 'root', 'exe']);
/** Directories of such a directory whose entries are all magic links. */
const MAGIC_DIRS: ReadonlySet<string> = new Set(['fd', 'map_files', 'ns']);

/** Whether `rest` (components below /proc/<pid>) names a magic link. */
function isMagic(rest: readonly string[]): boolean {
  const own = rest[0] === 'task' && rest.length >= 3 ? rest.slice(2) : rest;
  if (own.length === 1) return MAGIC_NAMES.has(own[0]!);
  return own.length === 2 && MAGIC_DIRS.has(own[0]!);
}

type Look = 'missing' | 'other' | { readonly link: string };

/** How long what lstat and readlink said about a stable directory's entry is believed. */
const LOOK_TTL_MS = 1000;
const MAX_LOOKS = 4096;
const looks = new Map<string, { readonly look: Look; readonly at: number }>();

/**
 * What is at `path` (not following a final symlink): nothing, a symlink and
 * its target, or anything else. Remembered for a second when `stable` (the
 * asking sandbox cannot write the directory; system directories: /lib →
 * usr/lib on merged-/usr systems is looked up once a second, not at every
 * open), and then believed by every sandbox that cannot write it either. A
 * stale answer (the host, or a sandbox that may write there, changed it)
 * leads the resolution to a path the kernel does not open: the kernel opens
 * what is really there, and Landlock refuses /proc/<pid> to a sandbox that
 * hides processes; an on-behalf open serves the path resolved, one the
 * sandbox may read.
 */
function look(path: string, stable: boolean): Look {
  const now = Date.now();
  if (stable) {
    const known = looks.get(path);
    if (known !== undefined && now - known.at < LOOK_TTL_MS) return known.look;
  }
  let result: Look;
  try {
    const raw = Buffer.from(path, 'latin1');
    const stat = lstatSync(raw, { throwIfNoEntry: false });
    if (stat === undefined) result = 'missing';
    else if (!stat.isSymbolicLink()) result = 'other';
    else result = { link: readlinkSync(raw, 'latin1') };
  } catch {
    result = 'missing'; // ENOTDIR, EACCES, replaced meanwhile: the kernel fails the open as well
  }
  if (stable) {
    if (looks.size >= MAX_LOOKS) looks.clear();
    looks.set(path, { look: result, at: now });
  }
  return result;
}

/**
 * The components of a path. Paths here are strings of one character per
 * byte (latin1), so that names that are not UTF-8 stay exact; fs calls take
 * them back as `Buffer.from(path, 'latin1')`.
 */
export function components(path: string): string[] {
  return path.split('/').filter((part) => part !== '' && part !== '.');
}

/**
 * Where a path lands for the caller, resolved by the supervisor component by
 * component as path_resolution(7) does, with the caller's /proc/self and
 * /proc/thread-self: `start` is the resolved directory the walk begins in
 * (components), `floor` how many of them `..` and absolute symlinks may not
 * leave (RESOLVE_IN_ROOT; otherwise 0). The directories below /proc/<pid>
 * hold no symlinks but magic links (fs/proc/base.c), so they are not
 * lstat'ed; a magic link is followed to the path its readlink gives (as the
 * kernel follows it to that object). /proc/<pid> itself is decided (inside
 * the sandbox, or hidden) as soon as the walk enters it.
 */
export function resolveForCaller(
  start: readonly string[],
  path: string,
  options: {
    caller: Caller;
    reaper: number;
    /** Whether a pid (not the caller's own) is the sandbox's. */
    member: (pid: number) => boolean;
    noFollow: boolean;
    floor: number;
    /** Whether the entries of a directory (components) may be remembered: the sandbox cannot change them. */
    stable: (directory: readonly string[]) => boolean;
  },
): Resolved {
  // The caller itself is a sandbox process (its calls are notified): its
  // own thread or thread group needs no walk.
  const hidden = (pid: number): boolean => {
    const own = pid === options.caller.tid || pid === options.caller.knownTgid();
    return !(own && pid !== options.reaper) && !options.member(pid);
  };
  const done = [...start];
  // The start itself (the caller's cwd or dirfd, canonical: a readlink) may
  // be a /proc/<pid> directory: chdir and fchdir are not intercepted, so
  // `cd /proc/1; cat status` must be decided here.
  if (done[0] === 'proc' && done.length >= 2 && NUMERIC.test(done[1]!)) {
    if (hidden(Number(done[1]))) return { kind: 'hidden' };
  }
  const todo = components(path).reverse(); // a stack: the next component last
  let links = 0;
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (name === '..') {
      if (done.length > options.floor) done.pop();
      continue;
    }
    const last = todo.length === 0;
    let target: string | null = null;
    if (done.length === 0 && name === 'proc') {
      done.push(name); // the supervisor's /proc: a directory, not a link
      continue;
    }
    if (done.length === 1 && done[0] === 'proc') {
      if (NUMERIC.test(name)) {
        if (hidden(Number(name))) return { kind: 'hidden' };
        done.push(name);
        continue;
      }
      // The supervisor would read its own: name the caller's.
      if (name === 'self') target = String(options.caller.tgid());
      else if (name === 'thread-self') {
        target = `${options.caller.tgid()}/task/${options.caller.tid}`;
      }
    } else if (done.length >= 2 && done[0] === 'proc' && NUMERIC.test(done[1]!)) {
      const rest = [...done.slice(2), name];
      if (!isMagic(rest)) {
        done.push(name); // not a link (fs/proc/base.c)
        continue;
      }
      // A magic link jumps to its object, not to a path (proc(5)); when
      // that object still has a path (a directory, a file), the kernel
      // lands where that path does, so the walk goes on from it. A pipe,
      // socket or anonymous inode ends the walk.
      try {
        target = readlinkSync(Buffer.from(`/${[...done, name].join('/')}`, 'latin1'), 'latin1');
      } catch {
        return { kind: 'magic', pid: Number(done[1]) };
      }
      if (!target.startsWith('/')) return { kind: 'magic', pid: Number(done[1]) };
    }
    if (target === null) {
      const candidate = `/${[...done, name].join('/')}`;
      const seen = look(candidate, options.stable(done));
      if (seen === 'missing' || seen === 'other') {
        done.push(name);
        if (seen === 'missing') {
          // Nothing beneath exists: the kernel fails the open; keep the rest lexical.
          for (const rest of todo.reverse()) {
            if (rest === '..') {
              if (done.length > options.floor) done.pop();
            } else done.push(rest);
          }
          break;
        }
        continue;
      }
      target = seen.link;
    }
    if (last && options.noFollow) {
      done.push(name);
      return { kind: 'path', path: `/${done.join('/')}`, link: true };
    }
    if (++links > MAX_LINKS) return { kind: 'loop' };
    if (target.startsWith('/')) done.length = options.floor;
    todo.push(...components(target).reverse());
  }
  return { kind: 'path', path: `/${done.join('/')}`, link: false };
}
