// A chroot's root and its mounts, and the walk of a path inside them: the
// walk openat2(RESOLVE_IN_ROOT) makes (fs/namei.c: `..` at the root stays
// there, an absolute symlink starts again from the root), one name at a
// time beneath a directory descriptor (openat O_PATH|O_NOFOLLOW), so that a
// mount's host directory takes the place of the name it is mounted at and
// `..` above a mount's top goes back to the directory it is mounted in.
// Nothing is ever opened by a path built from strings: a component swapped
// for a symlink meanwhile is found as a symlink and followed inside the root.
import { readlinkSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { parseMount } from '@sandlock/policy';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  close,
  ERRNO,
  encodeOpenHow,
  hostArch,
  MAXSYMLINKS,
  openFlags,
  PATH_MAX,
  PROC_SUPER_MAGIC,
  RESOLVE_BENEATH,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_SYMLINKS,
  RESOLVE_NO_XDEV,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  STATX_INO,
  STATX_MNT_ID,
  STATX_TYPE,
  trySyscall,
} from '@sandlock/sys';

const O = openFlags(hostArch());
const PATH_FLAGS = O.O_PATH | O.O_CLOEXEC | O.O_NOFOLLOW;
const { ENOENT, ENOTDIR, ELOOP, EXDEV } = ERRNO;
const EMPTY = Buffer.from('\0');
/** The directory of a straight path: no symlink on the way, `..` kept in the root. */
const STRAIGHT_HOW = encodeOpenHow({
  flags: BigInt(O.O_PATH | O.O_DIRECTORY | O.O_CLOEXEC),
  resolve: BigInt(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS),
});

/** A host path shown inside the root. */
export interface Mount {
  /** Where, by components ([] would be the root itself: refused). */
  readonly virt: readonly string[];
  readonly host: string;
  readonly readOnly: boolean;
  /** O_PATH of the host object, and of the directory holding it (for reopening a file mount by name). */
  readonly fd: number;
  readonly hostParent: number;
  readonly hostName: string;
  /** A procfs: its paths are the kernel's and the procfs modules' (they name processes by their pids). */
  readonly proc: boolean;
}

export function cName(name: string): Buffer {
  return Buffer.from(`${name}\0`, 'latin1');
}

export function components(text: string): string[] {
  return text.split('/').filter((part) => part !== '' && part !== '.');
}

function openPath(path: string, flags = O.O_PATH | O.O_CLOEXEC): number {
  const fd = trySyscall('openat', AT_FDCWD, cName(path), flags, 0);
  if (fd < 0) throw new Error(`sandlock: chroot: cannot open ${path}: errno ${-fd}`);
  return fd;
}

const statxBuffer = Buffer.alloc(256);

/** statx of a descriptor: its S_IFMT bits, "dev:ino" and its mount's id, or -errno. */
export function identify(fd: number): { mode: number; id: string; mount: bigint } | number {
  const mask = STATX_TYPE | STATX_INO | STATX_MNT_ID;
  const result = trySyscall('statx', fd, EMPTY, AT_EMPTY_PATH, mask, statxBuffer);
  if (result < 0) return result;
  return {
    mode: statxBuffer.readUInt16LE(28) & S_IFMT,
    id: `${statxBuffer.readUInt32LE(136)}:${statxBuffer.readUInt32LE(140)}:${statxBuffer.readBigUInt64LE(32)}`,
    // stx_mnt_id; 0 where the kernel did not fill it in (stx_mask).
    mount:
      (statxBuffer.readUInt32LE(0) & STATX_MNT_ID) !== 0 ? statxBuffer.readBigUInt64LE(144) : 0n,
  };
}

const statfsBuffer = Buffer.alloc(120);

function isProc(fd: number): boolean {
  const result = trySyscall('fstatfs', fd, statfsBuffer);
  return result === 0 && statfsBuffer.readBigInt64LE(0) === BigInt(PROC_SUPER_MAGIC);
}

const linkBuffer = Buffer.alloc(PATH_MAX);

export function readLink(fd: number): string | number {
  const length = trySyscall('readlinkat', fd, EMPTY, linkBuffer, linkBuffer.length);
  return length < 0 ? length : linkBuffer.toString('latin1', 0, length);
}

/** A directory of the walk: its descriptor, where it is inside the root, the mount it lies in. */
interface Level {
  fd: number;
  virt: string[];
  mount: Mount | null;
  /** S_IFMT bits (the walk goes on only from directories). */
  mode: number;
  /** The kernel's mount id of the directory (0: not known). */
  mnt?: bigint;
}

/**
 * Where a path lands. Owns its descriptors ({@link Found.close}). With
 * `errno` 0 the object exists (`fd`); with ENOENT and `parent` >= 0 the
 * last name is missing and `parent` is where it would be made.
 */
export class Found {
  errno = 0;
  /** O_PATH of the object (-1: missing). */
  fd = -1;
  /** O_PATH of the directory holding the last name (-1: the root or a mount's top, or a dotted path). */
  parent = -1;
  name = '';
  /** Where it is inside the root. */
  virt: string[] = [];
  mode = 0;
  /** The mount it lies in (null: the root's own tree). */
  mount: Mount | null = null;
  /** It is a mount's top (or the root): it cannot be removed nor renamed. */
  top = false;
  /** The path ended in `.` or `..`. */
  dotted = false;
  /** The walk went into a procfs mount: the kernel's (and the procfs modules') to resolve. */
  proc = false;
  /** Found in a copy-on-write layer over the root (layer-walk.ts): its store, not the root's tree. */
  layered = false;

  constructor(private readonly keep: ReadonlySet<number>) {}

  get lastMissing(): boolean {
    return this.errno === ENOENT && this.parent >= 0 && this.fd < 0;
  }

  get path(): string {
    return `/${this.virt.join('/')}`;
  }

  close(): void {
    for (const fd of new Set([this.fd, this.parent])) {
      if (fd >= 0 && !this.keep.has(fd)) close(fd);
    }
    this.fd = this.parent = -1;
  }
}

export interface WalkOptions {
  readonly followLast: boolean;
  /** The call makes the last name: a trailing slash does not follow a symlink there (filename_create()). */
  readonly create?: boolean;
  /**
   * openat2's RESOLVE_* flags of the caller's own (BENEATH, IN_ROOT,
   * NO_SYMLINKS, NO_XDEV; the others are the handler's): the walk gives the
   * kernel's errnos for them (fs/namei.c), the start being the caller's
   * dirfd for BENEATH and IN_ROOT.
   */
  readonly resolve?: number;
}

/** The root of one sandbox, as a thread holds it: descriptors open for the session's life. */
export class Root {
  /** Canonical host path of the root. */
  readonly path: string;
  readonly fd: number;
  readonly mounts: readonly Mount[];
  private readonly keep: Set<number>;

  private constructor(path: string, fd: number, mounts: Mount[]) {
    this.path = path;
    this.fd = fd;
    this.mounts = mounts;
    this.keep = new Set([fd, ...mounts.flatMap((mount) => [mount.fd, mount.hostParent])]);
  }

  /** Opens `dir` (canonical) and the mounts (`VIRT:HOST[:ro]`). Throws when one cannot be opened. */
  static open(dir: string, specs: readonly string[]): Root {
    const opened: number[] = [];
    try {
      const fd = openPath(dir, O.O_PATH | O.O_DIRECTORY | O.O_CLOEXEC);
      opened.push(fd);
      const mounts: Mount[] = [];
      for (const text of specs) {
        const spec = parseMount(text);
        if (typeof spec === 'string') throw new Error(`sandlock: chroot: mount ${text}: ${spec}`);
        const virt = components(spec.virtual);
        if (virt.length === 0 || virt.includes('..')) {
          throw new Error(`sandlock: chroot: mount ${text}: VIRT must name a path below /`);
        }
        const host = spec.host;
        const mountFd = openPath(host);
        opened.push(mountFd);
        const hostParent = openPath(dirname(host), O.O_PATH | O.O_DIRECTORY | O.O_CLOEXEC);
        opened.push(hostParent);
        const proc = isProc(mountFd);
        if (proc && spec.virtual.replace(/\/+$/, '') !== host.replace(/\/+$/, '')) {
          // Its paths are left to the kernel, which finds them at the host's place.
          throw new Error(
            `sandlock: chroot: mount ${text}: a procfs is mounted at its own path only`,
          );
        }
        mounts.push({
          virt,
          host: readlinkSync(`/proc/self/fd/${mountFd}`),
          readOnly: spec.readOnly,
          fd: mountFd,
          hostParent,
          hostName: basename(host),
          proc,
        });
      }
      return new Root(readlinkSync(`/proc/self/fd/${fd}`), fd, mounts);
    } catch (error) {
      for (const fd of opened) close(fd);
      throw error;
    }
  }

  close(): void {
    for (const fd of this.keep) close(fd);
  }

  /** The mount at exactly these components, if any. */
  mountAt(virt: readonly string[]): Mount | null {
    for (const mount of this.mounts) {
      if (mount.virt.length === virt.length && mount.virt.every((name, i) => virt[i] === name)) {
        return mount;
      }
    }
    return null;
  }

  /**
   * A host path (the kernel's d_path of a descriptor) as the sandbox sees
   * it: beneath a mount's host (the longest) or beneath the root; null
   * outside both.
   */
  virtualOf(host: string): string[] | null {
    let best: Mount | null = null;
    for (const mount of this.mounts) {
      if (within(host, mount.host) && (best === null || mount.host.length > best.host.length)) {
        best = mount;
      }
    }
    if (best !== null) return [...best.virt, ...components(host.slice(best.host.length))];
    if (within(host, this.path)) return components(host.slice(this.path.length));
    return null;
  }

  /**
   * The walk of `text` (latin1 bytes of the caller's path) from the root
   * (absolute) or from `start` (the levels of the caller's directory, owned
   * by the walk). Never throws for what the path holds.
   */
  walk(text: string, start: Level[] | null, options: WalkOptions): Found {
    if (text.startsWith('/') && !options.resolve) {
      const quick = this.straight(text, options);
      if (quick !== null) {
        if (start !== null) this.release(start.slice(1));
        return quick;
      }
    }
    return this.walkNames(text, start, options);
  }

  /**
   * The fast way for the many absolute paths with no symlink, no `..` and no
   * mount on the way: the kernel's openat2(RESOLVE_IN_ROOT |
   * RESOLVE_NO_SYMLINKS) of the directory, then the last name beneath it
   * (two lookups, whatever the length). A symlink met (ELOOP) or anything
   * else unusual: null, and the names are walked one by one.
   */
  private straight(text: string, options: WalkOptions): Found | null {
    const names = text.split('/').filter((part) => part !== '');
    if (names.length === 0 || text.endsWith('/')) return null;
    if (names.some((name) => name === '.' || name === '..')) return null;
    for (let i = 1; i <= names.length; i++) {
      if (this.mountAt(names.slice(0, i)) !== null) return null;
    }
    const name = names.at(-1)!;
    const dirText = names.length === 1 ? '.' : names.slice(0, -1).join('/');
    const parent = trySyscall(
      'openat2',
      this.fd,
      cName(dirText),
      STRAIGHT_HOW,
      STRAIGHT_HOW.length,
    );
    if (parent < 0) return null;
    const fd = trySyscall('openat', parent, cName(name), PATH_FLAGS, 0);
    const found = new Found(this.keep);
    found.name = name;
    found.virt = names;
    if (fd < 0) {
      if (fd !== -ENOENT) {
        close(parent);
        return null;
      }
      found.errno = ENOENT;
      found.parent = parent;
      return found;
    }
    const id = identify(fd);
    if (typeof id === 'number' || (id.mode === S_IFLNK && options.followLast)) {
      close(fd);
      close(parent);
      return null;
    }
    found.fd = fd;
    found.parent = parent;
    found.mode = id.mode;
    return found;
  }

  private walkNames(text: string, start: Level[] | null, options: WalkOptions): Found {
    const found = new Found(this.keep);
    const resolve = options.resolve ?? 0;
    const beneath = (resolve & RESOLVE_BENEATH) !== 0;
    const noSymlinks = (resolve & RESOLVE_NO_SYMLINKS) !== 0;
    const noXdev = (resolve & RESOLVE_NO_XDEV) !== 0;
    // RESOLVE_BENEATH and RESOLVE_IN_ROOT: the start (the caller's dirfd or
    // cwd) is the floor the walk neither leaves nor jumps back to from `/`.
    const floored = beneath || (resolve & RESOLVE_IN_ROOT) !== 0;
    if (floored && text.startsWith('/') && beneath) {
      if (start !== null) this.release(start.slice(1));
      found.errno = EXDEV; // nd_jump_root()
      return found;
    }
    const levels: Level[] =
      (text.startsWith('/') && !floored) || start === null ? [this.rootLevel()] : start;
    if (text.startsWith('/') && !floored && start !== null) this.release(start.slice(1));
    const floor = levels.length;
    const trailingSlash = text.endsWith('/');
    const todo = text
      .split('/')
      .filter((part) => part !== '')
      .reverse();
    let links = 0;
    let dotted = false;
    const fail = (errno: number): Found => {
      this.release(levels.slice(1));
      found.errno = errno;
      return found;
    };
    while (todo.length > 0) {
      const name = todo.pop()!;
      const last = todo.length === 0;
      const here = levels.at(-1)!;
      if (here.mount?.proc) {
        this.release(levels.slice(1));
        found.proc = true;
        return found;
      }
      if (name === '.' || name === '..') {
        // The kernel looks them up in the directory: search permission on it.
        const searched = trySyscall('openat', here.fd, cName('.'), PATH_FLAGS, 0);
        if (searched < 0) return fail(-searched);
        close(searched);
        dotted = last;
        if (name === '..' && floored && levels.length === floor) {
          if (beneath) return fail(EXDEV); // follow_dotdot(): `..` at the root
          continue;
        }
        if (name === '..' && levels.length > 1) {
          const above = levels.at(-2)!;
          if (noXdev && this.crosses(here, above)) return fail(EXDEV);
          this.release([levels.pop()!]);
        }
        continue;
      }
      dotted = false;
      const virt = [...here.virt, name];
      const mount = this.mountAt(virt);
      let fd: number;
      if (mount !== null) {
        fd = mount.fd;
      } else {
        fd = trySyscall('openat', here.fd, cName(name), PATH_FLAGS, 0);
        if (fd < 0) {
          if (fd === -ENOENT && last) {
            found.errno = ENOENT;
            found.parent = here.fd;
            found.name = name;
            found.virt = virt;
            found.mount = here.mount;
            this.release(levels.slice(1, -1));
            return found;
          }
          return fail(-fd);
        }
      }
      const id = identify(fd);
      if (typeof id === 'number') {
        if (mount === null) close(fd);
        return fail(-id);
      }
      const follow = !last || options.followLast || (trailingSlash && options.create !== true);
      if (id.mode === S_IFLNK && follow && mount === null) {
        if (noSymlinks) {
          close(fd);
          return fail(ELOOP); // pick_link()
        }
        const target = readLink(fd);
        close(fd);
        if (typeof target === 'number') return fail(-target);
        if (++links > MAXSYMLINKS) return fail(ELOOP);
        if (target === '') return fail(ENOENT);
        if (target.startsWith('/')) {
          if (beneath) return fail(EXDEV);
          const top = floored ? floor : 1;
          if (noXdev && levels.length > top && this.crosses(here, levels[top - 1]!)) {
            return fail(EXDEV); // nd_jump_root()
          }
          this.release(levels.splice(top));
        }
        todo.push(
          ...target
            .split('/')
            .filter((part) => part !== '')
            .reverse(),
        );
        continue;
      }
      if (!last && id.mode !== S_IFDIR) {
        if (mount === null) close(fd);
        return fail(ENOTDIR);
      }
      const next = { fd, virt, mount: mount ?? here.mount, mode: id.mode, mnt: id.mount };
      if (noXdev && this.crosses(here, next)) {
        if (mount === null) close(fd);
        return fail(EXDEV); // traverse_mounts(), follow_dotdot()
      }
      levels.push(next);
    }
    const object = levels.at(-1)!;
    found.mode = object.mode;
    if (object.mount?.proc) {
      this.release(levels.slice(1));
      found.proc = true;
      return found;
    }
    if (trailingSlash && found.mode !== S_IFDIR && options.create !== true) return fail(ENOTDIR);
    found.fd = object.fd;
    found.virt = object.virt;
    found.mount = object.mount;
    found.dotted = dotted;
    found.top = levels.length === 1 || (object.mount !== null && object.mount.fd === object.fd);
    found.name = object.virt.at(-1) ?? '';
    const parent = levels.length > 1 && !found.top && !dotted ? levels.at(-2)!.fd : -1;
    found.parent = parent;
    this.release(levels.slice(1).filter((level) => level.fd !== object.fd && level.fd !== parent));
    return found;
  }

  /**
   * Whether going from one directory to the other crosses a mount: one of
   * the root's (a host tree shown there) or one of the host's in the tree.
   */
  private crosses(from: Level, to: Level): boolean {
    if (from.mount !== to.mount) return true;
    return this.mountIdOf(from) !== this.mountIdOf(to);
  }

  private mountIdOf(level: Level): bigint {
    if (level.mnt === undefined) {
      const id = identify(level.fd);
      level.mnt = typeof id === 'number' ? -1n : id.mount;
    }
    return level.mnt;
  }

  private rootLevel(): Level {
    return { fd: this.fd, virt: [], mount: null, mode: S_IFDIR };
  }

  private release(levels: readonly Level[]): void {
    for (const level of levels) if (!this.keep.has(level.fd)) close(level.fd);
  }

  /**
   * The levels of a directory given by its descriptor (the caller's cwd or
   * dirfd, in this thread): its place inside the root, walked down again
   * from the root and checked to be the same directory. Outside the root
   * (or moved meanwhile): the root, as RESOLVE_IN_ROOT takes a start that
   * is not beneath it.
   */
  levelsOf(fd: number): Level[] {
    let host: string;
    try {
      host = readlinkSync(`/proc/thread-self/fd/${fd}`, 'latin1');
    } catch {
      return [this.rootLevel()];
    }
    const virt = host.startsWith('/') ? this.virtualOf(host) : null;
    if (virt === null || virt.length === 0) return [this.rootLevel()];
    const own = identify(fd);
    const levels: Level[] = [this.rootLevel()];
    for (const name of virt) {
      const here = levels.at(-1)!;
      const next = [...here.virt, name];
      const mount = this.mountAt(next);
      const child = mount?.fd ?? trySyscall('openat', here.fd, cName(name), PATH_FLAGS, 0);
      if (child < 0) break;
      levels.push({ fd: child, virt: next, mount: mount ?? here.mount, mode: S_IFDIR });
    }
    const reached = identify(levels.at(-1)!.fd);
    if (
      levels.length === virt.length + 1 &&
      typeof own !== 'number' &&
      typeof reached !== 'number' &&
      own.id === reached.id
    ) {
      return levels;
    }
    this.release(levels.slice(1));
    return [this.rootLevel()];
  }
}

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);
}
