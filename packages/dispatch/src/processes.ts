import { readdirSync, readFileSync } from 'node:fs';
import { close, POLLFD_SIZE, POLLIN, poll, trySyscall } from '@sandlock/sys';

let childrenFileMissing: boolean | undefined;

function readChildrenFile(pid: number, tid: string): number[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && childrenFileMissing === undefined) {
      // The task may have just exited; the kernel may also lack
      // CONFIG_PROC_CHILDREN. Tell them apart once, on ourselves.
      try {
        readFileSync(`/proc/self/task/${process.pid}/children`);
        childrenFileMissing = false;
      } catch {
        childrenFileMissing = true;
      }
    }
    return childrenFileMissing ? undefined : [];
  }
  return text === '' ? [] : text.trim().split(' ').map(Number);
}

/**
 * The children of `pid` through /proc/<pid>/task/<tid>/children (proc(5):
 * a child is listed under the thread that created it, so every task is
 * read). Undefined when the kernel lacks those files.
 */
function childrenOf(pid: number): number[] | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const tid of tids) {
    const list = readChildrenFile(pid, tid);
    if (list === undefined) return undefined;
    children.push(...list);
  }
  return children;
}

/** The parent pid from /proc/<pid>/stat, or undefined if the process is gone. */
export function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may hold spaces and parentheses: skip past the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[1]);
  } catch {
    return undefined;
  }
}

/** Every process's parent, from a scan of /proc/<pid>/stat (the fallback). */
function parentLinks(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const parent = parentOf(pid);
    if (parent === undefined) continue;
    const list = children.get(parent);
    if (list === undefined) children.set(parent, [pid]);
    else list.push(pid);
  }
  return children;
}

/**
 * Every live descendant of `root` (not `root` itself), parents before their
 * children. A sandbox's processes all descend from its reaper, a child
 * subreaper that inherits every orphan, so this lists the whole sandbox.
 * `method: 'stat'` forces the fallback that kernels without
 * CONFIG_PROC_CHILDREN need (a scan of every /proc/<pid>/stat).
 */
export function descendantsOf(root: number, method: 'auto' | 'stat' = 'auto'): number[] {
  const found: number[] = [];
  const queue = [root];
  let links: Map<number, number[]> | undefined;
  while (queue.length > 0) {
    const pid = queue.shift()!;
    let children = childrenFileMissing || method === 'stat' ? undefined : childrenOf(pid);
    if (children === undefined) {
      links ??= parentLinks();
      children = links.get(pid) ?? [];
    }
    for (const child of children) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

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

  /** Walks the tree from the reaper and adopts every process not seen yet. */
  scan(): void {
    for (const pid of descendantsOf(this.root)) {
      if (!this.live.has(pid)) this.adopt(pid);
    }
  }

  /** Notes the thread id of a caller; a process not seen yet is adopted at once. */
  noteCaller(tid: number): void {
    if (this.knownTids.has(tid)) return;
    if (this.knownTids.size >= TID_CACHE_LIMIT) this.knownTids.clear();
    if (!this.live.has(tid)) {
      const tgid = threadGroupOfTid(tid);
      if (tgid !== undefined && !this.live.has(tgid) && !this.adopt(tgid)) this.scan();
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
    const parent = parentOf(pid);
    if (parent === undefined || (parent !== this.root && !this.live.has(parent))) {
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

const pollOne = Buffer.alloc(POLLFD_SIZE);

function hasExited(pidfd: number): boolean {
  pollOne.writeInt32LE(pidfd, 0);
  pollOne.writeInt16LE(POLLIN, 4);
  pollOne.writeInt16LE(0, 6);
  return poll(pollOne, 1, 0) > 0 && (pollOne.readInt16LE(6) & POLLIN) !== 0;
}

function threadGroupOfTid(tid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${tid}/status`, 'latin1');
    const match = /^Tgid:\s+(\d+)$/m.exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}
