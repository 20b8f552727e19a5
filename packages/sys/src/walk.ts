// A path resolved the way the kernel resolves it for another process, one
// component at a time, with the kernel doing every lookup: openat(O_PATH |
// O_NOFOLLOW) of a single name beneath a directory descriptor, never a path
// built from strings. What path_resolution(7) says the kernel does, the walk
// does with descriptors: `..` is the kernel's own (mount crossings and the
// root included), a missing component ends the walk with the kernel's errno,
// a symlink's target is read with readlinkat and walked on from the link's
// directory (or the root), at most 40 of them (MAXSYMLINKS, ELOOP).
//
// Two things differ from a walk by this process's own kernel lookup, and are
// why the walk exists: /proc/self and /proc/thread-self name the *caller*
// given (their readlink would name this process), and every /proc/<pid>
// directory entered is shown to a hook that may hide it (ENOENT). A magic
// link (/proc/<pid>/fd/N, cwd, root, exe, map_files/*, ns/*) is followed by
// the kernel itself (an O_PATH open that follows it), as it would be for the
// caller, after the same ptrace-mode check.
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  F_DUPFD_CLOEXEC,
  MAXSYMLINKS,
  openFlags,
  PATH_MAX,
  PROC_SUPER_MAGIC,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  STATX_INO,
  STATX_TYPE,
} from './constants.js';
import { ERRNO } from './errno.js';
import { close, trySyscall } from './libc.js';
import {
  encodeOpenHow,
  RESOLVE_BENEATH,
  RESOLVE_NO_SYMLINKS,
  RESOLVE_NO_XDEV,
} from './structs/open-how.js';
import { hostArch } from './syscalls/index.js';

const O = openFlags(hostArch());
const STATX_SIZE = 256;
/** The inode number of every procfs root (PROC_ROOT_INO, fs/proc/internal.h). */
const PROC_ROOT_INO = 1n;
/** Lookups one walk may make (a run in one openat2 counts once); about 15 µs each. */
export const MAX_LOOKUPS = 40;
const { E2BIG, ENOENT, ENOTDIR, EACCES, ELOOP } = ERRNO;

/** What a walk ends on. */
export type WalkKind = 'directory' | 'file' | 'symlink' | 'missing';

export interface WalkOptions {
  /** The caller's root (an O_PATH directory): absolute paths and absolute symlinks start here. */
  readonly root: number;
  /** Where a relative path starts: the caller's cwd or dirfd (any descriptor; not closed). */
  readonly start: number;
  /** The path's bytes, as the caller passed them (no NUL). */
  readonly path: Buffer;
  /** Follow a symlink in the last component (not O_NOFOLLOW); a trailing slash always does. */
  readonly followLast: boolean;
  /** The caller's thread group (read lazily: /proc/self needs it). */
  readonly tgid: () => number;
  /** The caller's thread id (/proc/thread-self). */
  readonly tid: number;
  /**
   * A /proc/<pid> directory the walk enters (its O_PATH descriptor, or -1
   * when the walk found itself beneath it through a magic link or its start):
   * false hides it, and the walk ends with ENOENT as if it did not exist.
   */
  readonly enterPid?: (pid: number, fd: number) => boolean;
  /**
   * A magic link beneath /proc/<pid> (null: the process is not known) is
   * about to be followed: false refuses it with EACCES, as Landlock refuses a
   * process the ptrace-mode check of a process outside its domain.
   */
  readonly followMagic?: (pid: number | null) => boolean;
  /**
   * A directory the walk is about to walk on from (its O_PATH descriptor and
   * its "dev:ino"): true stops the walk there, before the next name is
   * looked up; `stopped` and `rest` then say where and what is left. The
   * walk then takes every name in a lookup of its own (no run of names in
   * one openat2 passes a stop unseen).
   */
  readonly stopAt?: (fd: number, id: string) => boolean;
  /** Lookups before the walk gives up (default {@link MAX_LOOKUPS}). */
  readonly maxLookups?: number;
}

/**
 * Where a walk ended. Owns its descriptors: {@link close} them. On success
 * (`errno` 0) `fd` is an O_PATH descriptor of what the path names; for a
 * missing last component (`errno` ENOENT, `kind` 'missing') `parent` and
 * `name` still say where it would be.
 */
export class Walked {
  errno = 0;
  kind: WalkKind = 'missing';
  /** O_PATH descriptor of the object, or -1. */
  fd = -1;
  /** O_PATH descriptor of the directory the last name was looked up in, or -1 (the path ended in `.`, `..` or `/`). */
  parent = -1;
  /** The last name looked up (one component, latin1), or '.' when there is none. */
  name = '.';
  /** The last component was a magic link, followed. */
  magic = false;
  /** The object is on a procfs. */
  inProc = false;
  /** The /proc/<pid> the object lies in (through a procfs root, a magic link or the start), or null. */
  pid: number | null = null;
  /** Some /proc/<pid> directory was entered on the way, or a magic link followed. */
  viaProc = false;
  /** The walk ended because `enterPid` refused a process directory (`errno` ENOENT). */
  hidden = false;
  /**
   * The walk gave up after {@link MAX_LOOKUPS} lookups (`errno` E2BIG): a
   * path of thousands of `..` under /proc would tie up the thread for tens
   * of milliseconds. The caller lets the kernel decide, or refuses.
   */
  gaveUp = false;
  /**
   * The walk stopped at a directory `stopAt` chose (`fd`, kind 'directory',
   * `errno` 0) with `rest` still to walk: the names left, joined by `/`,
   * with the path's trailing slash if it had one.
   */
  stopped = false;
  rest = '';
  /**
   * The object, or the directory its missing last name would be made in,
   * is in a read-only mount of a view (an emulated chroot's `:ro`): nothing
   * is made or changed there (EROFS). The host's own read-only mounts are
   * the kernel's to answer.
   */
  readOnly = false;

  close(): void {
    if (this.fd >= 0) close(this.fd);
    if (this.parent >= 0 && this.parent !== this.fd) close(this.parent);
    this.fd = -1;
    this.parent = -1;
  }
}

interface Place {
  fd: number;
  /** This walk opened it (and must close it). */
  owned: boolean;
  dev: string;
  ino: bigint;
  mode: number;
  proc: boolean;
  /** For a place on a procfs: the /proc/<pid> it lies in, null when none, undefined when not known yet. */
  pid: number | null | undefined;
}

const statxBuffer = Buffer.alloc(STATX_SIZE);
const statfsBuffer = Buffer.alloc(128);
const linkBuffer = Buffer.alloc(PATH_MAX);
const EMPTY = Buffer.from('\0');
const PATH_FLAGS = O.O_PATH | O.O_CLOEXEC;
const DOT = Buffer.from('.\0');
const DOTDOT = Buffer.from('..\0');
/** Which devices are procfs mounts (a device never changes file system). */
const procDevices = new Map<string, boolean>();

/** statx of a descriptor: -errno, or 0 with mode, dev and ino in statxBuffer. */
function statFd(fd: number): number {
  return trySyscall('statx', fd, EMPTY, AT_EMPTY_PATH, STATX_TYPE | STATX_INO, statxBuffer);
}

function isProcDevice(fd: number, dev: string): boolean {
  let proc = procDevices.get(dev);
  if (proc === undefined) {
    if (trySyscall('fstatfs', fd, statfsBuffer) < 0) return false;
    // f_type is a long on both architectures (the first field of struct statfs).
    proc = Number(statfsBuffer.readBigInt64LE(0) & 0xffffffffn) === PROC_SUPER_MAGIC;
    if (procDevices.size > 256) procDevices.clear();
    procDevices.set(dev, proc);
  }
  return proc;
}

/** A place for a descriptor (stat'ed); null with errno set when statx fails. */
function placeOf(fd: number, owned: boolean): Place | number {
  const result = statFd(fd);
  if (result < 0) return result;
  // struct statx: stx_mode u16 at 28, stx_ino u64 at 32, stx_dev_major/minor u32 at 136/140.
  const dev = `${statxBuffer.readUInt32LE(136)}:${statxBuffer.readUInt32LE(140)}`;
  const place: Place = {
    fd,
    owned,
    dev,
    ino: statxBuffer.readBigUInt64LE(32),
    mode: statxBuffer.readUInt16LE(28) & S_IFMT,
    proc: false,
    pid: null,
  };
  place.proc = isProcDevice(fd, dev);
  place.pid = place.proc && place.ino !== PROC_ROOT_INO ? undefined : null;
  return place;
}

function release(place: Place): void {
  if (place.owned) close(place.fd);
}

function isProcRoot(place: Place): boolean {
  return place.proc && place.ino === PROC_ROOT_INO;
}

function cName(name: string): Buffer {
  return Buffer.from(`${name}\0`, 'latin1');
}

function readLink(fd: number, name: Buffer): string | number {
  const length = trySyscall('readlinkat', fd, name, linkBuffer, linkBuffer.length);
  if (length < 0) return length;
  return linkBuffer.toString('latin1', 0, length);
}

const NUMERIC = /^[1-9]\d*$/;

/**
 * The /proc/<pid> a procfs place lies in, when the walk did not come to it
 * through its procfs root: its path as the kernel prints it (d_path through
 * /proc/self/fd), beneath the path of the procfs root above it (found with
 * the kernel's `..`). Null: not beneath a process directory, or not
 * knowable (then the caller treats it as hidden).
 */
function pidOfPlace(place: Place): number | null | 'unknown' {
  const own = readLink(AT_FDCWD, cName(`/proc/thread-self/fd/${place.fd}`));
  if (typeof own !== 'string' || !own.startsWith('/')) return 'unknown';
  let at = place.fd;
  const opened: number[] = [];
  try {
    for (let depth = 0; depth < 64; depth++) {
      const up = trySyscall('openat', at, DOTDOT, O.O_PATH | O.O_CLOEXEC, 0);
      if (up < 0) return 'unknown';
      opened.push(up);
      const above = placeOf(up, false);
      if (typeof above === 'number') return 'unknown';
      if (!above.proc) return 'unknown';
      if (isProcRoot(above)) {
        const rootPath = readLink(AT_FDCWD, cName(`/proc/thread-self/fd/${up}`));
        if (typeof rootPath !== 'string') return 'unknown';
        const prefix = rootPath === '/' ? '/' : `${rootPath}/`;
        if (!own.startsWith(prefix)) return 'unknown';
        const first = own.slice(prefix.length).split('/')[0] ?? '';
        return NUMERIC.test(first) ? Number(first) : null;
      }
      at = up;
    }
    return 'unknown';
  } finally {
    for (const fd of opened) close(fd);
  }
}

/**
 * Resolves `options.path` for the caller. Never throws for what the path
 * holds; the result says what the kernel would have found (or why not).
 */
export function walkPath(options: WalkOptions): Walked {
  const out = new Walked();
  const text = options.path.toString('latin1');
  if (text === '') {
    out.errno = ENOENT;
    return out;
  }
  const trailingSlash = text.endsWith('/');
  const first = placeOf(text.startsWith('/') ? options.root : options.start, false);
  if (typeof first === 'number') {
    out.errno = -first;
    return out;
  }
  let cur: Place = first;
  /** The directory the last name was looked up in, while `cur` is what it named. */
  let parent: Place | null = null;
  let lastName = '.';
  const todo = text
    .split('/')
    .filter((part) => part !== '')
    .reverse(); // a stack: the next name last
  let links = 0;

  const drop = (): void => {
    if (parent !== null) release(parent);
    parent = null;
  };
  const fail = (errno: number): Walked => {
    drop();
    release(cur);
    out.errno = errno;
    return out;
  };
  /** Moves to `place`, looked up by `name` in the current directory (null: a jump). */
  const move = (place: Place, name: string | null): number => {
    drop();
    if (name === null) release(cur);
    else {
      parent = cur;
      lastName = name;
    }
    cur = place;
    return locate(cur);
  };
  /** Settles which /proc/<pid> a procfs place lies in, and lets the hook see it. */
  const locate = (place: Place): number => {
    if (place.pid !== undefined) return 0;
    const pid = pidOfPlace(place);
    if (pid === 'unknown') return ENOENT; // fail closed
    place.pid = pid;
    if (pid === null) return 0;
    out.viaProc = true;
    if (options.enterPid === undefined || options.enterPid(pid, -1)) return 0;
    out.hidden = true;
    return ENOENT;
  };
  let rootId: string | null = null;
  const atRoot = (place: Place): boolean => {
    if (rootId === null) {
      const root = placeOf(options.root, false);
      rootId = typeof root === 'number' ? '' : `${root.dev}:${root.ino}`;
    }
    return `${place.dev}:${place.ino}` === rootId;
  };
  const begun = locate(cur);
  if (begun !== 0) return fail(begun);
  const stopAt = options.stopAt;
  const maxLookups = options.maxLookups ?? MAX_LOOKUPS;

  let lookups = 0;
  while (todo.length > 0) {
    if (stopAt !== undefined && cur.mode === S_IFDIR && stopAt(cur.fd, `${cur.dev}:${cur.ino}`)) {
      drop();
      out.stopped = true;
      out.kind = 'directory';
      out.rest = [...todo].reverse().join('/') + (trailingSlash ? '/' : '');
      out.fd = own(cur);
      return out;
    }
    if (++lookups > maxLookups) {
      out.gaveUp = true;
      return fail(E2BIG);
    }
    // A run of components before the last, in one lookup by the kernel when
    // it meets no symlink, crosses no mount and stays beneath where it starts
    // (openat2 RESOLVE_NO_SYMLINKS, which refuses magic links too,
    // RESOLVE_NO_XDEV: procfs is entered through its mount point, never
    // inside such a run, and RESOLVE_BENEATH: a `..` cannot climb to a
    // procfs root and come down into another process's directory unseen).
    // Not from a procfs root: its names are the process directories.
    const run = stopAt === undefined ? batchable(cur, todo) : 0;
    if (run >= MIN_RUN) {
      const names = todo.slice(todo.length - run).reverse();
      const fd = trySyscall('openat2', cur.fd, cName(names.join('/')), RUN_HOW, RUN_HOW.length);
      if (fd >= 0) {
        const place = placeOf(fd, true);
        if (typeof place === 'number') {
          close(fd);
          return fail(-place);
        }
        place.pid = cur.proc ? cur.pid : null;
        todo.length -= run;
        const err = move(place, null);
        if (err !== 0) return fail(err);
        lastName = '.';
        continue;
      }
      // A symlink, a mount, a missing name on the way: one at a time.
    }
    const name = todo.pop()!;
    const last = todo.length === 0;
    const follow = !last || options.followLast || trailingSlash;
    if (name === '.' || name === '..') {
      // `..` stays at the root given (the caller's, or openat2's
      // RESOLVE_IN_ROOT directory); elsewhere it is the kernel's own step,
      // which crosses mounts upwards.
      if (name === '..' && atRoot(cur)) {
        lastName = '.';
        drop();
        continue;
      }
      const next = trySyscall('openat', cur.fd, name === '.' ? DOT : DOTDOT, PATH_FLAGS, 0);
      if (next < 0) return fail(-next);
      const place = placeOf(next, true);
      if (typeof place === 'number') {
        close(next);
        return fail(-place);
      }
      if (name === '.') place.pid = cur.pid;
      const err = move(place, null);
      if (err !== 0) return fail(err);
      lastName = '.';
      continue;
    }
    if (isProcRoot(cur) && (name === 'self' || name === 'thread-self') && follow) {
      // Their readlink would name this process: the caller's instead.
      if (++links > MAXSYMLINKS) return fail(ELOOP);
      const tgid = options.tgid();
      const target = name === 'self' ? `${tgid}` : `${tgid}/task/${options.tid}`;
      todo.push(...target.split('/').reverse());
      continue;
    }
    const fd = trySyscall('openat', cur.fd, cName(name), PATH_FLAGS | O.O_NOFOLLOW, 0);
    if (fd < 0) {
      if (last && fd === -ENOENT) {
        // Where it would be: O_CREAT creates it there.
        out.kind = 'missing';
        out.errno = ENOENT;
        out.name = name;
        out.inProc = cur.proc;
        out.pid = cur.pid ?? null;
        out.parent = own(cur);
        drop();
        return out;
      }
      return fail(-fd);
    }
    const place = placeOf(fd, true);
    if (typeof place === 'number') {
      close(fd);
      return fail(-place);
    }
    if (place.proc && cur.proc && place.dev === cur.dev) {
      if (isProcRoot(cur) && NUMERIC.test(name)) {
        // A process directory: the hook decides, on the very directory opened.
        out.viaProc = true;
        if (options.enterPid && !options.enterPid(Number(name), fd)) {
          release(place);
          out.hidden = true;
          return fail(ENOENT);
        }
        place.pid = Number(name);
      } else {
        place.pid = isProcRoot(cur) ? null : cur.pid;
      }
    }
    if (place.mode === S_IFLNK && follow) {
      // The link's own text, read through the descriptor that found it.
      const target = cur.proc && !isProcRoot(cur) ? '' : readLink(fd, EMPTY);
      release(place);
      if (++links > MAXSYMLINKS) return fail(ELOOP);
      if (cur.proc && !isProcRoot(cur)) {
        // A magic link (below a procfs root every symlink is one,
        // fs/proc/base.c): the kernel jumps to its object after a
        // ptrace-mode check of the process; so does this open, following it.
        if (options.followMagic !== undefined && !options.followMagic(cur.pid ?? null)) {
          return fail(EACCES);
        }
        const object = trySyscall('openat', cur.fd, cName(name), PATH_FLAGS, 0);
        if (object < 0) return fail(-object);
        const jumped = placeOf(object, true);
        if (typeof jumped === 'number') {
          close(object);
          return fail(-jumped);
        }
        out.viaProc = true;
        out.magic = last;
        const err = move(jumped, last ? name : null);
        if (err !== 0) return fail(err);
        continue;
      }
      if (typeof target === 'number') return fail(-target);
      const parts = target.split('/').filter((part) => part !== '');
      todo.push(...parts.reverse());
      if (target.startsWith('/')) {
        const root = placeOf(options.root, false);
        if (typeof root === 'number') return fail(-root);
        const err = move(root, null);
        if (err !== 0) return fail(err);
      }
      continue;
    }
    if (!last && place.mode !== S_IFDIR) {
      release(place);
      return fail(ENOTDIR);
    }
    const err = move(place, name);
    if (err !== 0) return fail(err);
  }
  if (trailingSlash && cur.mode !== S_IFDIR) return fail(ENOTDIR);
  out.kind = cur.mode === S_IFDIR ? 'directory' : cur.mode === S_IFLNK ? 'symlink' : 'file';
  out.inProc = cur.proc;
  out.pid = cur.pid ?? null;
  out.name = parent === null ? '.' : lastName;
  out.fd = own(cur);
  out.parent = parent === null ? -1 : own(parent);
  return out;
}

/**
 * Runs shorter than this are walked one name at a time: a short path under
 * /proc meets its mount point or /proc/self within a few names, and the
 * failed lookup would only add to its cost. A long one is taken in one
 * lookup: a path of 2000 names costs one openat2, not 2000 (a sandbox must
 * not tie up the thread serving its neighbours).
 */
const MIN_RUN = 4;
const RUN_HOW = encodeOpenHow({
  flags: BigInt(PATH_FLAGS),
  resolve: BigInt(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV),
});

/** How many of the next components (not the last one) one kernel lookup may take from `cur`: see the loop. */
function batchable(cur: Place, todo: readonly string[]): number {
  if (cur.proc && cur.ino === PROC_ROOT_INO) return 0;
  // A run that starts by going up would leave `cur` at once.
  return todo.at(-1) === '..' ? 0 : todo.length - 1;
}

/** The place's descriptor as the result's own: the caller's start and root are duplicated, not taken. */
function own(place: Place): number {
  return place.owned ? place.fd : trySyscall('fcntl', place.fd, F_DUPFD_CLOEXEC, 0);
}
