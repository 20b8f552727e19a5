// The extended attribute calls inside the root, on the object the walk
// pinned: the sandbox's reaper (its credentials, no capability) makes the
// call on /proc/self/fd/N of its copy of the O_PATH descriptor, which names
// that object whatever happens to the path meanwhile (a magic link is not
// followed further: an lgetxattr of a symlink stays on the symlink).
// Landlock has no right for extended attributes, so a change is checked
// here against the policy: the object must lie beneath an fsWrite path and
// beneath no fsDeny path, and not in a read-only mount.
import { type Answer, answer, CallError } from '@sandlock/dispatch/module';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  ERRNO,
  F_DUPFD_CLOEXEC,
  pageSize,
  readCStringBytes,
  SysError,
  XATTR_ARGS_SIZE_VER0,
  XATTR_NAME_MAX,
  XATTR_SIZE_MAX,
} from '@sandlock/sys';
import { brokerOf, type Ctx, int, uint, writable } from './call.js';
import { at, emptyPath } from './handlers.js';
import type { Found } from './root.js';

const { E2BIG, EACCES, EINVAL, ERANGE, EROFS } = ERRNO;

/** One call, decoded: what it does, on which path, with what. */
interface XattrCall {
  readonly op: 'get' | 'list' | 'set' | 'remove';
  readonly dirfd: number;
  readonly path: bigint;
  readonly follow: boolean;
  /** The name's address (get, set, remove). */
  readonly name: bigint;
  /** The caller's buffer (get, list) or value (set), and its size. */
  readonly value: bigint;
  readonly size: number;
  /** setxattr's XATTR_CREATE / XATTR_REPLACE. */
  readonly flags: number;
}

/** struct xattr_args of the *xattrat calls (Linux 6.13, fs/xattr.c): the value, its size, the flags. */
function xattrArgs(
  ctx: Ctx,
  address: bigint,
  size: number,
): { value: bigint; size: number; flags: number } {
  if (size < XATTR_ARGS_SIZE_VER0) throw new CallError(EINVAL, 'struct xattr_args too small');
  if (size > pageSize()) throw new CallError(E2BIG, 'struct xattr_args too large');
  const args = ctx.read(address, XATTR_ARGS_SIZE_VER0);
  return {
    value: args.readBigUInt64LE(0),
    size: args.readUInt32LE(8),
    flags: args.readUInt32LE(12),
  };
}

function decode(ctx: Ctx): XattrCall | Answer {
  const a = ctx.args;
  const name = ctx.syscall;
  if (name.endsWith('xattrat')) {
    // getxattrat(dfd, path, at_flags, name, args, size), listxattrat(dfd, path, at_flags, list, size)…
    const atFlags = uint(a[2]);
    if ((atFlags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) !== 0) return answer.errno(EINVAL);
    if ((atFlags & AT_EMPTY_PATH) !== 0 && emptyPath(ctx, a[1]!)) return answer.continue();
    const base = { dirfd: int(a[0]), path: a[1]!, follow: (atFlags & AT_SYMLINK_NOFOLLOW) === 0 };
    switch (name) {
      case 'getxattrat':
      case 'setxattrat': {
        const args = xattrArgs(ctx, a[4]!, uint(a[5]));
        if (name === 'getxattrat' && args.flags !== 0) return answer.errno(EINVAL);
        const op = name === 'getxattrat' ? 'get' : 'set';
        return { ...base, op, name: a[3]!, value: args.value, size: args.size, flags: args.flags };
      }
      case 'listxattrat':
        return { ...base, op: 'list', name: 0n, value: a[3]!, size: uint(a[4]), flags: 0 };
      default:
        return { ...base, op: 'remove', name: a[3]!, value: 0n, size: 0, flags: 0 };
    }
  }
  const base = { dirfd: AT_FDCWD, path: a[0]!, follow: !name.startsWith('l') };
  if (name.endsWith('getxattr')) {
    return { ...base, op: 'get', name: a[1]!, value: a[2]!, size: uint(a[3]), flags: 0 };
  }
  if (name.endsWith('setxattr')) {
    return { ...base, op: 'set', name: a[1]!, value: a[2]!, size: uint(a[3]), flags: int(a[4]) };
  }
  if (name.endsWith('listxattr')) {
    return { ...base, op: 'list', name: 0n, value: a[1]!, size: uint(a[2]), flags: 0 };
  }
  return { ...base, op: 'remove', name: a[1]!, value: 0n, size: 0, flags: 0 };
}

/** An attribute's name, copied: ERANGE for an empty one or one past XATTR_NAME_MAX (import_xattr_name()). */
function copyName(ctx: Ctx, address: bigint): Buffer {
  let name: Buffer;
  try {
    name = readCStringBytes(ctx.pid, address, XATTR_NAME_MAX);
  } catch (error) {
    if (!ctx.valid()) throw error;
    if (error instanceof SysError && error.errno === ERRNO.ENAMETOOLONG) {
      throw new CallError(ERANGE, 'attribute name too long');
    }
    throw new CallError(ERRNO.EFAULT, 'bad attribute name address');
  }
  if (name.length === 0) throw new CallError(ERANGE, 'empty attribute name');
  return name;
}

/** The call, made by the reaper on its copy of `r.fd`: -errno, or its result and the bytes it wrote. */
function onObject(ctx: Ctx, r: Found, call: XattrCall, name: Buffer | null, value: Buffer | null) {
  const broker = brokerOf(ctx);
  const copy = broker.call({ syscall: 'fcntl', args: [{ fd: r.fd }, F_DUPFD_CLOEXEC, 0] }).result;
  if (copy < 0) return { result: copy, out: Buffer.alloc(0) };
  try {
    const path = Buffer.from(`/proc/self/fd/${copy}\0`);
    const nameAt = path.length;
    const named = name === null ? path : Buffer.concat([path, name, Buffer.from([0])]);
    const valueAt = named.length;
    const size = Math.min(call.size, XATTR_SIZE_MAX);
    const buffer = size === 0 ? 0 : { data: valueAt };
    const syscall = `${call.op}xattr`;
    const args = {
      get: [{ data: 0 }, { data: nameAt }, buffer, size],
      list: [{ data: 0 }, buffer, size],
      set: [
        { data: 0 },
        { data: nameAt },
        value === null ? 0 : { data: valueAt },
        call.size,
        call.flags,
      ],
      remove: [{ data: 0 }, { data: nameAt }],
    }[call.op];
    const tail =
      call.op === 'set'
        ? (value ?? Buffer.alloc(0))
        : Buffer.alloc(call.op === 'remove' ? 0 : size);
    const reply = broker.call({ syscall, args, data: Buffer.concat([named, tail]) });
    const written =
      reply.result > 0 && size > 0
        ? reply.data.subarray(valueAt, valueAt + reply.result)
        : Buffer.alloc(0);
    return { result: reply.result, out: written };
  } finally {
    broker.call({ syscall: 'close', args: [copy] });
  }
}

/**
 * getxattr, setxattr, listxattr, removexattr, their l- forms (the last
 * symlink not followed) and their *xattrat forms (a dirfd, AT_ flags,
 * struct xattr_args): on the object the path names inside the root.
 */
export function onXattr(ctx: Ctx): Answer {
  const call = decode(ctx);
  if (!('op' in call)) return call;
  const name = call.op === 'list' ? null : copyName(ctx, call.name);
  let value: Buffer | null = null;
  if (call.op === 'set') {
    if (call.size > XATTR_SIZE_MAX) return answer.errno(E2BIG);
    if (call.size > 0) value = ctx.read(call.value, call.size);
  }
  return at(ctx, call.path, call.dirfd, call.follow, (r) => {
    if (r.errno !== 0) return answer.errno(r.errno);
    if (call.op === 'set' || call.op === 'remove') {
      if (r.mount?.readOnly) return answer.errno(EROFS);
      if (!writable(ctx, r)) {
        ctx.refused({ what: () => `change an extended attribute of ${r.path}`, rule: 'fsWrite' });
        return answer.errno(EACCES);
      }
    }
    const { result, out } = onObject(ctx, r, call, name, value);
    if (result < 0) return answer.errno(-result);
    if (out.length > 0) ctx.write(call.value, out);
    return answer.value(result);
  });
}
