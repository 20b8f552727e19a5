// What every handler of the copy-on-write module shares: the session's
// workdir, the caller's arguments copied once, and the path resolved in the
// caller's view with the caller's capabilities (none).

import type { Answer, HandlerContext, OnBehalf } from '@sandlock/dispatch/module';
import {
  answer,
  brokerOf as brokerIn,
  CallError,
  gatedBroker,
  narrowedCallerErrno,
  PATH_VIEW,
  readStatus,
  sessionOf as sessionIn,
  threadGroupOf,
} from '@sandlock/dispatch/module';
import { type Credentials, callAsCaller, credentialsOf, ERRNO, sameIds } from '@sandlock/sys';
import {
  type Caller,
  type Resolved,
  type Restrict,
  resolvePath,
  untouchedPath,
  type Workdir,
} from './resolve.js';

/** The policy fields the module reads (the session policy sandlock gives it). */
export interface CowPolicy {
  /** The workdir (canonical), or null: the module is off. */
  readonly workdir: string | null;
  /** The sandbox's layer, made at start: its directory and its shared disk count. */
  readonly cowLayer?: {
    readonly dir: string;
    readonly usage: SharedArrayBuffer;
    /** How the supervisor reaches the upper (a tmpfs in a user namespace: its descriptor). */
    readonly upper?: string;
  } | null;
  readonly deterministicDirs?: boolean;
  /** The emulated chroot's root (the chroot module's), or null. */
  readonly chroot?: string | null;
  /** What the sandbox may write outside the workdir (canonical). */
  readonly fsWrite: readonly string[];
  /** What it may not, within those (canonical). */
  readonly fsDeny?: readonly string[];
  /** Whether fs-meta takes the metadata calls cow lets through (a root supervisor with fsWrite). */
  readonly mediatesMetadata?: boolean;
  /** The sandbox's ids where they are not the supervisor's (sandlock's SpawnOptions.user). */
  readonly callerIds?: { readonly fsuid: number; readonly fsgid: number };
}

export type Ctx = HandlerContext<CowPolicy>;

/** A workdir, and whether the layer changed anything yet in this session. */
export interface Session {
  readonly workdir: Workdir;
  /** Some change was made: the workdir's own listing is the merged one. */
  changed: boolean;
  /** Listings sorted by name (the policy's deterministicDirs). */
  readonly deterministic: boolean;
}

export const sessions = new Map<number, Session | Error>();

/** The session of this call; throws (the call fails closed) when its layer could not be opened. */
export function sessionOf(ctx: Ctx): Session {
  return sessionIn(sessions, ctx, 'the copy-on-write layer');
}

/** The reaper's calls that change nothing and that Landlock does not mediate (access(2)). */
const UNMEDIATED = new Set(['faccessat2']);

/**
 * A caller with a Landlock domain of its own: refused, fail closed
 * (narrowedCallerErrno of @sandlock/dispatch), 0 for any other caller. What
 * is left to the kernel (a path outside the workdir, an untouched file) is
 * the caller's own call, checked by its own domain.
 */
export function narrowedErrno(ctx: Ctx): number {
  return narrowedCallerErrno(ctx, 'inside the workdir');
}

/** {@link narrowedErrno} as the call's answer, or null. */
export function narrowedRefusal(ctx: Ctx): Answer | null {
  const errno = narrowedErrno(ctx);
  return errno === 0 ? null : answer.errno(errno);
}

/** The reaper, for this call: -errno to a narrowed caller (narrowedErrno) but for checks. */
export function brokerOf(ctx: Ctx): OnBehalf {
  return gatedBroker(brokerIn(ctx, 'copy-on-write'), UNMEDIATED, () => narrowedErrno(ctx));
}

/**
 * Resolves a copied path for the caller; the result is the handler's to
 * close. The lookups run with the caller's capabilities (a sandbox has none).
 */
export function resolve(
  ctx: Ctx,
  session: Session,
  path: Buffer,
  dirfd: number,
  followLast: boolean,
  create = false,
  restrict?: Restrict,
): Resolved {
  let tgid: number | null = null;
  const view = ctx.session.provided(PATH_VIEW);
  const caller: Caller = {
    pid: ctx.pid,
    reaperPid: ctx.session.reaperPid,
    valid: () => ctx.valid(),
    openStart: (fd) => ctx.openStart(fd),
    tgid: () => {
      tgid ??= threadGroupOf(ctx.pid);
      return tgid;
    },
    mountAt: view === undefined ? null : (virt) => view.mountAt(virt),
  };
  const resolved = callAsCaller(0n, () =>
    resolvePath(session.workdir, caller, path, {
      dirfd,
      followLast,
      create,
      ...(restrict !== undefined ? { restrict } : {}),
    }),
  );
  if (resolved === null) throw new CallError(ERRNO.EPERM, 'capabilities');
  if (resolved.value.where === 'outside' && resolved.value.mounted && view !== undefined) {
    // In a mount: the chroot's walk (which then answers the call) says what is there.
    resolved.value.walked.close();
    return { where: 'outside', walked: view.walk(ctx, path, { dirfd, followLast }) };
  }
  return resolved.value;
}

/**
 * The path's components beneath the workdir when the kernel's own lookup of
 * it for the caller finds what the merged view shows and the layer holds
 * nothing on the way (untouchedPath): a read of it may be left to the
 * kernel without a walk. Null: resolve it.
 */
export function untouched(
  ctx: Ctx,
  session: Session,
  path: Buffer,
  dirfd: number,
  followLast: boolean,
): string[] | null {
  return untouchedPath(session.workdir, (fd) => ctx.openStart(fd), path, { dirfd, followLast });
}

/** Whether a path's last component is `.` or `..` (trailing slashes aside), as the kernel's LAST_DOT / LAST_DOTDOT. */
export function lastDot(path: Buffer): '.' | '..' | null {
  const text = path.toString('latin1').replace(/\/+$/, '');
  const last = text.slice(text.lastIndexOf('/') + 1);
  if (text === '' && path.length > 0) return null; // "/": the root
  return last === '.' || last === '..' ? last : null;
}

/** What a call that makes an object needs of its caller (one read of /proc/<tid>/status). */
export interface Maker {
  /** The caller's umask (0o022 where the kernel does not say). */
  readonly umask: number;
  /**
   * The caller has this worker thread's file-system ids and groups and no
   * effective capability: a new name made by this thread with its
   * capabilities cut to none (callAsCaller) is made as the caller's reaper
   * would make it.
   */
  readonly asWorker: boolean;
  /** The caller's effective capabilities, 0 where its status could not be read. */
  readonly capEff: bigint;
  /** The caller's file-system user id, null where its status could not be read. */
  readonly fsuid: number | null;
}

/** This worker thread's credentials, read once (null: unreadable, never the same as a caller's). */
let workerCredentials: Credentials | null | undefined;

export function makerOf(ctx: Ctx): Maker {
  let status = '';
  try {
    status = readStatus(ctx.pid);
  } catch {
    // Gone, or unreadable: the umask's default, and the reaper makes the object.
  }
  const umask = /^Umask:\s+([0-7]+)$/m.exec(status);
  if (workerCredentials === undefined) {
    try {
      workerCredentials = credentialsOf(readStatus('thread-self'));
    } catch {
      workerCredentials = null;
    }
  }
  const caller = credentialsOf(status);
  return {
    umask: umask ? Number.parseInt(umask[1]!, 8) : 0o022,
    capEff: caller?.capEff ?? 0n,
    fsuid: caller === null ? null : Number(caller.fsuid),
    asWorker:
      caller !== null &&
      workerCredentials !== null &&
      caller.capEff === 0n &&
      sameIds(caller, workerCredentials) &&
      // The status read was the caller's, not a process that got its tid since.
      ctx.valid(),
  };
}

export { int, uint, umaskOf } from '@sandlock/dispatch/module';
export { copyPath } from '@sandlock/dispatch/path-arg';
