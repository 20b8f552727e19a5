// Metadata calls by path (chmod, chown, utimes, xattrs) whose path the
// merged walk found outside the workdir. Landlock mediates none of them,
// and a call let through has its path read and walked again by the kernel:
// another thread of the caller may have rewritten the string, or swapped a
// symlink or a directory on the way, so that it then names a real file of
// the workdir. So the change is made here, on the object the walk pinned
// (ctx.walk: the caller's view, its ids, no capabilities), by this thread
// with the caller's ids and no capabilities: the kernel's own checks of the
// caller (owner, xattr namespaces), on that object and no other. An object
// the walk found in the workdir after all (the race won, or a magic link to
// a file the layer replaced) is the layer's: changed on its copy where the
// merged view shows it there (as a descriptor's, fd-meta.ts), else nothing.
//
// Left to another module: fs-meta, where it is on (a root supervisor with
// fsWrite: it pins the path itself and refuses any real file of the
// workdir), and an emulated chroot's module, whose view the path is in.
import { readlinkSync } from 'node:fs';
import { type Answer, answer } from '@sandlock/dispatch/module';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  bytePath,
  callAsCaller,
  ERRNO,
  type ErrnoName,
  pathWithin,
  trySyscall,
  Walked,
} from '@sandlock/sys';
import type { Ctx, Session } from '../call.js';
import { placeOf } from '../resolve.js';
import { kindOf } from '../through-layer.js';
import { type Change, onLowerObject } from './fd-meta.js';

const EMPTY = Buffer.from([0]);

/** /proc/thread-self/fd/<fd>, NUL-terminated: the pinned object, through its magic link. */
function pinnedPath(fd: number): Buffer {
  return Buffer.from(`/proc/thread-self/fd/${fd}\0`);
}

/** A change by path, as made outside the workdir and in the layer. */
export interface PathChange {
  /** On the layer's copy of an object of the workdir. */
  readonly inLayer: Change;
  /** On the pinned (O_PATH) object, by this thread: -errno or the result. */
  readonly onPinned: (fd: number) => number;
  /** What the kernel answers this change on a symlink itself, where it refuses it. */
  readonly onSymlink?: ErrnoName;
}

/** The changes on a pinned object (never by its caller's path). */
export const onPinned = {
  chmod: (mode: number) => (fd: number) => trySyscall('fchmodat', AT_FDCWD, pinnedPath(fd), mode),
  chown: (uid: number, gid: number) => (fd: number) =>
    trySyscall('fchownat', fd, EMPTY, uid, gid, AT_EMPTY_PATH),
  utimes: (times: Buffer | null) => (fd: number) =>
    trySyscall('utimensat', fd, EMPTY, times, AT_EMPTY_PATH),
  /** `name` and `value` NUL-terminated / as given; a value of 0 bytes is passed as one byte. */
  setxattr: (name: Buffer, value: Buffer, size: number, flags: number) => (fd: number) =>
    trySyscall('setxattr', pinnedPath(fd), name, value, size, flags),
  removexattr: (name: Buffer) => (fd: number) => trySyscall('removexattr', pinnedPath(fd), name),
};

type Place = 'outside' | 'workdir' | { readonly rel: string[] };

/**
 * Where a pinned object lies, by the kernel's d_path of it: beneath the
 * lower at a place the merged walk can name (`rel`), somewhere in the
 * workdir it cannot (refused), or outside (the upper counts as outside:
 * nothing of the real tree is there).
 */
function placeOfPinned(session: Session, fd: number): Place {
  const workdir = session.workdir;
  let path: string;
  try {
    path = readlinkSync(`/proc/thread-self/fd/${fd}`, 'latin1');
  } catch {
    return 'workdir';
  }
  if (path !== workdir.lowerPath && !path.startsWith(`${workdir.lowerPath}/`)) return 'outside';
  const place = placeOf(workdir, fd);
  return place === null || place.side !== 'lower' ? 'workdir' : { rel: place.rel };
}

/**
 * The answer to a metadata call whose copied path the merged walk found
 * outside the workdir, with `errno` (0: found).
 */
export function onOutsidePath(
  ctx: Ctx,
  session: Session,
  target: { readonly path: Buffer; readonly dirfd: number; readonly follow: boolean },
  errno: number,
  change: PathChange,
  /** The object the reaper pinned through a link of the layer (through-layer.ts): taken instead of a walk. */
  pinned?: number,
): Answer {
  const policy = ctx.session.policy;
  // Nothing else writable: refused, as its filter refuses it without a workdir.
  if (policy.fsWrite.length === 0)
    return errno !== 0 ? answer.errno(errno) : answer.errno('EACCES');
  if (pinned !== undefined) {
    const kind = kindOf(pinned);
    if (typeof kind === 'number') return answer.errno(-kind);
    // fs-meta cannot take it (its walk of the caller's path does not see the
    // layer): its rule, what the sandbox may write by its policy, applied here.
    if (policy.mediatesMetadata === true && !writableByPolicy(policy, pinned)) {
      return answer.errno('EACCES');
    }
    return onPinnedObject(ctx, session, pinned, kind === 'symlink', change);
  }
  if (policy.mediatesMetadata === true || session.workdir.chroot !== null) {
    return answer.continue();
  }
  const walked = ctx.walk(target.path, {
    dirfd: target.dirfd,
    followLast: target.follow,
    asCaller: (walk) => {
      const done = callAsCaller(0n, walk);
      if (done !== null) return done.value;
      const refused = new Walked();
      refused.errno = ERRNO.EPERM; // the caller's credentials could not be taken
      return refused;
    },
  });
  try {
    if (walked.errno !== 0) return answer.errno(walked.errno);
    return onPinnedObject(ctx, session, walked.fd, walked.kind === 'symlink', change);
  } finally {
    walked.close();
  }
}

/**
 * The pinned object lies in an fsWrite tree and in no fsDeny tree nor one
 * of their ancestors (fs-meta's writableByPolicy, @sandlock/fsmeta). An
 * unknown fsDeny, or an object with no path, is refused.
 */
function writableByPolicy(policy: Ctx['session']['policy'], fd: number): boolean {
  if (policy.fsDeny === undefined) return false;
  let path: string;
  try {
    path = readlinkSync(`/proc/thread-self/fd/${fd}`, 'latin1');
  } catch {
    return false;
  }
  if (!path.startsWith('/')) return false;
  const within = (inner: string, tree: string) => pathWithin(inner, bytePath(tree));
  if (policy.fsDeny.some((tree) => within(path, tree) || pathWithin(bytePath(tree), path))) {
    return false;
  }
  return policy.fsWrite.some((tree) => within(path, tree));
}

function onPinnedObject(
  ctx: Ctx,
  session: Session,
  fd: number,
  symlink: boolean,
  change: PathChange,
): Answer {
  if (symlink && change.onSymlink !== undefined) return answer.errno(change.onSymlink);
  const place = placeOfPinned(session, fd);
  if (place === 'workdir') return answer.errno('EACCES');
  if (place !== 'outside') return onLowerObject(ctx, session, place.rel, fd, change.inLayer);
  const done = callAsCaller(0n, () => change.onPinned(fd));
  return done === null ? answer.errno('EPERM') : answer.fromResult(done.value);
}
