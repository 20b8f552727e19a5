// What the sysinfo module answers, as a pure function of the real struct:
// no I/O here, so it is tested without a sandbox.
import { FSHIFT, fixedLoad, type LoadAverages } from './host-content.js';

/**
 * struct sysinfo (include/uapi/linux/sysinfo.h) on x86_64 and aarch64, where
 * long is 8 bytes: `long uptime; unsigned long loads[3]; unsigned long
 * totalram, freeram, sharedram, bufferram, totalswap, freeswap; __u16 procs;
 * __u16 pad;` (4 bytes of alignment) `unsigned long totalhigh, freehigh;
 * __u32 mem_unit;` then `char _f[20 - 2 * 8 - 4]` (none) and 4 bytes of
 * alignment: 112 bytes.
 */
export const SYSINFO_SIZE = 112;

/** The byte offsets of struct sysinfo's fields (LP64). */
export const SYSINFO_OFFSETS = Object.freeze({
  uptime: 0,
  loads: 8,
  totalram: 32,
  freeram: 40,
  sharedram: 48,
  bufferram: 56,
  totalswap: 64,
  freeswap: 72,
  procs: 80,
  totalhigh: 88,
  freehigh: 96,
  memUnit: 104,
});

/** SI_LOAD_SHIFT of include/uapi/linux/sysinfo.h: `loads` are 16-bit fixed point. */
export const SI_LOAD_SHIFT = 16;

/** What the sandbox's sysinfo shows instead of the host's; an absent part stays real. */
export interface SysinfoChanges {
  /** The memory limit and the sandbox's use now, in bytes. */
  memory?: { readonly limit: number; readonly used: number } | null;
  /** The sandbox's averages and its thread count now. */
  tasks?: { readonly load: LoadAverages; readonly threads: number } | null;
}

/**
 * A copy of the real `struct sysinfo` changed for the sandbox:
 *
 * - `memory`: `totalram` = the limit, `freeram` = limit − used (at least 0),
 *   `sharedram`, `bufferram`, `totalswap`, `freeswap`, `totalhigh`,
 *   `freehigh` = 0, all in bytes: `mem_unit` = 1 (the kernel's do_sysinfo(),
 *   kernel/sys.c, also gives 1 when the sizes fit in a long, and glibc's
 *   sysconf(_SC_PHYS_PAGES) multiplies by mem_unit).
 * - `tasks`: `loads` = the averages as do_sysinfo() writes them, the 11-bit
 *   fixed point of avenrun shifted left by SI_LOAD_SHIFT − FSHIFT
 *   (get_avenrun(info->loads, 0, SI_LOAD_SHIFT - FSHIFT)), so they are the
 *   very numbers /proc/loadavg rounds; `procs` = the threads (do_sysinfo()
 *   gives `nr_threads`, every thread of the host, not its processes), at most
 *   65535: the field is a __u16, which the kernel truncates, here clamped.
 *
 * `uptime` and every other byte stay the real ones.
 */
export function sysinfoWith(real: Buffer, changes: SysinfoChanges): Buffer {
  if (real.length !== SYSINFO_SIZE) {
    throw new RangeError(`sandlock: struct sysinfo is ${SYSINFO_SIZE} bytes, got ${real.length}`);
  }
  const copy = Buffer.from(real);
  const at = SYSINFO_OFFSETS;
  const memory = changes.memory;
  if (memory) {
    const limit = BigInt(Math.max(0, Math.floor(memory.limit)));
    const free = BigInt(Math.max(0, Math.floor(memory.limit - Math.max(0, memory.used))));
    copy.writeBigUInt64LE(limit, at.totalram);
    copy.writeBigUInt64LE(free, at.freeram);
    for (const field of [
      at.sharedram,
      at.bufferram,
      at.totalswap,
      at.freeswap,
      at.totalhigh,
      at.freehigh,
    ]) {
      copy.writeBigUInt64LE(0n, field);
    }
    copy.writeUInt32LE(1, at.memUnit);
  }
  const tasks = changes.tasks;
  if (tasks) {
    const { a1, a5, a15 } = tasks.load;
    [a1, a5, a15].forEach((average, i) => {
      const value = BigInt(fixedLoad(average)) << BigInt(SI_LOAD_SHIFT - FSHIFT);
      copy.writeBigUInt64LE(BigInt.asUintN(64, value), at.loads + 8 * i);
    });
    copy.writeUInt16LE(Math.min(0xffff, Math.max(0, Math.floor(tasks.threads))), at.procs);
  }
  return copy;
}
