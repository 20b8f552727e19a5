// Extended attributes by path inside the workdir: read from the object the
// merged view shows, changed on its copy in the upper (by the reaper, on a
// descriptor it opened there).
import { type Answer, answer } from '@sandlock/dispatch/module';
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
import { brokerOf, type Ctx, copyPath, resolve, type Session, sessionOf, uint } from '../call.js';
import type { Inside } from '../resolve.js';
import { openIn, reaperCall, upperHolderOf } from '../upper.js';

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
  follow: boolean,
  serve: (r: Inside, session: Session) => Answer,
  outside: (errno: number) => Answer = answer.continue,
): Answer {
  const path = copyPath(ctx, ctx.args[0]!);
  if (path.length === 0) return answer.continue();
  const session = sessionOf(ctx);
  const resolved = resolve(ctx, session, path, AT_FDCWD, follow);
  if (resolved.where === 'outside') {
    const errno = resolved.walked.errno;
    resolved.walked.close();
    return outside(errno);
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
  return inside(ctx, follow, (r) => {
    if (r.pure) return answer.continue();
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
  });
}

/** setxattr, lsetxattr, removexattr, lremovexattr. */
export function onSetXattr(ctx: Ctx): Answer {
  const remove = ctx.syscall.endsWith('removexattr');
  const follow = !ctx.syscall.startsWith('l');
  const a = ctx.args;
  const name = xattrName(ctx, a[1]!);
  if (name === null) return answer.errno('ERANGE');
  const size = remove ? 0 : Number(a[3] ?? 0n);
  if (size > XATTR_SIZE_MAX) return answer.errno('E2BIG');
  const value = size > 0 ? Buffer.from(ctx.read(a[2]!, size)) : Buffer.alloc(1);
  const flags = remove ? 0 : uint(a[4]);
  return inside(
    ctx,
    follow,
    (r, session) => {
      if (r.rel.length === 0) return answer.errno('EPERM');
      if (r.kind === 'symlink') return answer.errno('EPERM');
      const broker = brokerOf(ctx);
      const dir = upperHolderOf(session.workdir, broker, r);
      if (dir < 0) return answer.errno(-dir);
      try {
        const fd = openIn(
          broker,
          dir,
          r.name,
          r.kind === 'directory' ? O.O_RDONLY | O.O_DIRECTORY : O.O_RDONLY,
        );
        if (fd < 0) return answer.errno(-fd);
        try {
          session.changed = true;
          return answer.fromResult(
            remove
              ? reaperCall(broker, 'fremovexattr', [{ fd }, { data: 0 }], name)
              : reaperCall(
                  broker,
                  'fsetxattr',
                  [{ fd }, { data: 0 }, { data: name.length }, size, flags],
                  Buffer.concat([name, value]),
                ),
          );
        } finally {
          close(fd);
        }
      } finally {
        close(dir);
      }
    },
    // Outside the workdir: refused where the policy lets it write nothing.
    (errno) =>
      errno === 0 && ctx.session.policy.fsWrite.length === 0
        ? answer.errno('EACCES')
        : answer.continue(),
  );
}
