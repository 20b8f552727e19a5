// The arguments of the calls that set or remove an extended attribute,
// copied once: setxattr, lsetxattr, fsetxattr, setxattrat (Linux 6.13,
// struct xattr_args), and their remove forms. Checked as fs/xattr.c checks
// them, in its order.

import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  ERRNO,
  readCStringBytes,
  XATTR_ARGS_SIZE_VER0,
  XATTR_NAME_MAX,
  XATTR_SIZE_MAX,
} from '@sandlock/sys';
import type { Ctx } from '../call.js';
import { int, uint } from '../call.js';

const PAGE_SIZE = 4096;

/** What the call changes on: a descriptor, or a path (its address in the caller). */
export type XattrTarget =
  | { readonly fd: number }
  | { readonly dirfd: number; readonly address: bigint; readonly follow: boolean };

export interface XattrChange {
  readonly target: XattrTarget;
  readonly remove: boolean;
  /** NUL-terminated. */
  readonly name: Buffer;
  /** The value's bytes; one byte when empty (a raw call is given an address). */
  readonly value: Buffer;
  readonly size: number;
  readonly flags: number;
}

/** The change, or the errno the kernel answers the arguments with. */
export function xattrChangeOf(ctx: Ctx): XattrChange | number {
  const a = ctx.args;
  const call = ctx.syscall;
  const remove = call.endsWith('removexattr') || call === 'removexattrat';
  let target: XattrTarget;
  let nameAt: bigint;
  let value = { address: 0n, size: 0, flags: 0 };
  if (call === 'setxattrat' || call === 'removexattrat') {
    const atFlags = uint(a[2]);
    if ((atFlags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) !== 0) return -ERRNO.EINVAL;
    nameAt = a[3]!;
    if (!remove) {
      const args = xattrArgsOf(ctx, a[4]!, Number(a[5] ?? 0n));
      if (typeof args === 'number') return args;
      value = args;
    }
    // A NULL or empty path with AT_EMPTY_PATH: the dirfd's own object.
    const empty = (atFlags & AT_EMPTY_PATH) !== 0 && (a[1] === 0n || emptyPath(ctx, a[1]!));
    target = empty
      ? { fd: int(a[0]) }
      : { dirfd: int(a[0]), address: a[1]!, follow: (atFlags & AT_SYMLINK_NOFOLLOW) === 0 };
  } else {
    nameAt = a[1]!;
    if (!remove) value = { address: a[2]!, size: Number(a[3] ?? 0n), flags: uint(a[4]) };
    target = call.startsWith('f')
      ? { fd: int(a[0]) }
      : { dirfd: AT_FDCWD, address: a[0]!, follow: !call.startsWith('l') };
  }
  let name: Buffer;
  try {
    name = readCStringBytes(ctx.pid, nameAt, XATTR_NAME_MAX);
  } catch {
    return -ERRNO.ERANGE;
  }
  if (name.length === 0) return -ERRNO.ERANGE;
  if (value.size > XATTR_SIZE_MAX) return -ERRNO.E2BIG;
  return {
    target,
    remove,
    name: Buffer.concat([name, Buffer.from([0])]),
    value: value.size > 0 ? Buffer.from(ctx.read(value.address, value.size)) : Buffer.alloc(1),
    size: value.size,
    flags: value.flags,
  };
}

/** A struct xattr_args of `usize` bytes at `address` (setxattrat, getxattrat), or -errno. */
export function xattrArgsOf(
  ctx: Ctx,
  address: bigint,
  usize: number,
): { address: bigint; size: number; flags: number } | number {
  if (usize < XATTR_ARGS_SIZE_VER0) return -ERRNO.EINVAL;
  if (usize > PAGE_SIZE) return -ERRNO.E2BIG;
  // copy_struct_from_user(): a larger struct's extra bytes must be zero.
  const args = Buffer.from(ctx.read(address, usize));
  if (args.subarray(XATTR_ARGS_SIZE_VER0).some((byte) => byte !== 0)) return -ERRNO.E2BIG;
  return {
    address: args.readBigUInt64LE(0),
    size: args.readUInt32LE(8),
    flags: args.readUInt32LE(12),
  };
}

/** Whether the string at `address` is empty (an unreadable one is not). */
export function emptyPath(ctx: Ctx, address: bigint): boolean {
  try {
    return readCStringBytes(ctx.pid, address, 1).length === 0;
  } catch {
    return false;
  }
}
