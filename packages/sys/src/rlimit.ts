import { RLIMIT, type RlimitResource } from './constants.js';
import { SysError } from './errors.js';
import { trySyscall } from './libc.js';

/** A resource limit of this process: `soft` is enforced, `hard` is how far `soft` may be raised. */
export interface Rlimit {
  soft: bigint;
  hard: bigint;
}

// struct rlimit64 { __u64 rlim_cur; __u64 rlim_max; } (include/uapi/linux/resource.h)
const RLIMIT64_SIZE = 16;

/** This process's limit on `resource` (prlimit64(0, …)). */
export function getRlimit(resource: RlimitResource): Rlimit {
  const old = Buffer.alloc(RLIMIT64_SIZE);
  const result = trySyscall('prlimit64', 0, RLIMIT[resource], null, old);
  if (result < 0) throw new SysError('prlimit64', -result, `RLIMIT_${resource}`);
  return { soft: old.readBigUInt64LE(0), hard: old.readBigUInt64LE(8) };
}

/** Sets this process's limit on `resource` (raising `hard` needs CAP_SYS_RESOURCE). */
export function setRlimit(resource: RlimitResource, limit: Rlimit): void {
  const value = Buffer.alloc(RLIMIT64_SIZE);
  value.writeBigUInt64LE(limit.soft, 0);
  value.writeBigUInt64LE(limit.hard, 8);
  const result = trySyscall('prlimit64', 0, RLIMIT[resource], value, null);
  if (result < 0) throw new SysError('prlimit64', -result, `RLIMIT_${resource}`);
}
