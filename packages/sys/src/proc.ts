// Reading /proc: a process's parent, threads and children, and walks of a
// process tree (every process of a sandbox descends from its reaper).
//
// A limit enforced from here must never take "could not read" for "gone":
// when this process runs out of descriptors (EMFILE, ENFILE), memory (ENOMEM)
// or permission (EACCES), the process is still there and still has to be
// counted. So every reader returns null (or []) only for ENOENT and ESRCH, and
// throws a ProcReadError for anything else.
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  writeFileSync,
} from 'node:fs';

/** A /proc entry of a process that may still be there could not be read. */
export class ProcReadError extends Error {
  override readonly name = 'ProcReadError';

  constructor(
    /** The file or directory. */
    readonly path: string,
    /** The errno symbol, e.g. `'EMFILE'`. */
    readonly code: string,
  ) {
    super(`sandlock: cannot read ${path}: ${code}`);
  }
}

/**
 * Whether a failed /proc access means the process (or thread) is gone: ENOENT
 * once its directory is removed, ESRCH when it exits between open and read.
 */
function isGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ESRCH';
}

function unreadable(path: string, error: unknown): ProcReadError {
  return new ProcReadError(path, (error as NodeJS.ErrnoException | null)?.code ?? String(error));
}

// Reads of /proc files go through one reused buffer: a monitor reads a few
// small files per process every few milliseconds, and readFileSync costs about
// twice as much (it stats, allocates and grows).
const buffer = Buffer.alloc(64 * 1024);
/** Larger than any /proc file of a process (a children list of 4M pids is 32 MiB). */
const MAX_PROC_FILE = 64 * 1024 * 1024;

/**
 * The text of a /proc file, or null when the process (or thread) is gone.
 * Read to its end, however long (a reaper's children list can pass 64 KiB).
 *
 * @throws ProcReadError for any other failure (EMFILE, ENFILE, ENOMEM, EACCES…).
 */
export function readProc(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if (isGone(error)) return null;
    throw unreadable(path, error);
  }
  try {
    let into = buffer;
    let length = 0;
    for (;;) {
      if (length === into.length) {
        if (into.length >= MAX_PROC_FILE) throw new ProcReadError(path, 'EFBIG');
        const bigger = Buffer.allocUnsafe(into.length * 2);
        into.copy(bigger, 0, 0, length);
        into = bigger;
      }
      const count = readSync(fd, into, length, into.length - length, null);
      if (count <= 0) break;
      length += count;
    }
    return into.toString('latin1', 0, length);
  } catch (error) {
    if (error instanceof ProcReadError) throw error;
    // ESRCH: the process exited between open and read.
    if (isGone(error)) return null;
    throw unreadable(path, error);
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

/** The entries of a /proc directory, or null when its process is gone. */
function listProc(path: string): string[] | null {
  try {
    return readdirSync(path);
  } catch (error) {
    if (isGone(error)) return null;
    throw unreadable(path, error);
  }
}

/**
 * The threads of a process, or [] when it is gone.
 *
 * @throws ProcReadError when they cannot be listed.
 */
export function threadsOf(pid: number): number[] {
  return (listProc(`/proc/${pid}/task`) ?? [])
    .map((name) => Number.parseInt(name, 10))
    .filter((tid) => tid > 0);
}

/**
 * The children forked by one thread. The kernel keeps a child on the list of
 * the *thread* that created it (`task->children`), so a process's children are
 * the union over its threads (proc(5), /proc/pid/task/tid/children; needs
 * CONFIG_PROC_CHILDREN). [] when the thread is gone.
 *
 * @throws ProcReadError when the list cannot be read.
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

/**
 * The parent pid field of /proc/PID/stat, or null when the process is gone.
 *
 * @throws ProcReadError when it cannot be read.
 */
export function parentOf(pid: number): number | null {
  const stat = readProc(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // The command name (field 2) may hold spaces and parentheses: the fields
  // after it start after the *last* ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number.parseInt(rest[1] ?? '', 10);
}

/**
 * When the process started (field 22 of /proc/PID/stat: clock ticks after
 * boot), or null when it is gone. With the pid, it names one process for as
 * long as the system runs: a pid reused later has a later start.
 *
 * @throws ProcReadError when it cannot be read.
 */
export function startTimeOf(pid: number): number | null {
  const stat = readProc(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state).
  return Number.parseInt(rest[19] ?? '', 10);
}

function descendantsByScan(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of listProc('/proc') ?? []) {
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
 *
 * @throws ProcReadError when a file of a process that may still be there
 *   cannot be read: a walk that skipped it would undercount the tree.
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
 * (the parent link of every process in /proc). [] when `root` is gone.
 *
 * @throws ProcReadError as walkTree does.
 */
export function descendantsOf(root: number, method: 'auto' | 'scan' = 'auto'): number[] {
  if (method === 'scan') return descendantsByScan(root);
  return (walkTree(root) ?? []).map((entry) => entry.pid);
}

/**
 * The open descriptors of a process and what each names (`/proc/PID/fd/N`'s
 * link: a path, `socket:[INODE]`, `pipe:[INODE]`, `anon_inode:…`), or null
 * when it is gone. A descriptor closed during the listing is left out.
 * Threads that share the table (CLONE_FILES) list the same.
 *
 * @throws ProcReadError when the table cannot be read (EACCES for a process
 *   this one may not ptrace, EMFILE…).
 */
export function descriptorsOf(pid: number): Map<number, string> | null {
  const dir = `/proc/${pid}/fd`;
  const names = listProc(dir);
  if (names === null) return null;
  const out = new Map<number, string>();
  for (const name of names) {
    try {
      out.set(Number(name), readlinkSync(`${dir}/${name}`));
    } catch (error) {
      if (!isGone(error)) throw unreadable(`${dir}/${name}`, error);
    }
  }
  return out;
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
 *
 * @throws ProcReadError when a link cannot be read.
 */
export function isDescendantOf(pid: number, ancestor: number): boolean {
  let at = parentOf(pid);
  for (let depth = 0; at !== null && at > 1 && depth < 4096; depth++) {
    if (at === ancestor) return true;
    at = parentOf(at);
  }
  return at === ancestor;
}

/**
 * The process (thread group) of a thread: `Tgid:` of /proc/TID/status; null
 * when it is gone.
 *
 * @throws ProcReadError when it cannot be read.
 */
export function processOf(tid: number): number | null {
  const status = readProc(`/proc/${tid}/status`);
  return status === null ? null : fieldNumber(status, 'Tgid');
}

/**
 * What one process alone makes the machine keep, in bytes, from the text of
 * its /proc/<pid>/status: RssAnon + RssShmem + VmSwap + VmPTE (its anonymous
 * and shared memory, resident or swapped out, and its page tables; a missing
 * line counts 0). These are mm counters, so a page shared by several
 * processes (copy-on-write after fork, shared memory) counts once per process:
 * summed over processes, an upper bound.
 */
export function statusMemory(status: string): number {
  let total = 0;
  for (const name of STATUS_MEMORY_FIELDS) total += (fieldNumber(status, name) ?? 0) * 1024;
  return total;
}

const STATUS_MEMORY_FIELDS = ['RssAnon', 'RssShmem', 'VmSwap', 'VmPTE'] as const;
