// Extended attributes by path inside the workdir: read from the object the
// merged view shows, changed on its copy in the upper (by the reaper, on a
// descriptor it opened there).
import { type Answer, answer, type OnBehalf } from '@sandlock/dispatch/module';
import {
  AT_FDCWD,
  close,
  hostArch,
  openFlags,
  readCStringBytes,
  trySyscall,
  XATTR_NAME_MAX,
  XATTR_SIZE_MAX,
} from '@sandlock/sys';
import { brokerOf, type Ctx, copyPath, resolve, type Session, sessionOf } from '../call.js';
import type { Inside, Kind } from '../resolve.js';
import { answerOutside, kindOf } from '../through-layer.js';
import { openIn, reaperCall, upperHolderOf } from '../upper.js';
import { onDescriptorMetadata } from './fd-meta.js';
import { onOutsidePath, onPinned } from './outside-meta.js';
import { xattrChangeOf } from './xattr-args.js';

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

/** getxattr, lgetxattr, listxattr, llistxattr. */
export function onGetXattr(ctx: Ctx): Answer {
  const list = ctx.syscall.endsWith('listxattr');
  const follow = !ctx.syscall.startsWith('l');
  const a = ctx.args;
  const read = (r: { readonly fd: number; readonly kind: Kind }): Answer => {
    // A symlink's own attributes: through the magic link the kernel would
    // follow it; a symlink has none a sandbox can set (user.* is refused on
    // symlinks, xattr(7)).
    if (r.kind === 'symlink') return list ? answer.value(0) : answer.errno('ENODATA');
    const size = Number(list ? (a[2] ?? 0n) : (a[3] ?? 0n));
    const buffer = Buffer.alloc(Math.min(Math.max(size, 1), XATTR_SIZE_MAX));
    let result: number;
    if (list) {
      result = trySyscall(
        'listxattr',
        selfPath(r.fd),
        size === 0 ? null : buffer,
        size === 0 ? 0 : buffer.length,
      );
    } else {
      const name = xattrName(ctx, a[1]!);
      if (name === null) return answer.errno('ERANGE');
      result = trySyscall(
        'getxattr',
        selfPath(r.fd),
        name,
        size === 0 ? null : buffer,
        size === 0 ? 0 : buffer.length,
      );
    }
    if (result < 0) return answer.errno(-result);
    if (size > 0) ctx.write(list ? a[1]! : a[2]!, buffer.subarray(0, result));
    return answer.value(result);
  };
  return inside(
    ctx,
    { dirfd: AT_FDCWD, address: a[0]!, follow },
    (r) => (r.pure ? answer.continue() : read(r)),
    (_errno, _path, _session, found) => {
      if (found === undefined) return answer.continue();
      const kind = kindOf(found);
      return typeof kind === 'number' ? answer.errno(-kind) : read({ fd: found, kind });
    },
  );
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
