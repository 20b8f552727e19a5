import { formatByteSize } from '@sandlock/policy';
import { ProcReadError, readProc, statusMemory, type TreeEntry } from '@sandlock/sys';
import { type HeldBuffers, heldBuffers } from './kernel-buffers.js';
import { commandOf, hasField, sumKilobytes, threadCpuMs } from './proc.js';

/** How the memory of one process is read. */
export interface MemoryReader {
  /**
   * A cheap upper bound in bytes (constant-time kernel counters), or null when
   * the process is gone. `status` is /proc/PID/status when already read.
   */
  estimate(pid: number, status?: string): number | null;
  /** The precise figure in bytes (walks the page tables), or null when gone. */
  measure(pid: number): number | null;
  /**
   * Kernel buffers the processes hold through their descriptors (sockets,
   * pipes), each counted once. Without it they are not counted.
   */
  buffers?(pids: readonly number[]): HeldBuffers;
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
 *
 * `buffers` is heldBuffers: the socket and pipe buffers the sandbox pins in
 * the kernel, which no counter of /proc/PID/status shows (a sandbox held
 * 6.3 GiB in socketpairs under a 64 MiB limit before they were counted).
 *
 * Each returns null for a process that is gone and throws ProcReadError
 * when its files cannot be read for another reason.
 */
export const procMemoryReader: MemoryReader = {
  estimate(pid, status = readProc(`/proc/${pid}/status`) ?? undefined) {
    if (status === undefined) return null;
    return statusMemory(status);
  },
  buffers: heldBuffers,
  measure(pid) {
    let rollup: string | null;
    try {
      rollup = readProc(`/proc/${pid}/smaps_rollup`);
    } catch (error) {
      // A process that made itself non-dumpable keeps its smaps_rollup from
      // a supervisor without CAP_SYS_PTRACE (proc_pid_smaps_rollup_open()
      // checks PTRACE_MODE_READ); its status stays readable (mode 0444):
      // the upper bound stands in for the precise figure.
      if (error instanceof ProcReadError && error.code === 'EACCES') return this.estimate(pid);
      throw error;
    }
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
  /** Of `used`, the socket and pipe buffers its descriptors held. */
  buffers: number;
  /** One line for people: `sandlock: memory limit 256 MiB exceeded (…)`. */
  message: string;
}

/** One look at the sandbox's memory. */
export interface MemorySample {
  /** Bytes in use: the precise figure when `precise`, else an upper bound. */
  used: number;
  /** Of `used`, the socket and pipe buffers held through descriptors. */
  buffers: number;
  /** CPU ms this check spent reading the buffers (0 when it used the last reading). */
  buffersMs: number;
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

function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit <= 0) {
    throw new RangeError(
      `sandlock: invalid memory limit ${limit}: expected a positive number of bytes`,
    );
  }
}

/**
 * The buffers are read again every 20 ms at most, and no more often than 25
 * times what reading them cost allows (at most ~4 % of a CPU on them):
 * reading costs ~150 µs for a process with its three standard pipes and
 * milliseconds for one with hundreds of sockets (~10-17 µs each), which
 * every check would otherwise pay.
 */
const BUFFERS_MIN_INTERVAL = 20;
const BUFFERS_COST_FACTOR = 25;

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
  private buffers = 0;
  private buffersAt = Number.NEGATIVE_INFINITY;
  private buffersCost = 0;

  constructor(
    /** The limit in bytes. */
    public limit: number,
    options: MemoryLimitOptions = {},
  ) {
    checkLimit(limit);
    this.minInterval = options.minInterval ?? 5;
    this.maxInterval = options.maxInterval ?? 100;
    this.growthRate = options.growthRate ?? 16 * 1024 * 1024;
    this.reader = options.reader ?? procMemoryReader;
  }

  /** Changes the limit from the next check on: one below the use then kills the sandbox. */
  setLimit(limit: number): void {
    checkLimit(limit);
    this.limit = limit;
  }

  /**
   * Looks at the processes of the sandbox (without its reaper), as walkTree lists them.
   *
   * @throws ProcReadError (or SysError) when they cannot be read.
   */
  check(processes: readonly TreeEntry[]): MemorySample {
    let used = 0;
    for (const { pid, status } of processes) used += this.reader.estimate(pid, status) ?? 0;
    const pids = processes.map((entry) => entry.pid);
    const now = performance.now();
    let buffersMs = 0;
    const interval = Math.max(BUFFERS_MIN_INTERVAL, this.buffersCost * BUFFERS_COST_FACTOR);
    if (now - this.buffersAt >= interval) {
      buffersMs = this.readBuffers(pids);
      this.buffersAt = now;
    }
    used += this.buffers;
    let sample: MemorySample = {
      used,
      buffers: this.buffers,
      buffersMs,
      precise: false,
      violation: null,
    };
    if (used > this.limit) {
      // A kill is decided on buffers read now, not on an older reading.
      if (buffersMs === 0) buffersMs = this.readBuffers(pids);
      sample = { ...this.measure(pids, this.buffers), buffersMs };
    }
    this.peak = Math.max(this.peak, sample.used);
    return sample;
  }

  /** Reads the buffers held through descriptors; returns the CPU ms it took. */
  private readBuffers(pids: readonly number[]): number {
    if (this.reader.buffers === undefined) return 0;
    const started = threadCpuMs();
    const held = this.reader.buffers(pids);
    this.buffers = held.sockets + held.pipes;
    this.buffersCost = threadCpuMs() - started;
    return this.buffersCost;
  }

  private measure(pids: readonly number[], buffers: number): MemorySample {
    let used = buffers;
    let largest: { pid: number; used: number } | null = null;
    for (const pid of pids) {
      const bytes = this.reader.measure(pid) ?? 0;
      used += bytes;
      if (largest === null || bytes > largest.used) largest = { pid, used: bytes };
    }
    if (used <= this.limit) return { used, buffers, buffersMs: 0, precise: true, violation: null };
    const top = largest && { ...largest, command: commandOf(largest.pid) };
    const detail = top
      ? `; largest: pid ${top.pid} (${top.command}) ${formatByteSize(top.used)}`
      : '';
    const kernel = buffers > 0 ? `; socket and pipe buffers ${formatByteSize(buffers)}` : '';
    const message =
      `sandlock: memory limit ${formatByteSize(this.limit)} exceeded: ` +
      `the sandbox used ${formatByteSize(used)}${detail}${kernel}`;
    return {
      used,
      buffers,
      buffersMs: 0,
      precise: true,
      violation: { reason: 'memory', limit: this.limit, used, largest: top, buffers, message },
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
