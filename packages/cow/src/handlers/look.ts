// The calls that look at a path without changing anything: the stat family,
// access, readlink. Where the kernel's own lookup finds the object the
// merged view shows (a `pure` path), it answers; otherwise the object the
// merged walk pinned is looked at here and the answer written back.
import { readlinkSync } from 'node:fs';
import { type Answer, answer } from '@sandlock/dispatch/module';
import {
  AT_EACCESS,
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  close,
  hostArch,
  structStatSize,
  trySyscall,
} from '@sandlock/sys';
import { brokerOf, type Ctx, copyPath, int, resolve, sessionOf, uint, untouched } from '../call.js';
import type { Kind } from '../resolve.js';
import { kindOf, pinThroughLayer, throughLayer } from '../through-layer.js';
import { reaperCall } from '../upper.js';

const STAT_SIZE = structStatSize(hostArch());
const STATX_SIZE = 256;
/** AT_STATX_SYNC_TYPE (include/uapi/linux/fcntl.h): how statx syncs, kept. */
const AT_STATX_SYNC_TYPE = 0x6000;
const EMPTY = Buffer.from('\0');

/** The object looked at: its descriptor (O_PATH) and kind. */
interface Found {
  readonly fd: number;
  readonly kind: Kind;
}

interface LookCall {
  dirfd: number;
  path: Buffer;
  follow: boolean;
  flags: number;
}

/** Resolves, and answers for paths the kernel can take; else calls `inside` with the pinned object. */
function look(ctx: Ctx, call: LookCall, inside: (r: Found) => Answer): Answer {
  if (call.path.length === 0) return answer.continue(); // AT_EMPTY_PATH (the descriptor's own object), or ENOENT
  const session = sessionOf(ctx);
  if (untouched(ctx, session, call.path, call.dirfd, call.follow) !== null)
    return answer.continue();
  const resolved = resolve(ctx, session, call.path, call.dirfd, call.follow);
  if (resolved.where === 'outside') {
    try {
      if (!throughLayer(resolved)) return answer.continue();
      // The object the reaper finds (O_PATH: what Landlock does not mediate is not refused).
      const opened = pinThroughLayer(ctx, session, resolved, call.follow);
      if (opened < 0) return answer.errno(-opened);
      try {
        const kind = kindOf(opened);
        if (typeof kind === 'number') return answer.errno(-kind);
        return inside({ fd: opened, kind });
      } finally {
        close(opened);
      }
    } finally {
      resolved.walked.close();
    }
  }
  try {
    if (resolved.errno !== 0) return answer.errno(resolved.errno);
    if (resolved.pure) return answer.continue();
    return inside(resolved);
  } finally {
    resolved.close();
  }
}

/** The caller's own cwd and descriptors, as /proc/self and /proc/thread-self show them. */
const OWN_LINK = /^\/proc\/(?:self|thread-self)\/(cwd|fd\/\d+)$/;

/**
 * readlink of the caller's own cwd or descriptor when it is an object of
 * the upper (a chdir or open the layer served): the workdir's path of it,
 * as getcwd shows it, not the layer's. Null: left to the usual lookup.
 */
function ownLink(ctx: Ctx, path: Buffer): Buffer | null {
  const match = OWN_LINK.exec(path.toString('latin1'));
  if (match === null) return null;
  const { upperPath, lowerPath } = sessionOf(ctx).workdir;
  let target: string;
  try {
    // The thread's own entry: cwd and descriptors as that thread has them.
    target = readlinkSync(`/proc/${ctx.pid}/task/${ctx.pid}/${match[1]}`, 'latin1');
  } catch {
    return null;
  }
  if (!ctx.valid()) return null;
  if (target !== upperPath && !target.startsWith(`${upperPath}/`)) return null;
  return Buffer.from(lowerPath + target.slice(upperPath.length), 'latin1');
}

function written(ctx: Ctx, address: bigint, data: Buffer, result: number): Answer {
  ctx.write(address, data);
  return answer.value(result);
}

export function onStat(ctx: Ctx): Answer {
  const a = ctx.args;
  let call: LookCall;
  let buffer: bigint;
  switch (ctx.syscall) {
    case 'stat':
    case 'lstat':
      call = {
        dirfd: AT_FDCWD,
        path: copyPath(ctx, a[0]!),
        follow: ctx.syscall === 'stat',
        flags: 0,
      };
      buffer = a[1]!;
      break;
    case 'newfstatat': {
      const flags = uint(a[3]);
      call = {
        dirfd: int(a[0]),
        path: copyPath(ctx, a[1]!),
        follow: (flags & AT_SYMLINK_NOFOLLOW) === 0,
        flags,
      };
      buffer = a[2]!;
      break;
    }
    default:
      return answer.continue();
  }
  return look(ctx, call, (r) => {
    const out = Buffer.alloc(256);
    const result = trySyscall('newfstatat', r.fd, EMPTY, out, AT_EMPTY_PATH);
    if (result < 0) return answer.errno(-result);
    return written(ctx, buffer, out.subarray(0, STAT_SIZE), 0);
  });
}

export function onStatx(ctx: Ctx): Answer {
  const a = ctx.args;
  const flags = uint(a[2]);
  const mask = uint(a[3]);
  const buffer = a[4]!;
  if (a[1] === 0n) return answer.continue(); // statx(fd, NULL, AT_EMPTY_PATH): the descriptor's
  const call = {
    dirfd: int(a[0]),
    path: copyPath(ctx, a[1]!),
    follow: (flags & AT_SYMLINK_NOFOLLOW) === 0,
    flags,
  };
  return look(ctx, call, (r) => {
    const out = Buffer.alloc(STATX_SIZE);
    const result = trySyscall(
      'statx',
      r.fd,
      EMPTY,
      AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | (flags & AT_STATX_SYNC_TYPE),
      mask,
      out,
    );
    if (result < 0) return answer.errno(-result);
    return written(ctx, buffer, out, 0);
  });
}

export function onAccess(ctx: Ctx): Answer {
  const a = ctx.args;
  let call: LookCall;
  let mode: number;
  switch (ctx.syscall) {
    case 'access':
      call = { dirfd: AT_FDCWD, path: copyPath(ctx, a[0]!), follow: true, flags: 0 };
      mode = uint(a[1]);
      break;
    case 'faccessat':
      call = { dirfd: int(a[0]), path: copyPath(ctx, a[1]!), follow: true, flags: 0 };
      mode = uint(a[2]);
      break;
    default: {
      const flags = uint(a[3]);
      call = {
        dirfd: int(a[0]),
        path: copyPath(ctx, a[1]!),
        follow: (flags & AT_SYMLINK_NOFOLLOW) === 0,
        flags,
      };
      mode = uint(a[2]);
    }
  }
  if ((mode & ~7) !== 0) return answer.errno('EINVAL');
  return look(ctx, call, (r) => {
    // The reaper checks: the sandbox's credentials (real ids unless
    // AT_EACCESS), no capabilities.
    const result = reaperCall(
      brokerOf(ctx),
      'faccessat2',
      [{ fd: r.fd }, { data: 0 }, mode, AT_EMPTY_PATH | (call.flags & AT_EACCESS)],
      Buffer.from('\0'),
    );
    return answer.fromResult(result);
  });
}

export function onReadlink(ctx: Ctx): Answer {
  const a = ctx.args;
  const at = ctx.syscall === 'readlinkat';
  const call: LookCall = {
    dirfd: at ? int(a[0]) : AT_FDCWD,
    path: copyPath(ctx, at ? a[1]! : a[0]!),
    follow: false,
    flags: 0,
  };
  const buffer = at ? a[2]! : a[1]!;
  const size = int(at ? a[3] : a[2]);
  if (size <= 0) return answer.errno('EINVAL');
  const shownLink = ownLink(ctx, call.path);
  if (shownLink !== null) {
    const shown = Math.min(shownLink.length, size);
    return written(ctx, buffer, shownLink.subarray(0, shown), shown);
  }
  return look(ctx, call, (r) => {
    if (r.kind !== 'symlink') return answer.errno('EINVAL');
    const text = Buffer.alloc(4096);
    const length = trySyscall('readlinkat', r.fd, EMPTY, text, text.length);
    if (length < 0) return answer.errno(-length);
    const shown = Math.min(length, size);
    return written(ctx, buffer, text.subarray(0, shown), shown);
  });
}
