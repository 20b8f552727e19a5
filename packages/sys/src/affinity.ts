import { cpuMask } from './cpu-mask.js';
import { ERRNO } from './errno.js';
import { SysError } from './errors.js';
import { trySyscall } from './libc.js';

// A cpu_set_t of 1024 CPUs (glibc's CPU_SETSIZE): sched_getaffinity(2) fails
// with EINVAL when the buffer is smaller than the kernel's cpumask
// (nr_cpu_ids bits, rounded up to a long).
const MASK_BYTES = 128;

/**
 * The CPUs thread `tid` may run on (0: this thread), or null when it is gone.
 *
 * @throws SysError when the kernel refuses to tell.
 */
export function cpuAffinityOf(tid: number): number[] | null {
  const mask = Buffer.alloc(MASK_BYTES);
  // The raw call returns the bytes of the mask the kernel filled in.
  const result = trySyscall('sched_getaffinity', tid, mask.length, mask);
  if (result === -ERRNO.ESRCH) return null;
  if (result < 0) throw new SysError('sched_getaffinity', -result, `thread ${tid}`);
  const cpus: number[] = [];
  for (let byte = 0; byte < result; byte++) {
    for (let bit = 0; bit < 8; bit++) if (mask[byte]! & (1 << bit)) cpus.push(byte * 8 + bit);
  }
  return cpus;
}

/**
 * Lets thread `tid` run only on `cpus` (sched_setaffinity(2): per thread;
 * threads and children it creates afterwards inherit it). False when the
 * thread is gone.
 *
 * @throws SysError when the kernel refuses (EINVAL: none of `cpus` is online
 *   or allowed by the thread's cpuset; EPERM: another user's thread without
 *   CAP_SYS_NICE).
 */
export function setCpuAffinity(tid: number, cpus: readonly number[]): boolean {
  const mask = cpuMask(cpus);
  const result = trySyscall('sched_setaffinity', tid, mask.length, mask);
  if (result === -ERRNO.ESRCH) return false;
  if (result < 0) throw new SysError('sched_setaffinity', -result, `thread ${tid}`);
  return true;
}
