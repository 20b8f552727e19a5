// @sandlock/dispatch/path-arg: a path argument copied out of the caller,
// for the modules that walk paths themselves. Apart from the handler API
// (@sandlock/dispatch/module), which loads no koffi: this reads the
// caller's memory (process_vm_readv).
import { ERRNO, PATH_MAX, readCStringBytes, SysError } from '@sandlock/sys';
import { CallError } from './call-error.js';
import type { CallContext } from './context.js';

/**
 * A path argument, copied: its bytes without the NUL. A CallError with the
 * kernel's errno otherwise: EFAULT (NULL, a bad address), ENAMETOOLONG (no
 * NUL within PATH_MAX bytes, as getname() says).
 */
export function copyPath(ctx: Pick<CallContext, 'pid' | 'valid'>, address: bigint): Buffer {
  if (address === 0n) throw new CallError(ERRNO.EFAULT, 'NULL path');
  try {
    return readCStringBytes(ctx.pid, address, PATH_MAX - 1);
  } catch (error) {
    if (!ctx.valid()) throw error;
    if (error instanceof SysError && error.errno === ERRNO.ENAMETOOLONG) {
      throw new CallError(ERRNO.ENAMETOOLONG, 'path too long');
    }
    throw new CallError(ERRNO.EFAULT, 'bad path address');
  }
}
