// Reading /proc: a process's parent, threads and children, and walks of a
// process tree (every process of a sandbox descends from its reaper).
import { closeSync, existsSync, openSync, readdirSync, readSync, writeFileSync } from 'node:fs';

// Reads of /proc files go through one reused buffer: a monitor reads a few
// small files per process every few milliseconds, and readFileSync costs about
// twice as much (it stats, allocates and grows).
const buffer = Buffer.alloc(64 * 1024);

/** The text of a /proc file, or null when the process (or thread) is gone. */
export function readProc(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    let length = 0;
    for (;;) {
      if (length === buffer.length) break;
      const count = readSync(fd, buffer, length, buffer.length - length, null);
      if (count <= 0) break;
      length += count;
    }
    return buffer.toString('latin1', 0, length);
  } catch {
    // ESRCH: the process exited between open and read.
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Writes a /proc file; false when that failed (the process is gone, say). */
export function writeProc(path: string, text: string): boolean {
  try {
    writeFileSync(path, text);
    return true;
  } catch {
    return false;
  }
}

function parsePids(text: string | null): number[] {
  if (text === null) return [];
  const pids: number[] = [];
  for (const word of text.split(' ')) {
    const pid = Number.parseInt(word, 10);
    if (pid > 0) pids.push(pid);
  }
  return pids;
}

/** The threads of a process, or [] when it is gone. */
export function threadsOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`)
      .map((name) => Number.parseInt(name, 10))
      .filter((tid) => tid > 0);
  } catch {
    return [];
  }
}

/**
 * The children forked by one thread. The kernel keeps a child on the list of
 * the *thread* that created it (`task->children`), so a process's children are
 * the union over its threads (proc(5), /proc/pid/task/tid/children; needs
 * CONFIG_PROC_CHILDREN).
 */
export function childrenOfThread(pid: number, tid: number): number[] {
  return parsePids(readProc(`/proc/${pid}/task/${tid}/children`));
}

let childrenFiles: boolean | undefined;

/** Whether this kernel has /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN). */
export function hasChildrenFiles(): boolean {
  childrenFiles ??= existsSync(`/proc/self/task/${process.pid}/children`);
  return childrenFiles;
}

/** The parent pid field of /proc/PID/stat, or null when the process is gone. */
export function parentOf(pid: number): number | null {
  const stat = readProc(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // The command name (field 2) may hold spaces and parentheses: the fields
  // after it start after the *last* ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number.parseInt(rest[1] ?? '', 10);
}

function descendantsByScan(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number.parseInt(name, 10);
    if (!(pid > 0)) continue;
    const parent = parentOf(pid);
    if (parent === null) continue;
    const list = children.get(parent);
    if (list) list.push(pid);
    else children.set(parent, [pid]);
  }
  const out: number[] = [];
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    for (const child of children.get(pid) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/** A process of the tree, with the text of the /proc files a walk was asked to read. */
export interface TreeEntry {
  pid: number;
  /** /proc/PID/status, when asked for. */
  status?: string;
  /** /proc/PID/stat, when asked for. */
  stat?: string;
}

/** The thread count from a status (`Threads:`) or stat (field 20) text. */
function threadCount(entry: TreeEntry): number {
  if (entry.status !== undefined) return fieldNumber(entry.status, 'Threads') ?? 0;
  if (entry.stat !== undefined) {
    const fields = entry.stat.slice(entry.stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[17]);
  }
  return 0;
}

/**
 * Every process below `root` (not `root` itself), parents before children,
 * with the files asked for read on the way; null when `root` is gone. Walks
 * the children files from `root` down (one per thread: the thread count in
 * the file read anyway saves listing the threads of single-threaded
 * processes; `root`, the reaper, is single-threaded). Where the kernel lacks
 * children files, scans the parent links of every process in /proc instead. A
 * process forked while the walk runs may be missed: the next walk finds it.
 */
export function walkTree(
  root: number,
  files: { status?: boolean; stat?: boolean } = {},
): TreeEntry[] | null {
  const read = (pid: number): TreeEntry | null => {
    const entry: TreeEntry = { pid };
    if (files.status) {
      const text = readProc(`/proc/${pid}/status`);
      if (text === null) return null;
      entry.status = text;
    }
    if (files.stat) {
      const text = readProc(`/proc/${pid}/stat`);
      if (text === null) return null;
      entry.stat = text;
    }
    return entry;
  };
  if (!hasChildrenFiles()) {
    if (parentOf(root) === null) return null;
    const out: TreeEntry[] = [];
    for (const pid of descendantsByScan(root)) {
      const entry = read(pid);
      if (entry) out.push(entry);
    }
    return out;
  }
  const top = readProc(`/proc/${root}/task/${root}/children`);
  if (top === null) return null;
  const out: TreeEntry[] = [];
  const seen = new Set<number>([root]);
  let level = parsePids(top);
  while (level.length > 0) {
    const next: number[] = [];
    for (const pid of level) {
      if (seen.has(pid)) continue;
      seen.add(pid);
      const entry = read(pid);
      if (entry === null) continue; // exited meanwhile
      out.push(entry);
      const count = files.status || files.stat ? threadCount(entry) : 0;
      const tids = count === 1 ? [pid] : threadsOf(pid);
      for (const tid of tids) next.push(...childrenOfThread(pid, tid));
    }
    level = next;
  }
  return out;
}

/**
 * Every process below `root` (not `root` itself), parents before children.
 * `method: 'scan'` forces the walk kernels without CONFIG_PROC_CHILDREN need
 * (the parent link of every process in /proc).
 */
export function descendantsOf(root: number, method: 'auto' | 'scan' = 'auto'): number[] {
  if (method === 'scan') return descendantsByScan(root);
  return (walkTree(root) ?? []).map((entry) => entry.pid);
}

/** The number on a `Name:   123 kB` line of a /proc file, or null without that line. */
export function fieldNumber(text: string, name: string): number | null {
  let start: number;
  if (text.startsWith(`${name}:`)) {
    start = name.length + 1;
  } else {
    const at = text.indexOf(`\n${name}:`);
    if (at < 0) return null;
    start = at + name.length + 2;
  }
  const end = text.indexOf('\n', start);
  const value = Number.parseInt(text.slice(start, end < 0 ? undefined : end).trim(), 10);
  return Number.isNaN(value) ? null : value;
}

/**
 * Whether `pid` runs below `ancestor` (a descendant, not `ancestor` itself),
 * by walking parent links up; false when it or a link on the way is gone.
 */
export function isDescendantOf(pid: number, ancestor: number): boolean {
  let at = parentOf(pid);
  for (let depth = 0; at !== null && at > 1 && depth < 4096; depth++) {
    if (at === ancestor) return true;
    at = parentOf(at);
  }
  return at === ancestor;
}

/** The process (thread group) of a thread: `Tgid:` of /proc/TID/status; null when it is gone. */
export function processOf(tid: number): number | null {
  const status = readProc(`/proc/${tid}/status`);
  return status === null ? null : fieldNumber(status, 'Tgid');
}
