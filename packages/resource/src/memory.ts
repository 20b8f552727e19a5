import { readProc, type TreeEntry } from '@sandlock/sys';
import { commandOf, hasField, sumKilobytes } from './proc.js';
import { formatByteSize } from './size.js';

/** How the memory of one process is read. */
export interface MemoryReader {
  /**
   * A cheap upper bound in bytes (constant-time kernel counters), or null when
   * the process is gone. `status` is /proc/PID/status when already read.
   */
  estimate(pid: number, status?: string): number | null;
  /** The precise figure in bytes (walks the page tables), or null when gone. */
  measure(pid: number): number | null;
}

/**
 * The kernel's readers. The sandbox's memory is what it alone makes the
 * machine keep: anonymous memory (heap, stacks, private copies), shared memory
 * it maps (memfd, /dev/shm, MAP_SHARED|MAP_ANONYMOUS) and what of those was
 * swapped out. Not counted: address space that was only reserved (V8, the JVM
 * and Go reserve gigabytes, see VmSize), mapped files such as shared
 * libraries and executables (clean pages the kernel can drop and re-read;
 * shared with every other user of the library), and the page cache of files
 * read or written.
 *
 * Page tables (VmPTE) count too: touching one byte every 2 MiB of a large
 * reservation costs the kernel a page table page per touched page.
 *
 * `estimate` sums RssAnon + RssShmem + VmSwap + VmPTE from /proc/PID/status:
 * mm counters, one small read per process whatever its size. It counts a page
 * shared by several processes (copy-on-write after fork, shared memory) once
 * per process, so it is an upper bound.
 *
 * `measure` sums Pss_Anon + Pss_Shmem + SwapPss from /proc/PID/smaps_rollup,
 * plus VmPTE: the proportional set size divides each shared page among the
 * processes mapping it, so a sum over processes counts every page once. It
 * walks the page tables: about 1 ms for a Node process. Kernels before 5.7
 * lack Pss_Anon; there `Pss` (which adds mapped files) is used.
 */
export const procMemoryReader: MemoryReader = {
  estimate(pid, status = readProc(`/proc/${pid}/status`) ?? undefined) {
    if (status === undefined) return null;
    return sumKilobytes(status, ['RssAnon', 'RssShmem', 'VmSwap', 'VmPTE']);
  },
  measure(pid) {
    const rollup = readProc(`/proc/${pid}/smaps_rollup`);
    const status = readProc(`/proc/${pid}/status`);
    if (rollup === null || status === null) return null;
    const tables = sumKilobytes(status, ['VmPTE']);
    if (hasField(rollup, 'Pss_Anon')) {
      return sumKilobytes(rollup, ['Pss_Anon', 'Pss_Shmem', 'SwapPss']) + tables;
    }
    return sumKilobytes(rollup, ['Pss', 'SwapPss']) + tables;
  },
};

/** Why a sandbox was killed for its memory. */
export interface MemoryViolation {
  reason: 'memory';
  /** The limit in bytes. */
  limit: number;
  /** What the sandbox used, in bytes, when it was caught. */
  used: number;
  /** The process using the most, and how much. */
  largest: { pid: number; command: string; used: number } | null;
  /** One line for people: `sandlock: memory limit 256 MiB exceeded (…)`. */
  message: string;
}

/** One look at the sandbox's memory. */
export interface MemorySample {
  /** Bytes in use: the precise figure when `precise`, else an upper bound. */
  used: number;
  precise: boolean;
  /** Set when `used` is over the limit (and precise). */
  violation: MemoryViolation | null;
}

export interface MemoryLimitOptions {
  /** Shortest time between two checks in ms (default 5): used near the limit. */
  minInterval?: number;
  /** Longest time between two checks in ms (default 100): used far from the limit. */
  maxInterval?: number;
  /**
   * The fastest growth to expect, in bytes per ms (default 16 MiB per ms, 16
   * GiB/s; on the 2-CPU development VM first touches ran at 0.5-1.8 GiB/s with
   * 4 KiB pages and up to 9 GiB/s with two threads on transparent huge pages).
   * The next check comes before this rate could cross the limit.
   */
  growthRate?: number;
  /** Reads per process (tests replace it). */
  reader?: MemoryReader;
}

/**
 * The memory accounting of one sandbox: sums the cheap upper bound over its
 * processes, and only when that is over the limit, the precise figure; says
 * when the limit is crossed and how soon to look again.
 */
export class MemoryLimit {
  readonly minInterval: number;
  readonly maxInterval: number;
  readonly growthRate: number;
  private readonly reader: MemoryReader;
  /** The highest figure seen, in bytes. */
  peak = 0;

  constructor(
    /** The limit in bytes. */
    readonly limit: number,
    options: MemoryLimitOptions = {},
  ) {
    if (!Number.isSafeInteger(limit) || limit <= 0) {
      throw new RangeError(
        `sandlock: invalid memory limit ${limit}: expected a positive number of bytes`,
      );
    }
    this.minInterval = options.minInterval ?? 5;
    this.maxInterval = options.maxInterval ?? 100;
    this.growthRate = options.growthRate ?? 16 * 1024 * 1024;
    this.reader = options.reader ?? procMemoryReader;
  }

  /** Looks at the processes of the sandbox (without its reaper), as walkTree lists them. */
  check(processes: readonly TreeEntry[]): MemorySample {
    let used = 0;
    for (const { pid, status } of processes) used += this.reader.estimate(pid, status) ?? 0;
    const pids = processes.map((entry) => entry.pid);
    let sample: MemorySample = { used, precise: false, violation: null };
    if (used > this.limit) sample = this.measure(pids);
    this.peak = Math.max(this.peak, sample.used);
    return sample;
  }

  private measure(pids: readonly number[]): MemorySample {
    let used = 0;
    let largest: { pid: number; used: number } | null = null;
    for (const pid of pids) {
      const bytes = this.reader.measure(pid) ?? 0;
      used += bytes;
      if (largest === null || bytes > largest.used) largest = { pid, used: bytes };
    }
    if (used <= this.limit) return { used, precise: true, violation: null };
    const top = largest && { ...largest, command: commandOf(largest.pid) };
    const detail = top
      ? `; largest: pid ${top.pid} (${top.command}) ${formatByteSize(top.used)}`
      : '';
    const message =
      `sandlock: memory limit ${formatByteSize(this.limit)} exceeded: ` +
      `the sandbox used ${formatByteSize(used)}${detail}`;
    return {
      used,
      precise: true,
      violation: { reason: 'memory', limit: this.limit, used, largest: top, message },
    };
  }

  /**
   * Milliseconds until the next check after a sample of `used` bytes: the time
   * the growth rate needs to cross the limit, within [minInterval, maxInterval].
   */
  nextDelay(used: number): number {
    const headroom = Math.max(0, this.limit - used);
    return Math.min(this.maxInterval, Math.max(this.minInterval, headroom / this.growthRate));
  }
}
