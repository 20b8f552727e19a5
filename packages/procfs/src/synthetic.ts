// What the modules share at run time: recognising an open of one of their
// files, and serving a file's contents as a read-only memfd. Worker thread
// only (imported by the module files; no side effects at import).
import { realpathSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { posix } from 'node:path';
import type { Answer, HandlerContext } from '@sandlock/dispatch';
import {
  AT_FDCWD,
  close,
  F_ADD_SEALS,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  fcntl,
  hasSyscall,
  hostArch,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  memfdCreate,
  openAt,
  openFlags,
  trySyscall,
} from '@sandlock/sys';

/**
 * The answers these modules give: plain data of @sandlock/dispatch's Answer
 * type (the module files import nothing from it at run time).
 */
export type PlainAnswer = Extract<Answer, { kind: 'continue' | 'errno' | 'value' | 'inject' }>;

export const CONTINUE: PlainAnswer = Object.freeze({ kind: 'continue' } as const);

export function errnoAnswer(name: keyof typeof constants.errno): PlainAnswer {
  return { kind: 'errno', errno: constants.errno[name] };
}

/** The open calls of this architecture (aarch64 has no `open`). */
export const OPEN_SYSCALLS: readonly string[] = ['open', 'openat', 'openat2'].filter((name) =>
  hasSyscall(name),
);

const O = openFlags(hostArch());
/** An open that may write, create, truncate, or does not open a file's data: not ours. */
const NOT_A_READ = O.O_WRONLY | O.O_RDWR | O.O_CREAT | O.O_TRUNC | O.O_PATH | O.O_DIRECTORY;
const OPEN_HOW_SIZE_VER0 = 24n;

export interface OpenRequest {
  /** The canonical absolute path the caller opens. */
  readonly path: string;
  /** The caller asked for O_CLOEXEC. */
  readonly cloexec: boolean;
}

/** The last components of every virtual file of this package. */
const VIRTUAL_NAMES: ReadonlySet<string> = new Set([
  'hostname',
  'cpuinfo',
  'stat',
  'online',
  'present',
  'possible',
  'offline',
  'meminfo',
  'hosts',
]);

// The modules look at the same open: the second reuses the first's result.
let lastCall: {
  id: bigint;
  pid: number;
  request: OpenRequest | null;
  /** Handed over by an earlier module (shareOpenRequest), not read by openRequest. */
  shared: boolean;
} | null = null;

/**
 * The open an open call (open, openat, openat2) makes, when it is a
 * read-only open; else null (the call should continue). The path is resolved
 * against the caller's dirfd or cwd, then made canonical by the supervisor
 * when it can be a virtual file: its last component is one of the virtual
 * files' names (a directory symlink above it) or a symlink (to one of them,
 * under any name). Any other path keeps its lexical form: its canonical form
 * ends with the same name, so it is no virtual file either.
 */
export function openRequest(ctx: HandlerContext): OpenRequest | null {
  if (lastCall !== null && lastCall.id === ctx.id && lastCall.pid === ctx.pid) {
    return lastCall.request;
  }
  const request = readOpen(ctx);
  lastCall = { id: ctx.id, pid: ctx.pid, request, shared: false };
  return request;
}

/**
 * Hands the modules after this one the open as an earlier module resolved
 * it (the proc-pids module, which runs first and resolves /proc/self as the
 * caller's): they decide on that copy instead of reading the path again,
 * so the chain agrees on one copy of the caller's memory.
 */
export function shareOpenRequest(ctx: HandlerContext, request: OpenRequest | null): void {
  lastCall = { id: ctx.id, pid: ctx.pid, request, shared: true };
}

/**
 * The open as an earlier module of the chain resolved it for this very call
 * (shareOpenRequest), or null when none did: for a module that decides on
 * the proc-pids module's resolution only (its /proc/self is the caller's,
 * its hidden pids already refused) and never resolves a path itself.
 */
export function sharedOpenRequest(ctx: HandlerContext): OpenRequest | null {
  if (lastCall === null || !lastCall.shared) return null;
  return lastCall.id === ctx.id && lastCall.pid === ctx.pid ? lastCall.request : null;
}

/** A read-only open of a file's data (not O_PATH, not O_DIRECTORY): the opens the modules serve. */
export function isPlainRead(flags: number): boolean {
  return (flags & NOT_A_READ) === 0;
}

function readOpen(ctx: HandlerContext): OpenRequest | null {
  let flags: number;
  if (ctx.syscall === 'openat2') {
    const { how, size } = ctx.argsOf('openat2');
    if (BigInt(size) < OPEN_HOW_SIZE_VER0) return null; // the kernel refuses it (EINVAL)
    flags = Number(ctx.read(BigInt(how), 8).readBigUInt64LE(0) & 0xffffffffn);
  } else {
    flags = Number(ctx.arg('flags'));
  }
  if ((flags & NOT_A_READ) !== 0) return null;
  const cloexec = (flags & O.O_CLOEXEC) !== 0;
  const lexical = ctx.resolvePath();
  // /proc/self would be the supervisor's: name the caller's thread instead.
  const own = lexical
    .replace(/^\/proc\/thread-self(?=\/|$)/, `/proc/${ctx.pid}/task/${ctx.pid}`)
    .replace(/^\/proc\/self(?=\/|$)/, `/proc/${ctx.pid}`);
  try {
    if (!VIRTUAL_NAMES.has(posix.basename(own)) && !isSymlink(own)) {
      return { path: lexical, cloexec };
    }
    const path = realpathSync(own);
    return ctx.valid() ? { path, cloexec } : null;
  } catch {
    return { path: lexical, cloexec }; // does not exist (or not for us to see)
  }
}

const LINK_BYTE = Buffer.alloc(1);
const EINVAL = 22;

/**
 * Whether `path` names a symlink: readlinkat into a one-byte buffer, which
 * fails with EINVAL on anything else (readlink(2)). Several times cheaper
 * than lstatSync, which builds a Stats object for every open of the sandbox.
 * Throws when the path does not exist (or cannot be looked up).
 */
function isSymlink(path: string): boolean {
  const result = trySyscall('readlinkat', AT_FDCWD, Buffer.from(`${path}\0`), LINK_BYTE, 1);
  if (result >= 0) return true;
  if (result === -EINVAL) return false;
  throw new Error(`readlinkat: errno ${-result}`);
}

const SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

/** A sealed memfd holding `contents` (the supervisor's, close-on-exec). */
export function sealedMemfd(contents: string | Buffer): number {
  const fd = memfdCreate('sandlock', MFD_CLOEXEC | MFD_ALLOW_SEALING);
  try {
    const data = typeof contents === 'string' ? Buffer.from(contents, 'utf8') : contents;
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written);
    fcntl(fd, F_ADD_SEALS, SEALS);
    return fd;
  } catch (error) {
    close(fd);
    throw error;
  }
}

/**
 * A new read-only open file description of a memfd (its own offset), opened
 * through /proc/self/fd: the caller's descriptor is O_RDONLY, and the seals
 * forbid writes through any other.
 */
export function readOnlyOpen(memfd: number): number {
  // Not fs.openSync: the answer closes the fd with close(2), and a worker
  // thread's fs tracks the fds it opened (a reused number draws a warning).
  return openAt(`/proc/self/fd/${memfd}`, O.O_RDONLY | O.O_CLOEXEC);
}

/** Injects a supervisor fd as the caller's new descriptor: the open's answer. */
export function injectAnswer(fd: number, cloexec: boolean): PlainAnswer {
  return { kind: 'inject', fd, cloexec, targetFd: null, keep: false };
}

/** Serves `contents` as the result of the open: a fresh read-only descriptor of a sealed memfd. */
export function serve(contents: string | Buffer, cloexec: boolean): PlainAnswer {
  const memfd = sealedMemfd(contents);
  try {
    return injectAnswer(readOnlyOpen(memfd), cloexec);
  } finally {
    close(memfd);
  }
}

/**
 * Serves contents that do not change: one sealed memfd per distinct contents
 * is kept (the `limit` most recently served) and reopened read-only for each
 * open.
 */
export class StaticFiles {
  private readonly memfds = new Map<string, number>();

  constructor(private readonly limit = 64) {}

  serve(contents: string, cloexec: boolean): PlainAnswer {
    let memfd = this.memfds.get(contents);
    if (memfd === undefined) {
      memfd = sealedMemfd(contents);
      if (this.memfds.size >= this.limit) {
        const [oldest, fd] = this.memfds.entries().next().value as [string, number];
        this.memfds.delete(oldest);
        close(fd);
      }
    } else {
      this.memfds.delete(contents); // to the end: most recently served
    }
    this.memfds.set(contents, memfd);
    return injectAnswer(readOnlyOpen(memfd), cloexec);
  }
}
