// What the modules share at run time: recognising an open of one of their
// files, and serving a file's contents as a read-only memfd. Worker thread
// only (imported by the module files; no side effects at import).
import { readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import { type Answer, answer, type HandlerContext } from '@sandlock/dispatch/module';
import {
  AT_FDCWD,
  close,
  encodeOpenHow,
  hasSyscall,
  hostArch,
  isSymlink,
  openFlags,
  RESOLVE_NO_SYMLINKS,
  readOnlyFile,
  readOnlyReopen,
  sealedMemfd,
  trySyscall,
  type Walked,
} from '@sandlock/sys';

/** The open calls of this architecture (aarch64 has no `open`). */
export const OPEN_SYSCALLS: readonly string[] = ['open', 'openat', 'openat2'].filter((name) =>
  hasSyscall(name),
);

const O = openFlags(hostArch());
/** An open that may write, create, truncate, or does not open a file's data: not ours. */
const NOT_A_READ = O.O_WRONLY | O.O_RDWR | O.O_CREAT | O.O_TRUNC | O.O_PATH | O.O_DIRECTORY;
const OPEN_HOW_SIZE_VER0 = 24n;
const NUL = Buffer.from([0]);
/** An O_PATH lookup that meets no symlink (RESOLVE_NO_SYMLINKS refuses magic links too). */
const PLAIN = encodeOpenHow({
  flags: BigInt(O.O_PATH | O.O_CLOEXEC),
  resolve: BigInt(RESOLVE_NO_SYMLINKS),
});

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
  'resolv.conf',
  // The trust bundles (@sandlock/http's BUNDLE_PATHS).
  'ca-certificates.crt',
  'ca-bundle.crt',
  'tls-ca-bundle.pem',
  'ca-bundle.pem',
  'cert.pem',
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
 * against the caller's dirfd or cwd, then, when it can be a virtual file (its
 * last component is one of the virtual files' names, a directory symlink
 * above it, or a symlink to one of them under any name), walked as the
 * kernel would for the caller (ctx.walk: its /proc/self, not this
 * process's) to the path of what it names. Any other path keeps its lexical
 * form: its canonical form ends with the same name, so it is no virtual file
 * either.
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
  const text = ctx.readPath();
  const absolute = text.startsWith('/');
  const lexical = absolute ? posix.resolve(text) : ctx.resolvePath();
  // null: it does not exist (or not for us to see); the kernel answers. A
  // path under /proc may name another one through /proc/self: walked.
  if (
    !VIRTUAL_NAMES.has(posix.basename(lexical)) &&
    isSymlink(lexical) !== true &&
    !lexical.startsWith('/proc/')
  ) {
    return { path: lexical, cloexec };
  }
  const raw = Buffer.from(text, 'utf8');
  // An absolute path the kernel resolves without a symlink (so no
  // /proc/self, and `..` is what it is lexically) is its lexical form.
  if (absolute && !lexical.startsWith('/proc/')) {
    const fd = trySyscall('openat2', AT_FDCWD, Buffer.concat([raw, NUL]), PLAIN, PLAIN.length);
    if (fd >= 0) {
      close(fd);
      return { path: lexical, cloexec };
    }
  }
  const dirfd = ctx.syscall === 'open' ? AT_FDCWD : Number(ctx.arg('dirfd'));
  const walked = ctx.walk(raw, { dirfd, followLast: true });
  try {
    const path = walkedPath(walked) ?? lexical;
    return ctx.valid() ? { path, cloexec } : null;
  } finally {
    walked.close();
  }
}

/** The path the kernel prints for a descriptor of this process (d_path), or null. */
export function pathOf(fd: number): string | null {
  try {
    return readlinkSync(`/proc/thread-self/fd/${fd}`, 'latin1');
  } catch {
    return null;
  }
}

/** Where a walk ended, as a path: the object's, or where a missing last component would be. */
export function walkedPath(walked: Walked): string | null {
  if (walked.errno === 0) {
    const path = pathOf(walked.fd);
    return path?.startsWith('/') ? path : null; // pipe:[…], anon_inode:…: no path
  }
  if (walked.kind !== 'missing' || walked.parent < 0) return null;
  const directory = pathOf(walked.parent);
  if (directory === null || !directory.startsWith('/')) return null;
  return `${directory === '/' ? '' : directory}/${walked.name}`;
}

/** Injects a supervisor fd as the caller's new descriptor: the open's answer. */
export function injectAnswer(fd: number, cloexec: boolean): Answer {
  return answer.inject(fd, { cloexec });
}

/** Serves `contents` as the result of the open: a fresh read-only descriptor of a sealed memfd. */
export function serve(contents: string | Buffer, cloexec: boolean): Answer {
  return injectAnswer(readOnlyFile(contents), cloexec);
}

/**
 * Serves contents that do not change: one sealed memfd per distinct contents
 * is kept (the `limit` most recently served) and reopened read-only for each
 * open.
 */
export class StaticFiles {
  private readonly memfds = new Map<string, number>();

  constructor(private readonly limit = 64) {}

  serve(contents: string, cloexec: boolean): Answer {
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
    return injectAnswer(readOnlyReopen(memfd), cloexec);
  }
}
