// Extended attributes by path inside the workdir: read from the object the
// merged view shows, changed on its copy in the upper (by the reaper, on a
// descriptor it opened there).
import { type Answer, answer, type OnBehalf } from '@sandlock/dispatch/module';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  close,
  hostArch,
  openFlags,
  readCStringBytes,
  trySyscall,
  XATTR_NAME_MAX,
  XATTR_SIZE_MAX,
} from '@sandlock/sys';
import {
  brokerOf,
  type Ctx,
  copyPath,
  int,
  resolve,
  type Session,
  sessionOf,
  uint,
} from '../call.js';
import type { Inside, Kind } from '../resolve.js';
import { answerOutside, kindOf } from '../through-layer.js';
import { openIn, reaperCall, upperHolderOf } from '../upper.js';
import { onDescriptorMetadata } from './fd-meta.js';
import { onOutsidePath, onPinned } from './outside-meta.js';
import { emptyPath, xattrArgsOf, xattrChangeOf } from './xattr-args.js';

const O = openFlags(hostArch());

function xattrName(ctx: Ctx, address: bigint): Buffer | null {
  try {
    const name = readCStringBytes(ctx.pid, address, XATTR_NAME_MAX);
    return name.length === 0 ? null : Buffer.concat([name, Buffer.from([0])]);
  } catch {
    return null;
  }
}

function inside(
  ctx: Ctx,
  target: { readonly dirfd: number; readonly address: bigint; readonly follow: boolean },
  serve: (r: Inside, session: Session) => Answer,
  outside: (
    errno: number,
    path: Buffer,
    session: Session,
    pinned?: number,
  ) => Answer = answer.continue,
): Answer {
  const path = copyPath(ctx, target.address);
  // The kernel's answer; let through, it would read the string again.
  if (path.length === 0) return answer.errno('ENOENT');
  const session = sessionOf(ctx);
  const resolved = resolve(ctx, session, path, target.dirfd, target.follow);
  if (resolved.where === 'outside') {
    return answerOutside(ctx, session, resolved, target.follow, (errno, pinned) =>
      outside(errno, path, session, pinned),
    );
  }
  try {
    if (resolved.errno !== 0) return answer.errno(resolved.errno);
    return serve(resolved, session);
  } finally {
    resolved.close();
  }
}

/** The object reopened through its O_PATH descriptor, for reading its attributes; -errno. */
function selfPath(fd: number): Buffer {
  return Buffer.from(`/proc/thread-self/fd/${fd}\0`);
}

/** What a read of attributes asks: the list, or one name's value, into the caller's `out` of `size` bytes. */
interface XattrRead {
  readonly list: boolean;
  /** The attribute's name (not for a list). */
  readonly name: Buffer | null;
  readonly out: bigint;
  readonly size: number;
}

/** Reads the attributes `ask` names of the object `r` shows, into the caller. */
function readXattr(
  ctx: Ctx,
  ask: XattrRead,
  r: { readonly fd: number; readonly kind: Kind },
): Answer {
  // A symlink's own attributes: through the magic link the kernel would
  // follow it; a symlink has none a sandbox can set (user.* is refused on
  // symlinks, xattr(7)).
  if (r.kind === 'symlink') return ask.list ? answer.value(0) : answer.errno('ENODATA');
  const { size } = ask;
  const buffer = Buffer.alloc(Math.min(Math.max(size, 1), XATTR_SIZE_MAX));
  const into = size === 0 ? null : buffer;
  const length = size === 0 ? 0 : buffer.length;
  const result = ask.list
    ? trySyscall('listxattr', selfPath(r.fd), into, length)
    : trySyscall('getxattr', selfPath(r.fd), ask.name!, into, length);
  if (result < 0) return answer.errno(-result);
  if (size > 0) ctx.write(ask.out, buffer.subarray(0, result));
  return answer.value(result);
}

/** Serves `ask` for the path at `address` (from `dirfd`) in the merged view. */
function readAt(ctx: Ctx, dirfd: number, address: bigint, follow: boolean, ask: XattrRead): Answer {
  return inside(
    ctx,
    { dirfd, address, follow },
    (r) => (r.pure ? answer.continue() : readXattr(ctx, ask, r)),
    (_errno, _path, _session, found) => {
      if (found === undefined) return answer.continue();
      const kind = kindOf(found);
      return typeof kind === 'number'
        ? answer.errno(-kind)
        : readXattr(ctx, ask, { fd: found, kind });
    },
  );
}

/** getxattr, lgetxattr, listxattr, llistxattr. */
export function onGetXattr(ctx: Ctx): Answer {
  const list = ctx.syscall.endsWith('listxattr');
  const follow = !ctx.syscall.startsWith('l');
  const a = ctx.args;
  let name: Buffer | null = null;
  if (!list) {
    name = xattrName(ctx, a[1]!);
    if (name === null) return answer.errno('ERANGE');
  }
  const ask = list
    ? { list, name, out: a[1]!, size: Number(a[2] ?? 0n) }
    : { list, name, out: a[2]!, size: Number(a[3] ?? 0n) };
  return readAt(ctx, AT_FDCWD, a[0]!, follow, ask);
}

/**
 * getxattrat and listxattrat (Linux 6.13): the same reads from a directory
 * descriptor, with at-flags; getxattrat's value buffer in a struct
 * xattr_args (fs/xattr.c). With AT_EMPTY_PATH and an empty path they read
 * the descriptor's own object, which the kernel reads as it is.
 */
export function onGetXattrAt(ctx: Ctx): Answer {
  const list = ctx.syscall === 'listxattrat';
  const a = ctx.args;
  const atFlags = uint(a[2]);
  if ((atFlags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) !== 0) return answer.errno('EINVAL');
  let ask: XattrRead;
  if (list) {
    ask = { list, name: null, out: a[3]!, size: Number(a[4] ?? 0n) };
  } else {
    const args = xattrArgsOf(ctx, a[4]!, Number(a[5] ?? 0n));
    if (typeof args === 'number') return answer.errno(-args);
    // getxattrat() takes no flags in xattr_args (fs/xattr.c).
    if (args.flags !== 0) return answer.errno('EINVAL');
    const name = xattrName(ctx, a[3]!);
    if (name === null) return answer.errno('ERANGE');
    ask = { list, name, out: args.address, size: args.size };
  }
  if ((atFlags & AT_EMPTY_PATH) !== 0 && (a[1] === 0n || emptyPath(ctx, a[1]!))) {
    return answer.continue();
  }
  return readAt(ctx, int(a[0]), a[1]!, (atFlags & AT_SYMLINK_NOFOLLOW) === 0, ask);
}

/** setxattr, lsetxattr, removexattr, lremovexattr; setxattrat and removexattrat (Linux 6.13). */
export function onSetXattr(ctx: Ctx): Answer {
  const byDescriptor = onDescriptorMetadata(ctx); // the *at calls with AT_EMPTY_PATH
  if (byDescriptor !== null) return byDescriptor;
  const call = xattrChangeOf(ctx);
  if (typeof call === 'number') return answer.errno(-call);
  const { target, name, value, size, flags, remove } = call;
  if ('fd' in target) return answer.errno('EBADF'); // onDescriptorMetadata's
  /** The change on `entry` of the upper directory `dir`, by the reaper on a descriptor it opens there. */
  const inLayer = (broker: OnBehalf, dir: number, entry: string, isDirectory: boolean): number => {
    const fd = openIn(broker, dir, entry, isDirectory ? O.O_RDONLY | O.O_DIRECTORY : O.O_RDONLY);
    if (fd < 0) return fd;
    try {
      return remove
        ? reaperCall(broker, 'fremovexattr', [{ fd }, { data: 0 }], name)
        : reaperCall(
            broker,
            'fsetxattr',
            [{ fd }, { data: 0 }, { data: name.length }, size, flags],
            Buffer.concat([name, value]),
          );
    } finally {
      close(fd);
    }
  };
  return inside(
    ctx,
    target,
    (r, session) => {
      if (r.rel.length === 0) return answer.errno('EPERM');
      if (r.kind === 'symlink') return answer.errno('EPERM');
      const broker = brokerOf(ctx);
      const dir = upperHolderOf(session.workdir, broker, r);
      if (dir < 0) return answer.errno(-dir);
      try {
        session.changed = true;
        return answer.fromResult(inLayer(broker, dir, r.name, r.kind === 'directory'));
      } finally {
        close(dir);
      }
    },
    // user.* of a symlink is EPERM to its owner (xattr_permission(), fs/xattr.c),
    // and the sandbox holds no capability for the other namespaces.
    (errno, path, session, found) =>
      onOutsidePath(
        ctx,
        session,
        { path, dirfd: target.dirfd, follow: target.follow },
        errno,
        {
          inLayer,
          onPinned: remove
            ? onPinned.removexattr(name)
            : onPinned.setxattr(name, value, size, flags),
          onSymlink: 'EPERM',
        },
        found,
      ),
  );
}
