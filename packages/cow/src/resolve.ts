// A path of a sandboxed caller, resolved as the kernel would resolve it if
// the workdir were the merged view of its layer: outside the workdir by the
// kernel's own walk in the caller's view (walkPath of @sandlock/sys: its
// root, its cwd or dirfd, symlinks and `..` as the kernel takes them), and,
// from the moment that walk reaches the workdir's directory, one name at a
// time in the two trees, each lookup the kernel's openat(O_PATH |
// O_NOFOLLOW) of one name beneath a directory descriptor: the upper first,
// then the lower unless the layer hides it there. `..` above the workdir
// leaves it by the kernel's own `..` of the lower directory; a symlink's
// text is read through the descriptor that found it and walked on as the
// kernel would (an absolute one from the caller's root). No path is ever
// built from strings to be opened.
import { readlinkSync } from 'node:fs';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  close,
  ERRNO,
  encodeOpenHow,
  hostArch,
  isDescendantOf,
  MAXSYMLINKS,
  openFlags,
  PATH_MAX,
  RESOLVE_NO_SYMLINKS,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  STATX_INO,
  STATX_MNT_ID,
  STATX_TYPE,
  trySyscall,
  Walked,
  walkPath,
} from '@sandlock/sys';
import type { Layer } from './layer/index.js';

const O = openFlags(hostArch());
const PATH_FLAGS = O.O_PATH | O.O_CLOEXEC | O.O_NOFOLLOW;
const { ENOENT, ENOTDIR, ELOOP, EXDEV } = ERRNO;
/** Lookups of one walk outside the workdir (each name is its own lookup there: no run may pass the workdir unseen). */
const MAX_OUTSIDE_LOOKUPS = 256;
const EMPTY = Buffer.from('\0');

/** The workdir of one sandbox, as its worker holds it. */
export interface Workdir {
  readonly layer: Layer;
  /** The lower directory's canonical path, and its upper's. */
  readonly lowerPath: string;
  readonly upperPath: string;
  /** O_PATH descriptors of the two roots, open for the session's life. */
  readonly lowerRoot: number;
  readonly upperRoot: number;
  /** "major:minor:ino" of each root. */
  readonly lowerId: string;
  readonly upperId: string;
  /** Lower objects copied up this session ("major:minor:ino" → path): a descriptor of one changes its copy. */
  readonly copies: Map<string, string>;
  /**
   * With an emulated chroot (the chroot module): an O_PATH descriptor of
   * the root the caller's paths start from instead of its own, and the
   * root's canonical path. The chroot module, after this one, answers what
   * this one leaves (its walk knows the mounts).
   */
  readonly chroot?: { readonly fd: number; readonly path: string } | null;
}

const statxBuffer = Buffer.alloc(256);

/** statx of a descriptor: its file type bits and "major:minor:ino", or -errno. */
export function identify(fd: number): { mode: number; id: string } | number {
  const result = trySyscall('statx', fd, EMPTY, AT_EMPTY_PATH, STATX_TYPE | STATX_INO, statxBuffer);
  if (result < 0) return result;
  return {
    mode: statxBuffer.readUInt16LE(28) & S_IFMT,
    id: `${statxBuffer.readUInt32LE(136)}:${statxBuffer.readUInt32LE(140)}:${statxBuffer.readBigUInt64LE(32)}`,
  };
}

export type Side = 'upper' | 'lower';
export type Kind = 'file' | 'directory' | 'symlink' | 'missing';

/** A directory of the merged view: its descriptor in each tree (-1: not there, or hidden). */
interface Level {
  upper: number;
  lower: number;
  /** In a mount of the emulated chroot (`lower` its host directory, no layer): another file system. */
  mount?: boolean;
}

/**
 * Where a path lands inside the workdir. Owns its descriptors: {@link close}.
 * With `errno` 0 the object exists; with ENOENT and kind 'missing' the last
 * name does not, and `parent` says where it would be.
 */
export class Inside {
  readonly where = 'inside';
  errno = 0;
  kind: Kind = 'missing';
  /** The path relative to the workdir, by components ([] is the workdir). */
  rel: string[] = [];
  /** The tree the object is in (null: missing). */
  side: Side | null = null;
  /** S_IFMT bits of the object. */
  mode = 0;
  /** The object in each tree (a directory may be in both; -1 where not, or hidden). */
  upper = -1;
  lower = -1;
  /** The directory holding the last name, in each tree (null for the workdir itself). */
  parent: Level | null = null;
  /** The path ended in `.` or `..` (no name to create or remove). */
  dotted = false;
  /**
   * Every name was found in the lower, none shadowed or hidden by the
   * layer: the kernel's own lookup of the caller's path finds the same
   * object, and a read may be left to it.
   */
  pure = true;

  constructor(private readonly roots: ReadonlySet<number>) {}

  /** The object's descriptor on its side. */
  get fd(): number {
    return this.side === 'upper' ? this.upper : this.side === 'lower' ? this.lower : -1;
  }

  /** The last name is missing, its directory found (where O_CREAT, mkdir… make it). */
  get lastMissing(): boolean {
    return this.errno === ENOENT && this.parent !== null;
  }

  get name(): string {
    return this.rel.at(-1) ?? '';
  }

  /** The relative path, '/'-joined ('' for the workdir). */
  get path(): string {
    return this.rel.join('/');
  }

  close(): void {
    const seen = new Set<number>();
    for (const fd of [this.upper, this.lower, this.parent?.upper ?? -1, this.parent?.lower ?? -1]) {
      if (fd >= 0 && !this.roots.has(fd) && !seen.has(fd)) close(fd);
      seen.add(fd);
    }
    this.upper = this.lower = -1;
    this.parent = null;
  }
}

/** Outside the workdir: the kernel's business (Landlock keeps the sandbox's writes out of the workdir). */
export interface Outside {
  readonly where: 'outside';
  readonly walked: Walked;
  /**
   * The path ends in a mount of the emulated chroot: the chroot module's
   * (`walked` is then a placeholder, to be walked in its PATH_VIEW).
   */
  readonly mounted?: boolean;
  /**
   * The merged walk left the workdir through what only the layer holds (a
   * symlink made in it, a directory of the upper): the kernel's own lookup
   * of the caller's path would not come here. The rest of the walk, as a
   * path from the lower root's descriptor (`../…`, or absolute), for the
   * reaper to resolve in the caller's view with the sandbox's authority.
   */
  readonly throughLayer?: string;
}

export type Resolved = Inside | Outside;

export interface ResolveOptions {
  /** The caller's dirfd argument (AT_FDCWD: its cwd). */
  readonly dirfd: number;
  readonly followLast: boolean;
  /**
   * The call makes the last name (mkdir, symlink, link's target): a
   * trailing slash does not make the walk follow a symlink there, it is
   * found as it is (EEXIST), as filename_create() in fs/namei.c.
   */
  readonly create?: boolean;
  /** openat2's RESOLVE_* restrictions (CACHED aside: the handler's). */
  readonly restrict?: Restrict;
}

/**
 * openat2's restrictions on a walk (openat2(2); path_init(), follow_dotdot(),
 * pick_link(), nd_jump_root() and traverse_mounts() in fs/namei.c).
 */
export interface Restrict {
  /** RESOLVE_NO_SYMLINKS: a symlink to follow is ELOOP. */
  readonly noSymlinks: boolean;
  /** RESOLVE_NO_MAGICLINKS. */
  readonly noMagicLinks: boolean;
  /** RESOLVE_BENEATH: an absolute path or symlink, or `..` above the start, is EXDEV. */
  readonly beneath: boolean;
  /** RESOLVE_IN_ROOT: the start is the root for `/`, `..` and absolute symlinks. */
  readonly inRoot: boolean;
  /** RESOLVE_NO_XDEV: crossing a mount is EXDEV. */
  readonly noXdev: boolean;
}

/**
 * A restricted walk that starts outside the workdir and ends inside it,
 * or one that leaves the workdir after entering it, is refused with EXDEV
 * (docs/design.md): the walk outside is walkPath's, which does not apply
 * the restrictions. A walk restricted only by RESOLVE_IN_ROOT is exact
 * everywhere (walkPath takes the start as its root).
 */
function onlyInRoot(restrict: Restrict): boolean {
  return !(restrict.noSymlinks || restrict.noMagicLinks || restrict.beneath || restrict.noXdev);
}

/** What the resolver needs of the call (the handler context's). */
export interface Caller {
  readonly pid: number;
  readonly reaperPid: number;
  valid(): boolean;
  openStart(dirfd: number): number;
  tgid(): number;
  /** The emulated chroot's mounts (its PATH_VIEW's mountAt), or null. */
  readonly mountAt?: ((virt: readonly string[]) => number) | null;
}

function cName(name: string): Buffer {
  return Buffer.from(`${name}\0`, 'latin1');
}

const linkBuffer = Buffer.alloc(PATH_MAX);

function readLink(fd: number): string | number {
  const length = trySyscall('readlinkat', fd, EMPTY, linkBuffer, linkBuffer.length);
  return length < 0 ? length : linkBuffer.toString('latin1', 0, length);
}

/** The caller's root, O_PATH (/proc/<tid>/root), or -errno. */
function openRoot(caller: Caller): number {
  const fd = trySyscall(
    'openat',
    AT_FDCWD,
    cName(`/proc/${caller.pid}/root`),
    O.O_PATH | O.O_CLOEXEC,
    0,
  );
  if (fd >= 0 && !caller.valid()) {
    close(fd);
    return -ERRNO.ESRCH;
  }
  return fd;
}

/**
 * Where a directory descriptor lies in the workdir: its components beneath
 * the lower or the upper root, or null. The kernel's d_path names it
 * (readlink of /proc/thread-self/fd), and a walk down those names from the
 * root must come to the same inode: a path that moved meanwhile is not
 * taken for where it was.
 */
export function placeOf(workdir: Workdir, fd: number): { rel: string[]; side: Side } | null {
  const own = identify(fd);
  if (typeof own === 'number') return null;
  if (own.id === workdir.lowerId) return { rel: [], side: 'lower' };
  if (own.id === workdir.upperId) return { rel: [], side: 'upper' };
  let path: string;
  try {
    path = readlinkSync(`/proc/thread-self/fd/${fd}`, 'latin1');
  } catch {
    return null;
  }
  let side: Side;
  let rest: string;
  if (path.startsWith(`${workdir.lowerPath}/`)) {
    side = 'lower';
    rest = path.slice(workdir.lowerPath.length + 1);
  } else if (path.startsWith(`${workdir.upperPath}/`)) {
    side = 'upper';
    rest = path.slice(workdir.upperPath.length + 1);
  } else return null;
  const rel = rest.split('/').filter((part) => part !== '');
  let at = side === 'lower' ? workdir.lowerRoot : workdir.upperRoot;
  const opened: number[] = [];
  try {
    for (const name of rel) {
      const next = trySyscall('openat', at, cName(name), PATH_FLAGS, 0);
      if (next < 0) return null;
      opened.push(next);
      at = next;
    }
    const found = identify(at);
    return typeof found !== 'number' && found.id === own.id ? { rel, side } : null;
  } finally {
    for (const opened_ of opened) close(opened_);
  }
}

type Step =
  | { readonly done: Inside }
  /** The path ends in a mount of the emulated chroot. */
  | { readonly mounted: true }
  /** Walk `text` on from `start` (owned) outside the workdir, or from the caller's root. */
  | { readonly leave: number | 'root'; readonly text: string };

/**
 * Resolves the caller's path (its bytes, latin1). Never throws for what the
 * path holds. The caller closes the result (`walked.close()` or
 * `inside.close()`).
 */
export function resolvePath(
  workdir: Workdir,
  caller: Caller,
  path: Buffer,
  options: ResolveOptions,
): Resolved {
  const restrict = options.restrict ?? null;
  const inRoot = restrict?.inRoot === true;
  let text = path.toString('latin1');
  // The kernel's nd_jump_root() under RESOLVE_BENEATH, before any lookup.
  if (restrict?.beneath === true && text.startsWith('/')) return failedOutside(EXDEV);
  // Under RESOLVE_IN_ROOT an absolute path starts at the dirfd, the root.
  if (inRoot) text = text.replace(/^\/+/, '');
  const roots = new Set([workdir.lowerRoot, workdir.upperRoot]);
  const chroot = workdir.chroot ?? null;
  if (text.startsWith('/') && chroot === null) {
    const quick = plainlyOutside(workdir, text, AT_FDCWD, options.followLast);
    if (quick !== null) return quick;
  }
  const root = inRoot
    ? caller.openStart(options.dirfd)
    : chroot === null
      ? openRoot(caller)
      : trySyscall('openat', chroot.fd, cName('.'), O.O_PATH | O.O_CLOEXEC, 0);
  if (root < 0) return failedOutside(-root);
  let links = { count: 0, pure: true };
  /** The rest of the walk where it last left the workdir, from the lower root (Outside.throughLayer). */
  let left: string | null = null;
  /** Some part of the walk was walkPath's, outside the workdir. */
  let outside = false;
  const restricted = restrict !== null && !onlyInRoot(restrict);
  /** The merged view's result; a restricted walk that came through the outside is refused. */
  const ended = (inside: Inside): Resolved => {
    if (!(restricted && outside)) return inside;
    inside.close();
    return failedOutside(EXDEV);
  };
  const mountAt = mountsBeneath(workdir, caller);
  const mounted = (): Outside => ({ where: 'outside', walked: new Walked(), mounted: true });
  try {
    const rootId = identify(root);
    const atRoot = typeof rootId === 'number' ? '' : rootId.id;
    let start: number | 'root' = text.startsWith('/') ? 'root' : caller.openStart(options.dirfd);
    let rest = text;
    for (let turns = 0; ; turns++) {
      if (turns > MAXSYMLINKS) {
        if (typeof start === 'number') close(start);
        return failedOutside(ELOOP);
      }
      const from = start === 'root' ? root : start;
      const place = placeOf(workdir, from);
      if (place === null && turns === 0 && start !== 'root' && chroot === null) {
        const base = pathOfFd(from);
        const quick =
          base === null
            ? null
            : plainlyOutside(workdir, `${base}/${rest}`, from, options.followLast, rest);
        if (quick !== null) {
          close(start);
          return quick;
        }
      }
      if (place !== null) {
        if (start !== 'root') close(start);
        // The caller stands in the workdir (its cwd, a dirfd): the merged
        // walk starts where it stands.
        const prefix = place.rel.join('/');
        const scoped = turns === 0 && (restrict?.beneath === true || inRoot);
        const step = walkInside(workdir, roots, prefix === '' ? rest : `${prefix}/${rest}`, {
          followLast: options.followLast,
          create: options.create === true,
          atRootIsWorkdir: atRoot === workdir.lowerId,
          links,
          restrict,
          mayLeave: !restricted,
          floor: scoped ? place.rel.length : null,
          mountAt,
        });
        if ('done' in step) return ended(step.done);
        if ('mounted' in step) return mounted();
        start = step.leave;
        rest = step.text;
        left = leftFrom(step);
        continue;
      }
      outside = true;
      const walked = walkPath({
        root,
        start: from,
        path: Buffer.from(rest, 'latin1'),
        followLast: options.followLast,
        tid: caller.pid,
        tgid: () => caller.tgid(),
        followMagic: (pid) =>
          pid !== null && (pid === caller.pid || isDescendantOf(pid, caller.reaperPid)),
        stopAt: (_fd, id) => id === workdir.lowerId,
        maxLookups: MAX_OUTSIDE_LOOKUPS,
      });
      if (start !== 'root') close(start);
      if (walked.errno === 0 && (walked.stopped || isWorkdir(workdir, walked.fd))) {
        const remaining = walked.stopped ? walked.rest : '';
        walked.close();
        const step = walkInside(workdir, roots, remaining, {
          followLast: options.followLast,
          create: options.create === true,
          atRootIsWorkdir: atRoot === workdir.lowerId,
          links,
          restrict,
          mayLeave: !restricted,
          floor: null,
          mountAt,
        });
        if ('done' in step) return ended(step.done);
        if ('mounted' in step) return mounted();
        start = step.leave;
        rest = step.text;
        left = leftFrom(step);
        continue;
      }
      if (walked.errno === 0 && walked.magic) {
        // A magic link (/proc/self/fd/N, cwd) to an object of the workdir:
        // the merged view's object there, when it is the one the link names.
        const inside = throughMagicLink(workdir, walked.fd);
        if (inside !== null) {
          walked.close();
          if (restrict !== null && (restrict.noMagicLinks || restrict.noSymlinks)) {
            inside.close();
            return failedOutside(ELOOP); // nd_jump_link()
          }
          return ended(inside);
        }
      }
      if (!links.pure && left !== null && chroot === null) {
        return { where: 'outside', walked, throughLayer: left };
      }
      return { where: 'outside', walked };
    }
  } finally {
    close(root);
    links = { count: 0, pure: true };
  }
}

/** Where a merged walk that left the workdir goes on, as a path from the lower root. */
function leftFrom(step: { readonly leave: number | 'root'; readonly text: string }): string {
  if (step.leave === 'root') return step.text;
  // The kernel's `..` of the lower directory (walkInside), taken again from it.
  return step.text === '' ? '..' : `../${step.text}`;
}

/**
 * The emulated chroot's mounts as the merged walk meets them: by the path
 * relative to the workdir, which lies at its place inside the root.
 */
function mountsBeneath(
  workdir: Workdir,
  caller: Caller,
): ((rel: readonly string[]) => number) | null {
  const chroot = workdir.chroot ?? null;
  const mountAt = caller.mountAt ?? null;
  if (chroot === null || mountAt === null) return null;
  const inside = workdir.lowerPath.slice(chroot.path.length);
  if (!workdir.lowerPath.startsWith(chroot.path) || (inside !== '' && !inside.startsWith('/'))) {
    return null;
  }
  const prefix = inside.split('/').filter((part) => part !== '');
  return (rel) => mountAt([...prefix, ...rel]);
}

/** The object a magic link led to, as the merged view shows it at its place; null when it shows another. */
function throughMagicLink(workdir: Workdir, fd: number): Inside | null {
  const place = placeOf(workdir, fd);
  if (place === null) return null;
  const own = identify(fd);
  if (typeof own === 'number') return null;
  const inside = insideAt(workdir, place.rel);
  const shown = inside.errno === 0 ? identify(inside.fd) : null;
  const copied = inside.side === 'upper' && workdir.copies.get(own.id) === inside.path;
  if (shown !== null && typeof shown !== 'number' && (shown.id === own.id || copied)) {
    inside.pure = false;
    return inside;
  }
  inside.close();
  return null;
}

/** The merged view's object at `rel` (not following a symlink there). The caller closes it. */
export function insideAt(workdir: Workdir, rel: readonly string[]): Inside {
  const roots = new Set([workdir.lowerRoot, workdir.upperRoot]);
  const step = walkInside(workdir, roots, rel.join('/'), {
    followLast: false,
    create: false,
    atRootIsWorkdir: false,
    links: { count: 0, pure: true },
    restrict: null,
    mayLeave: true,
    floor: null,
    mountAt: null,
  });
  if ('done' in step) return step.done;
  if ('leave' in step && typeof step.leave === 'number') close(step.leave);
  const outside = new Inside(roots);
  outside.errno = ERRNO.EXDEV;
  return outside;
}

const PROBE_FOLLOW = encodeOpenHow({
  flags: BigInt(O.O_PATH | O.O_CLOEXEC),
  resolve: BigInt(RESOLVE_NO_SYMLINKS),
});
const PROBE_NOFOLLOW = encodeOpenHow({
  flags: BigInt(O.O_PATH | O.O_CLOEXEC | O.O_NOFOLLOW),
  resolve: BigInt(RESOLVE_NO_SYMLINKS),
});

function pathOfFd(fd: number): string | null {
  try {
    const path = readlinkSync(`/proc/thread-self/fd/${fd}`, 'latin1');
    return path.startsWith('/') ? path : null;
  } catch {
    return null;
  }
}

/**
 * The fast way out, for the many paths nowhere near the workdir (a
 * program's libraries, its imports): a path with no `..`, whose names
 * (`lexical`: from the root, or from the start directory's path) do not
 * lead into the workdir, and whose lookup by the kernel meets no symlink
 * (openat2 RESOLVE_NO_SYMLINKS; a last one is followed when the call
 * follows it, so it must not be there either): the kernel's own walk for
 * the caller goes through exactly those names and never enters the
 * workdir. Null: walk it.
 */
function plainlyOutside(
  workdir: Workdir,
  lexical: string,
  start: number,
  followLast: boolean,
  text = lexical,
): Outside | null {
  const names = lexical.split('/').filter((name) => name !== '' && name !== '.');
  if (names.includes('..')) return null;
  const lower = workdir.lowerPath.split('/').filter((name) => name !== '');
  if (lower.every((name, index) => names[index] === name)) return null;
  const how = followLast ? PROBE_FOLLOW : PROBE_NOFOLLOW;
  const fd = trySyscall('openat2', start, cName(text), how, how.length);
  if (fd === -ELOOP || fd === -ERRNO.EXDEV || fd === -ERRNO.EAGAIN) return null;
  if (fd >= 0) close(fd);
  return failedOutside(fd >= 0 ? 0 : -fd);
}

/**
 * The fast answer for a call that only looks at a path (docs/design.md,
 * "Copy-on-write: reads the layer holds nothing for"): the path's
 * components beneath the workdir when the kernel's own lookup of it for
 * the caller finds what the merged view shows there and the merged walk
 * would be `pure`, else null (walk it). That holds when the path has no
 * `..`, starts at the caller's root (its lexical names leading into the
 * workdir) or at a directory of the lower, meets no symlink in the lower
 * (openat2 RESOLVE_NO_SYMLINKS; a last one only when the call follows
 * it), and the layer holds nothing on the way: the upper has no entry for
 * its first name beneath the workdir (an upper entry deeper down needs
 * its directories there too) and no component is hidden by a whiteout.
 * Whiteouts only grow, so reading them after the upper answers for the
 * state of the layer when the upper was read. Not with an emulated
 * chroot, whose walk knows the mounts.
 */
export function untouchedPath(
  workdir: Workdir,
  openStart: (dirfd: number) => number,
  path: Buffer,
  options: { readonly dirfd: number; readonly followLast: boolean },
): string[] | null {
  if (workdir.chroot !== null && workdir.chroot !== undefined) return null;
  const text = path.toString('latin1');
  const names = text.split('/').filter((name) => name !== '' && name !== '.');
  if (names.includes('..')) return null;
  let rel: string[];
  let start = AT_FDCWD;
  if (text.startsWith('/')) {
    // The caller's root is the supervisor's without an emulated chroot (as plainlyOutside takes it).
    const lower = workdir.lowerPath.split('/').filter((name) => name !== '');
    if (names.length < lower.length || !lower.every((name, index) => names[index] === name)) {
      return null;
    }
    rel = names.slice(lower.length);
  } else {
    start = openStart(options.dirfd);
    const own = identify(start);
    let place: { rel: string[]; side: Side } | null = null;
    if (typeof own !== 'number' && own.id === workdir.lowerId) place = { rel: [], side: 'lower' };
    else if (typeof own !== 'number') place = placeOf(workdir, start);
    if (place === null || place.side !== 'lower') {
      close(start);
      return null;
    }
    rel = [...place.rel, ...names];
  }
  try {
    const how = options.followLast ? PROBE_FOLLOW : PROBE_NOFOLLOW;
    const found = trySyscall('openat2', start, cName(text), how, how.length);
    if (found === -ELOOP || found === -EXDEV || found === -ERRNO.EAGAIN) return null;
    if (found >= 0) close(found);
  } finally {
    if (start !== AT_FDCWD) close(start);
  }
  if (rel.length === 0) return rel;
  const upper = trySyscall('openat', workdir.upperRoot, cName(rel[0]!), PATH_FLAGS, 0);
  if (upper >= 0) close(upper);
  if (upper !== -ENOENT) return null;
  return workdir.layer.hidden(rel.join('/')) ? null : rel;
}

function isWorkdir(workdir: Workdir, fd: number): boolean {
  const found = identify(fd);
  return typeof found !== 'number' && found.id === workdir.lowerId;
}

function failedOutside(errno: number): Outside {
  const walked = new Walked();
  walked.errno = errno;
  return { where: 'outside', walked };
}

/**
 * The merged walk of `text` from the workdir's root. Ends inside (`done`),
 * or leaves the workdir by `..` above it or an absolute symlink.
 */
function walkInside(
  workdir: Workdir,
  roots: ReadonlySet<number>,
  text: string,
  options: {
    followLast: boolean;
    create: boolean;
    atRootIsWorkdir: boolean;
    /** Shared by the walk's parts: symlinks followed, and whether every name came from the lower. */
    links: { count: number; pure: boolean };
    restrict: Restrict | null;
    /** The walk may leave the workdir (`..` above it, an absolute symlink); else that is EXDEV. */
    mayLeave: boolean;
    /**
     * RESOLVE_BENEATH or RESOLVE_IN_ROOT from a start inside the workdir:
     * the start's depth, which `..` does not climb above and where an
     * absolute symlink lands (IN_ROOT).
     */
    floor: number | null;
    /** What an emulated chroot mounts at a path relative to the workdir (a descriptor, or -1), or null. */
    mountAt: ((rel: readonly string[]) => number) | null;
  },
): Step {
  const restrict = options.restrict;
  const floor = options.floor;
  const lowerMount = restrict?.noXdev === true ? mountOf(workdir.lowerRoot) : null;
  const layer = workdir.layer;
  const trailingSlash = text.endsWith('/');
  const todo = text
    .split('/')
    .filter((part) => part !== '')
    .reverse();
  const levels: Level[] = [{ upper: workdir.upperRoot, lower: workdir.lowerRoot }];
  const rel: string[] = [];
  const result = new Inside(roots);
  const release = (level: Level): void => {
    if (level.upper >= 0 && !roots.has(level.upper)) close(level.upper);
    if (level.lower >= 0 && !roots.has(level.lower)) close(level.lower);
  };
  const releaseAll = (): void => {
    for (const level of levels) release(level);
    levels.length = 0;
  };
  const fail = (errno: number): Step => {
    releaseAll();
    result.pure = options.links.pure;
    result.errno = errno;
    result.rel = [...rel];
    return { done: result };
  };
  let dotted = false;
  while (todo.length > 0) {
    const name = todo.pop()!;
    const last = todo.length === 0;
    const follow = !last || options.followLast || (trailingSlash && !options.create);
    if (name === '.' || name === '..') {
      // The kernel looks `.` and `..` up in the directory: search permission on it.
      const here = levels.at(-1)!;
      const searched = trySyscall(
        'openat',
        here.upper >= 0 ? here.upper : here.lower,
        cName(name),
        PATH_FLAGS,
        0,
      );
      if (searched < 0) return fail(-searched);
      close(searched);
    }
    if (name === '.') {
      dotted = last;
      continue;
    }
    if (name === '..') {
      dotted = last;
      if (floor !== null && rel.length === floor) {
        // follow_dotdot() at the root: EXDEV under RESOLVE_BENEATH, stays under IN_ROOT.
        if (restrict?.beneath === true) return fail(EXDEV);
        continue;
      }
      if (rel.length === 0) {
        if (options.atRootIsWorkdir) continue;
        if (!options.mayLeave) return fail(EXDEV);
        // The kernel's own `..` of the lower directory, outside the workdir.
        const up = trySyscall('openat', workdir.lowerRoot, cName('..'), PATH_FLAGS, 0);
        if (up < 0) return fail(-up);
        releaseAll();
        result.close();
        return { leave: up, text: [...todo].reverse().join('/') + (trailingSlash ? '/' : '') };
      }
      rel.pop();
      release(levels.pop()!);
      continue;
    }
    dotted = false;
    const here = levels.at(-1)!;
    const childPath = [...rel, name].join('/');
    const looked = lookUp(layer, here, name, childPath, options.mountAt?.([...rel, name]) ?? -1);
    if (typeof looked !== 'number' && lowerMount !== null && looked.side === 'lower') {
      // Into a mount beneath the workdir (traverse_mounts() under RESOLVE_NO_XDEV).
      if (mountOf(looked.lower) !== lowerMount) {
        release(looked);
        return fail(EXDEV);
      }
    }
    if (typeof looked === 'number') {
      if (looked === -ENOENT && last) {
        options.links.pure = false;
        // Where it would be.
        rel.push(name);
        result.rel = [...rel];
        result.errno = ENOENT;
        result.kind = 'missing';
        if (here.mount) {
          releaseAll();
          result.close();
          return { mounted: true };
        }
        result.parent = levels.pop()!;
        result.pure = false;
        releaseAll();
        return { done: result };
      }
      return fail(-looked);
    }
    if (looked.mode === S_IFLNK && follow) {
      if (looked.side === 'upper') options.links.pure = false;
      if (restrict?.noSymlinks === true) {
        release(looked);
        return fail(ELOOP);
      }
      const target = readLink(looked.side === 'upper' ? looked.upper : looked.lower);
      release(looked);
      if (typeof target === 'number') return fail(-target);
      if (++options.links.count > MAXSYMLINKS) return fail(ELOOP);
      const remaining = [...todo].reverse();
      if (target.startsWith('/') && floor !== null) {
        // nd_jump_root(): EXDEV under RESOLVE_BENEATH; the start under IN_ROOT.
        if (restrict?.beneath === true) return fail(EXDEV);
        while (rel.length > floor) {
          rel.pop();
          release(levels.pop()!);
        }
        todo.push(
          ...target
            .split('/')
            .filter((part) => part !== '')
            .reverse(),
        );
        continue;
      }
      if (target.startsWith('/')) {
        if (!options.mayLeave) return fail(EXDEV);
        releaseAll();
        result.close();
        const joined = [target, ...remaining].join('/');
        return { leave: 'root', text: joined + (trailingSlash ? '/' : '') };
      }
      if (target === '') return fail(ENOENT);
      todo.push(
        ...target
          .split('/')
          .filter((part) => part !== '')
          .reverse(),
      );
      continue;
    }
    if (!last && looked.mode !== S_IFDIR) {
      release(looked);
      return fail(ENOTDIR);
    }
    if (looked.side === 'upper') options.links.pure = false;
    rel.push(name);
    levels.push({ upper: looked.upper, lower: looked.lower, mount: looked.mount });
    result.side = looked.side;
    result.mode = looked.mode;
  }
  if (rel.length === 0) {
    result.side = 'lower';
    result.mode = S_IFDIR;
  }
  if (levels.at(-1)!.mount) {
    releaseAll();
    result.close();
    return { mounted: true };
  }
  const object = levels.pop()!;
  if (trailingSlash && result.mode !== S_IFDIR && !options.create) {
    release(object);
    return fail(ENOTDIR);
  }
  result.rel = [...rel];
  result.dotted = dotted || rel.length === 0;
  result.upper = object.upper;
  result.lower = object.lower;
  result.parent = levels.pop() ?? null;
  result.kind =
    result.mode === S_IFDIR ? 'directory' : result.mode === S_IFLNK ? 'symlink' : 'file';
  if (rel.length === 0) result.side = object.upper >= 0 ? 'upper' : 'lower';
  result.pure = options.links.pure;
  releaseAll();
  return { done: result };
}

/**
 * One name of a merged directory: the upper's entry, else the lower's
 * unless hidden. In a mount of the emulated chroot, or at a mount point
 * (`mounted`, a descriptor this takes), the mount's own, with no layer.
 */
function lookUp(
  layer: Layer,
  here: Level,
  name: string,
  childPath: string,
  mounted: number,
): (Level & { side: Side; mode: number }) | number {
  if (mounted >= 0)
    return { upper: -1, lower: mounted, side: 'lower', mode: modeOf(mounted), mount: true };
  if (here.mount) {
    const fd = trySyscall('openat', here.lower, cName(name), PATH_FLAGS, 0);
    return fd < 0 ? fd : { upper: -1, lower: fd, side: 'lower', mode: modeOf(fd), mount: true };
  }
  const upper =
    here.upper >= 0 ? trySyscall('openat', here.upper, cName(name), PATH_FLAGS, 0) : -ENOENT;
  if (upper < 0 && upper !== -ENOENT) return upper;
  const upperMode = upper >= 0 ? modeOf(upper) : 0;
  // Beneath a directory of the upper the lower's is merged in, unless the
  // layer hides it (deleted, or beneath an opaque directory).
  const wantLower =
    here.lower >= 0 && (upper < 0 || upperMode === S_IFDIR) && !layer.hidden(childPath);
  let lower = wantLower ? trySyscall('openat', here.lower, cName(name), PATH_FLAGS, 0) : -ENOENT;
  if (lower < 0 && lower !== -ENOENT && upper < 0) return lower;
  if (upper >= 0) {
    if (lower >= 0 && modeOf(lower) !== S_IFDIR) {
      close(lower);
      lower = -1;
    }
    return { upper, lower: Math.max(lower, -1), side: 'upper', mode: upperMode };
  }
  if (lower >= 0) return { upper: -1, lower, side: 'lower', mode: modeOf(lower) };
  return -ENOENT;
}

const mountBuffer = Buffer.alloc(256);

/** The mount id of a descriptor's object (statx stx_mnt_id), or '' when unknown. */
function mountOf(fd: number): string {
  const result = trySyscall('statx', fd, EMPTY, AT_EMPTY_PATH, STATX_MNT_ID, mountBuffer);
  if (result < 0 || (mountBuffer.readUInt32LE(0) & STATX_MNT_ID) === 0) return '';
  return mountBuffer.readBigUInt64LE(144).toString();
}

function modeOf(fd: number): number {
  const found = identify(fd);
  return typeof found === 'number' ? 0 : found.mode;
}
