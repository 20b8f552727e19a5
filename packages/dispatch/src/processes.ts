import {
  close,
  descendantsOf,
  ProcReadError,
  parentOf,
  processOf,
  readableNow,
  trySyscall,
} from '@sandlock/sys';

/** Every live process of the sandbox whose reaper is `reaperPid`, parents first. */
export function sandboxProcesses(reaperPid: number): number[] {
  return descendantsOf(reaperPid);
}

/** Hooks a tracker calls; `watch`/`unwatch` register a pidfd with the loop. */
export interface TrackerEvents {
  watch(pidfd: number): void;
  unwatch(pidfd: number): void;
  started(pid: number): void;
  exited(pid: number): void;
}

const TID_CACHE_LIMIT = 65536;

/**
 * The live processes of one sandbox. Each process seen is pinned by a
 * pidfd, which becomes readable when it exits (pidfd_open(2)), so an exit is
 * credited exactly once, to the right process, even after its pid is reused.
 */
export class ProcessTracker {
  readonly live = new Set<number>();
  private readonly pidfds = new Map<number, number>();
  private readonly pidByPidfd = new Map<number, number>();
  /** Thread ids already attributed to a live process. */
  private readonly knownTids = new Set<number>();

  constructor(
    private readonly root: number,
    private readonly events: TrackerEvents,
  ) {}

  /**
   * Walks the tree from the reaper and adopts every process not seen yet.
   *
   * @throws ProcReadError when /proc cannot be read (this process out of descriptors, say).
   */
  scan(): void {
    for (const pid of descendantsOf(this.root)) {
      if (!this.live.has(pid)) this.adopt(pid);
    }
  }

  /** scan(), but a tree that cannot be read now is left to the next scan: false then. */
  tryScan(): boolean {
    try {
      this.scan();
      return true;
    } catch (error) {
      if (error instanceof ProcReadError) return false;
      throw error;
    }
  }

  /** Notes the thread id of a caller; a process not seen yet is adopted at once (or at a later scan). */
  noteCaller(tid: number): void {
    if (this.knownTids.has(tid)) return;
    if (this.knownTids.size >= TID_CACHE_LIMIT) this.knownTids.clear();
    if (!this.live.has(tid)) {
      let tgid: number | null;
      try {
        tgid = processOf(tid);
        if (tgid !== null && !this.live.has(tgid) && !this.adopt(tgid)) this.scan();
      } catch (error) {
        if (error instanceof ProcReadError) return;
        throw error;
      }
    }
    this.knownTids.add(tid);
  }

  /** Starts tracking `pid` if it belongs to the sandbox; false if it does not (or is gone). */
  private adopt(pid: number): boolean {
    const pidfd = trySyscall('pidfd_open', pid, 0);
    if (pidfd < 0) return false;
    // An exited process stays in its parent's children list until reaped, and
    // pidfd_open() works on it: a readable pidfd means it is already over
    // (pidfd_open(2)), so it is not adopted (again).
    if (hasExited(pidfd)) {
      close(pidfd);
      return false;
    }
    // The pid was read before the pidfd pinned it: had that process gone and
    // the pid been reused, the new process's parent would be outside the sandbox.
    let parent: number | null;
    try {
      parent = parentOf(pid);
    } catch (error) {
      close(pidfd);
      throw error;
    }
    if (parent === null || (parent !== this.root && !this.live.has(parent))) {
      close(pidfd);
      return false;
    }
    this.live.add(pid);
    this.pidfds.set(pid, pidfd);
    this.pidByPidfd.set(pidfd, pid);
    this.events.watch(pidfd);
    this.events.started(pid);
    return true;
  }

  /** Whether `pidfd` is one of this tracker's. */
  owns(pidfd: number): boolean {
    return this.pidByPidfd.has(pidfd);
  }

  /** The process behind `pidfd` exited. */
  exited(pidfd: number): void {
    const pid = this.pidByPidfd.get(pidfd);
    if (pid === undefined) return;
    this.forget(pid, pidfd);
    this.events.exited(pid);
  }

  private forget(pid: number, pidfd: number): void {
    this.events.unwatch(pidfd);
    close(pidfd);
    this.pidByPidfd.delete(pidfd);
    this.pidfds.delete(pid);
    this.live.delete(pid);
  }

  /** The sandbox is gone: credits every remaining exit and releases the pidfds. */
  close(): void {
    for (const [pid, pidfd] of [...this.pidfds]) {
      this.forget(pid, pidfd);
      this.events.exited(pid);
    }
    this.knownTids.clear();
  }
}

/** A pidfd polls readable once its process has exited (pidfd_open(2)). */
const hasExited = readableNow;
