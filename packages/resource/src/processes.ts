import {
  CLONE_THREAD,
  childrenOfThread,
  close,
  ERRNO,
  ProcReadError,
  readProc,
  SysError,
  syscallNumber,
  threadsOf,
  trySyscall,
} from '@sandlock/sys';
import { UNMEASURED_KILL_MS } from './proc.js';

const { EINVAL, ESRCH } = ERRNO;

/**
 * What the counter needs from the kernel (tests pass a fake). Each method
 * answers "gone" only when the kernel says so (ENOENT, ESRCH) and throws when
 * it cannot tell (EMFILE, ENOMEM…): the counter then refuses the fork.
 */
export interface ProcessProbe {
  /** The threads of process `pid` ([] when gone). */
  threads(pid: number): number[];
  /**
   * The children forked by thread `tid` of process `pid` (`pid` may be the
   * tid itself: /proc/TID/task/TID works for any thread).
   */
  children(pid: number, tid: number): number[];
  /**
   * Whether thread `tid` is inside the system call `nr` with first argument
   * `arg0`: true, false, or null when that cannot be told (the thread is
   * running, or made itself non-dumpable).
   */
  inSyscall(tid: number, nr: number, arg0: bigint): boolean | null;
  /** A handle that outlives pid reuse (a pidfd), or null when the process is gone. */
  open(pid: number): number | null;
  /** Whether the process behind a handle has been reaped. */
  reaped(handle: number): boolean;
  close(handle: number): void;
}

/** The real kernel: /proc for the tree and syscall state, pidfds for exits. */
export const procProcessProbe: ProcessProbe = {
  threads: threadsOf,
  children: childrenOfThread,
  inSyscall(tid, nr, arg0) {
    // "56 0x1200011 0x0 …" while blocked in a syscall, "-1 …" when blocked
    // outside one, "running" when on a CPU: in user space or still inside
    // the fork, which cannot be told apart. Reading it needs ptrace access
    // (proc(5), /proc/pid/syscall; kernel: task_current_syscall()).
    let text: string | null;
    try {
      text = readProc(`/proc/${tid}/syscall`);
      if (text === null) return readProc(`/proc/${tid}/stat`) === null ? false : null;
    } catch (error) {
      // Unknown: the reservation stays, on the safe side.
      if (error instanceof ProcReadError) return null;
      throw error;
    }
    const [number, first] = text.trim().split(' ');
    if (number === 'running') return null;
    if (Number(number) !== nr) return false;
    return first !== undefined && BigInt(first) === arg0;
  },
  open(pid) {
    const pidfd = trySyscall('pidfd_open', pid, 0);
    // EINVAL: the pid is still allocated but its process has been released
    // (pidfd_prepare() in kernel/fork.c wants a task of the thread group).
    if (pidfd === -ESRCH || pidfd === -EINVAL) return null;
    if (pidfd < 0) throw new SysError('pidfd_open', -pidfd, `pid ${pid}`);
    return pidfd;
  },
  reaped(handle) {
    // Signal 0 to a pidfd fails with ESRCH once the process has been reaped;
    // a zombie still holds its pid and still counts, as in RLIMIT_NPROC and
    // the pids cgroup.
    const result = trySyscall('pidfd_send_signal', handle, 0, null, 0);
    if (result === -ESRCH) return true;
    if (result < 0) throw new SysError('pidfd_send_signal', -result);
    return false;
  },
  close,
};

/** A fork that was let through and whose child has not been found yet. */
interface Reservation {
  nr: number;
  arg0: bigint;
  /** The caller's children when it asked: its new child is the one not in here. */
  before: Set<number>;
}

/**
 * 'kill': the processes could not be counted for longer than the bound
 * (UNMEASURED_KILL_MS); the sandbox must be killed (see `failure`).
 */
export type ForkVerdict = 'allow' | 'deny' | 'thread' | 'kill';

/** Why the counter could not count, and since when. */
export interface CountFailure {
  /** The errno symbol, e.g. `'EMFILE'`. */
  code: string;
  /** What failed, for the message. */
  message: string;
  /** performance.now() of the first failure of this run. */
  since: number;
}

/** How many processes a ProcessCounter sees. */
export interface ProcessCount {
  /** Processes found in the tree and held by a pidfd, not yet reaped. */
  live: number;
  /** Forks let through whose child is not known yet (counted as processes). */
  pending: number;
}

/**
 * Counts the processes of one sandbox (threads are not counted) and decides
 * whether another fork fits under `max`. Every process below the reaper counts
 * until it is reaped, including the program itself, so `max` 1 forbids any
 * fork.
 *
 * The supervisor asks `decide()` at every clone, fork and vfork before the
 * kernel runs it; the child's pid is not known then. So an allowed fork takes
 * a *reservation* on the calling thread, and the count is `live + pending`:
 * - an exit is credited when its pidfd says the process was reaped, never by
 *   guessing from wait calls;
 * - a reservation ends when a child of the calling thread that was not there
 *   when it asked appears in the tree (the child is then live), or when the
 *   thread is seen blocked in another call or gone (the fork failed, or the
 *   child was already reaped, or was reparented and the tree walk found it
 *   anyway); while the thread runs, whether it is still inside the fork
 *   cannot be read, and the reservation stays;
 * - a thread makes one system call at a time, so its new fork ends its
 *   previous reservation.
 * `decide()` runs to completion before the next one starts (the supervisor
 * answers notifications one at a time), so two concurrent forks can never
 * both take the last slot. Below the cap it costs one /proc read; at the cap
 * it walks the tree and polls the pidfds before it refuses.
 *
 * Fails closed: a fork that cannot be counted (a /proc read or a pidfd fails
 * with anything but "gone") is refused, and once that has lasted
 * `unmeasuredKill` ms (UNMEASURED_KILL_MS, 2 s) the verdict is 'kill'.
 */
export class ProcessCounter {
  private readonly live = new Map<number, number>();
  private readonly pending = new Map<number, Reservation>();
  /** Forks whose reservation a newer fork of the same thread ended before a walk. */
  private unadopted = 0;
  private walked = false;
  private readonly cloneNr: number | undefined;
  /** Where the zygote's fork is (always 'done' without a zygote). */
  private zygoteFork: 'expected' | 'forking' | 'done';
  /** The zygote, held by a pidfd, once found. */
  private zygote: { pid: number; handle: number } | null = null;
  private limit = 1;
  /** Forks refused. */
  denied = 0;
  /** Set while the processes cannot be counted. */
  failure: CountFailure | null = null;

  constructor(
    /** The sandbox's reaper: every process below it counts. */
    readonly root: number,
    /** The most processes that may exist at once. */
    max: number,
    private readonly probe: ProcessProbe = procProcessProbe,
    /** How long counting may fail before the verdict is 'kill', in ms. */
    readonly unmeasuredKill = UNMEASURED_KILL_MS,
    /**
     * The program's pid when the sandbox keeps a zygote (SpawnOptions.joinable):
     * the program's first fork, which the exec stub makes before the program
     * runs, is the zygote's; the zygote is the runtime's, not the sandbox's, so
     * neither that fork nor the zygote counts (what it forks does).
     */
    readonly zygoteParent: number | null = null,
  ) {
    this.max = max;
    this.cloneNr = syscallNumber('clone');
    this.zygoteFork = zygoteParent === null ? 'done' : 'expected';
  }

  /**
   * The most processes that may exist at once. Lowered below the count, it
   * refuses every fork until enough processes have ended; it kills none.
   */
  get max(): number {
    return this.limit;
  }

  set max(max: number) {
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(`sandlock: invalid process limit ${max}: expected at least 1`);
    }
    this.limit = max;
  }

  /** The count as it stands (without looking at the kernel). */
  get count(): ProcessCount {
    const zygote = this.zygote !== null && this.live.has(this.zygote.pid) ? 1 : 0;
    return { live: this.live.size + this.unadopted - zygote, pending: this.pending.size };
  }

  private total(): number {
    return this.live.size + this.unadopted + this.pending.size - this.zygoteCounted();
  }

  /** 1 while the zygote is alive and in `live` (so counted there), else 0. */
  private zygoteCounted(): number {
    if (this.zygote === null) return 0;
    // Reaped, its pid may be another process's by now: that one counts.
    if (this.probe.reaped(this.zygote.handle)) {
      this.probe.close(this.zygote.handle);
      this.zygote = null;
      return 0;
    }
    return this.live.has(this.zygote.pid) ? 1 : 0;
  }

  /**
   * Finds the zygote, at the first decision after its fork: nothing else can
   * have forked since (every fork is decided, one at a time), so it is the
   * only child of the program's thread. Anything else (the fork failed) and
   * no process is exempt.
   */
  private findZygote(): void {
    const parent = this.zygoteParent!;
    const children = this.probe.children(parent, parent);
    this.zygoteFork = 'done';
    if (children.length !== 1) return;
    const handle = this.probe.open(children[0]!);
    if (handle !== null) this.zygote = { pid: children[0]!, handle };
    // The zygote is adopted into `live` by a walk, like any process.
    this.walked = false;
  }

  /**
   * Thread `tid` (seccomp_notif.pid) calls syscall `nr` (clone, fork or vfork)
   * whose first argument is `arg0` (clone's flags). 'thread' for a clone with
   * CLONE_THREAD (not counted: let it run), 'allow' (a slot is now reserved)
   * or 'deny' (answer EAGAIN).
   */
  decide(tid: number, nr: number, arg0: bigint): ForkVerdict {
    if (nr === this.cloneNr && (arg0 & BigInt(CLONE_THREAD)) !== 0n) return 'thread';
    if (this.zygoteFork === 'expected' && tid === this.zygoteParent) {
      this.zygoteFork = 'forking';
      return 'allow';
    }
    // This thread's previous fork has returned: it is making another call.
    if (this.pending.delete(tid)) this.unadopted += 1;
    let before: Set<number>;
    try {
      if (this.zygoteFork === 'forking') this.findZygote();
      if (!this.walked || this.total() >= this.max) this.reconcile();
      if (this.total() >= this.max) {
        this.denied += 1;
        return 'deny';
      }
      before = new Set(this.probe.children(tid, tid));
    } catch (error) {
      return this.uncounted(error);
    }
    this.pending.set(tid, { nr, arg0, before });
    return 'allow';
  }

  /** A decision could not count: refuse, or 'kill' once that has lasted too long. */
  private uncounted(error: unknown): ForkVerdict {
    // The next decision walks the whole tree again.
    this.walked = false;
    this.denied += 1;
    const now = performance.now();
    const code =
      error instanceof ProcReadError || error instanceof SysError
        ? error.code
        : ((error as NodeJS.ErrnoException | null)?.code ?? 'unknown');
    this.failure = {
      code,
      message: error instanceof Error ? error.message : String(error),
      since: this.failure?.since ?? now,
    };
    return now - this.failure.since >= this.unmeasuredKill ? 'kill' : 'deny';
  }

  /**
   * Brings the count up to date with the kernel: credits reaped processes,
   * adopts every process in the tree and ends the reservations whose fork is
   * over.
   */
  reconcile(): ProcessCount {
    for (const [pid, handle] of this.live) {
      if (this.probe.reaped(handle)) {
        this.probe.close(handle);
        this.live.delete(pid);
      }
    }
    // Whether each reserved fork is still running is read before the walk, so
    // that a fork seen as over has its child (if alive) in the tree already.
    const over = new Set<number>();
    for (const [tid, reservation] of this.pending) {
      if (this.probe.inSyscall(tid, reservation.nr, reservation.arg0) === false) over.add(tid);
    }
    // The walk reads one children list at a time while processes exit, and an
    // exiting thread or process hands its children to a live sibling thread or
    // to an ancestor (the reaper, a child subreaper), whose list may have been
    // read already. So the lists are read a second time in reverse order,
    // leaves first: a child that moves up meanwhile moves to a list not yet
    // read again.
    const seen = new Set<number>([this.root]);
    const visited: [number, number][] = [];
    const explore = (start: number) => {
      const queue = [start];
      for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
        for (const tid of this.probe.threads(pid)) {
          visited.push([pid, tid]);
          for (const child of this.readChildren(pid, tid, seen, over)) queue.push(child);
        }
      }
    };
    explore(this.root);
    for (let index = visited.length - 1; index >= 0; index--) {
      const [pid, tid] = visited[index]!;
      for (const child of this.readChildren(pid, tid, seen, over)) explore(child);
    }
    for (const tid of over) this.pending.delete(tid);
    this.unadopted = 0;
    this.walked = true;
    this.failure = null;
    return this.count;
  }

  /**
   * Reads the children of thread `tid` of `pid`; adopts each one not seen yet
   * and returns those, and marks the thread's reservation over if one of them
   * is new to it.
   */
  private readChildren(pid: number, tid: number, seen: Set<number>, over: Set<number>): number[] {
    const reservation = this.pending.get(tid);
    const found: number[] = [];
    for (const child of this.probe.children(pid, tid)) {
      if (reservation && !reservation.before.has(child)) over.add(tid);
      if (seen.has(child)) continue;
      seen.add(child);
      found.push(child);
      if (this.live.has(child)) continue;
      const handle = this.probe.open(child);
      if (handle !== null) this.live.set(child, handle);
    }
    return found;
  }

  /** Closes every pidfd. */
  close(): void {
    if (this.zygote !== null) this.probe.close(this.zygote.handle);
    this.zygote = null;
    for (const handle of this.live.values()) this.probe.close(handle);
    this.live.clear();
    this.pending.clear();
  }
}
