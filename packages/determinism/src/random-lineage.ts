// Where a process sits in a sandbox's process tree, as a label that does not
// depend on pids or on the order in which processes happen to run: the
// program is "0", and the child of a process's k-th fork (from 0) is
// `${label}.${k}`. Two runs of a program that forks and reads randomness in
// parallel thus give each process the same stream.
//
// A fork is answered `continue` (the kernel makes the child), so the
// supervisor never sees the child's pid. It records, at each fork
// notification, the pid namespace's last allocated pid (/proc/sys/kernel/
// ns_last_pid, see pid_namespaces(7)): the child's pid is allocated after
// that, and before the pid recorded at the parent's next fork. A process is
// matched to the fork of its parent (from /proc/<pid>/stat) whose recorded
// pid lies closest below its own (modulo pid_max, for the wrap-around).
//
// Known limits: forks from two threads of one process at once can be
// matched in either order; a process whose parent exited before it was seen
// is matched against every fork not matched yet.
import { readFileSync } from 'node:fs';
import type { Keystream } from './random-stream.js';

/** One fork-like call seen (not CLONE_THREAD). */
interface ForkRecord {
  /** The label of the process that called it. */
  readonly label: string;
  /** Its index among that process's forks. */
  readonly index: number;
  /** The parent the kernel gives the child (the caller, or with CLONE_PARENT its parent). */
  readonly parent: number;
  /** ns_last_pid when the call was notified: the child's pid is above it. */
  readonly lastPid: number;
  /** Matched to a process. */
  matched: boolean;
}

/** What a process of the sandbox carries: its label, forks, and streams (see random.ts). */
export interface ProcessEntry {
  readonly pid: number;
  readonly label: string;
  /** Forks made so far. */
  forks: number;
  /** Opens of the random devices so far. */
  deviceOpens: number;
  /** Opens of /proc/sys/kernel/random/uuid so far. */
  uuidOpens: number;
  /** The getrandom(2) stream, made at the first call. */
  getrandom: Keystream | null;
}

/** Fork records kept for processes not matched yet, at most (the oldest go first). */
const MAX_PENDING_FORKS = 8192;
/** Threads remembered by thread id; past that the memory starts over. */
const MAX_THREADS = 65_536;

function readNumber(path: string): number | undefined {
  try {
    const value = Number.parseInt(readFileSync(path, 'latin1'), 10);
    return Number.isSafeInteger(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

let pidMax: number | undefined;
/** /proc/sys/kernel/pid_max: pids wrap around below it (proc(5)). */
function pidLimit(): number {
  pidMax ??= readNumber('/proc/sys/kernel/pid_max') ?? 4194304;
  return pidMax;
}

/** The last pid allocated in our pid namespace (the sandbox shares it: the filter refuses CLONE_NEWPID). */
export function lastAllocatedPid(): number {
  const pid = readNumber('/proc/sys/kernel/ns_last_pid');
  if (pid === undefined) throw new Error('sandlock: cannot read /proc/sys/kernel/ns_last_pid');
  return pid;
}

/** `ppid` and `tgid` of a task, or undefined once it is gone. */
export function taskInfo(tid: number): { tgid: number; ppid: number } | undefined {
  try {
    const status = readFileSync(`/proc/${tid}/status`, 'latin1');
    const tgid = /^Tgid:\s+(\d+)$/m.exec(status);
    const ppid = /^PPid:\s+(\d+)$/m.exec(status);
    if (tgid === null || ppid === null) return undefined;
    return { tgid: Number(tgid[1]), ppid: Number(ppid[1]) };
  } catch {
    return undefined;
  }
}

/** What the lineage reads of the system: /proc by default, a fake in unit tests. */
export interface ProcessProbe {
  taskInfo(tid: number): { tgid: number; ppid: number } | undefined;
  lastAllocatedPid(): number;
  pidMax(): number;
}

export const PROC_PROBE: ProcessProbe = {
  taskInfo,
  lastAllocatedPid,
  pidMax: pidLimit,
};

/** The labels of one sandbox's processes. */
export class Lineage {
  private readonly processes = new Map<number, ProcessEntry>();
  private pending: ForkRecord[] = [];
  /** Processes no fork could be found for, in order of arrival (should not happen). */
  private strays = 0;

  constructor(
    private readonly programPid: number,
    private readonly probe: ProcessProbe = PROC_PROBE,
  ) {}

  /** Threads other than their process's first, seen before: thread id → thread group id. */
  private readonly threads = new Map<number, number>();

  /** The entry of a process already placed, by its thread group id. */
  known(tgid: number): ProcessEntry | undefined {
    return this.processes.get(tgid);
  }

  /**
   * The entry of the process thread `tid` belongs to (placed now if needed);
   * undefined once it is gone. A thread's process is looked up in /proc once,
   * not at every call: a sandbox's threads may call getrandom all the time.
   */
  ofThread(tid: number): ProcessEntry | undefined {
    const own = this.processes.get(tid);
    if (own !== undefined) return own;
    const tgid = this.threads.get(tid);
    // Its process gone (processExit), the tid may be another thread's by now.
    if (tgid !== undefined && this.processes.has(tgid)) return this.processes.get(tgid);
    const info = this.probe.taskInfo(tid);
    if (info === undefined) return undefined;
    if (info.tgid !== tid) {
      if (this.threads.size >= MAX_THREADS) this.threads.clear();
      this.threads.set(tid, info.tgid);
    }
    return this.entry(info.tgid);
  }

  /** The entry of the process `tgid` (known, or placed in the tree now); undefined once it is gone. */
  entry(tgid: number): ProcessEntry | undefined {
    const known = this.processes.get(tgid);
    if (known !== undefined) return known;
    let label: string;
    if (tgid === this.programPid) {
      label = '0';
    } else {
      const info = this.probe.taskInfo(tgid);
      if (info === undefined) return undefined;
      label = this.match(tgid, info.ppid);
    }
    const entry: ProcessEntry = {
      pid: tgid,
      label,
      forks: 0,
      deviceOpens: 0,
      uuidOpens: 0,
      getrandom: null,
    };
    this.processes.set(tgid, entry);
    return entry;
  }

  /**
   * The process `caller` (a thread group id) is about to fork; `clonesParent`:
   * with CLONE_PARENT, whose child is its parent's. Call before the kernel runs
   * the fork, i.e. in the handler that answers `continue`.
   */
  forking(caller: number, clonesParent: boolean): void {
    const entry = this.entry(caller);
    if (entry === undefined) return;
    const parent = clonesParent ? (this.probe.taskInfo(caller)?.ppid ?? -1) : caller;
    const record: ForkRecord = {
      label: entry.label,
      index: entry.forks++,
      parent,
      lastPid: this.probe.lastAllocatedPid(),
      matched: false,
    };
    this.pending.push(record);
    if (this.pending.length > MAX_PENDING_FORKS) this.pending.shift();
  }

  /** The process `pid` is gone: its label and streams are forgotten. */
  exited(pid: number): void {
    this.processes.delete(pid);
  }

  private match(pid: number, ppid: number): string {
    const record =
      this.closestBelow(pid, (fork) => fork.parent === ppid) ?? this.closestBelow(pid, () => true);
    if (record === undefined) return `stray${this.strays++}`;
    record.matched = true;
    this.pending = this.pending.filter((fork) => !fork.matched);
    return `${record.label}.${record.index}`;
  }

  /** The unmatched fork whose recorded pid is closest below `pid`, modulo pid_max. */
  private closestBelow(pid: number, accept: (fork: ForkRecord) => boolean): ForkRecord | undefined {
    const limit = this.probe.pidMax();
    let best: ForkRecord | undefined;
    let bestDistance = Number.POSITIVE_INFINITY;
    for (const fork of this.pending) {
      if (fork.matched || !accept(fork)) continue;
      const distance = (((pid - fork.lastPid) % limit) + limit) % limit;
      if (distance === 0 || distance >= bestDistance) continue;
      best = fork;
      bestDistance = distance;
    }
    return best;
  }
}
