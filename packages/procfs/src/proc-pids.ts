// Processes outside the sandbox are hidden from its /proc, as a handler
// module of @sandlock/dispatch: an open of /proc/<pid>/… for a pid that is
// not the sandbox's fails with ENOENT, and the /proc listing leaves those
// pids out. The supervisor imports this file in its worker threads by URL
// (PROC_PIDS_MODULE), so it has no side effects at import and pulls nothing
// from @sandlock/dispatch at run time.
//
// Decided on copies (README of @sandlock/dispatch): a permitted read-only
// open of a /proc path is done by the supervisor, beneath its own /proc
// descriptor, and the descriptor injected; so another thread of the caller
// rewriting the path after the check opens nothing. Opens of a magic link
// to an object without a path (a pipe), write-opens and opens with unusual
// flags continue (Landlock checks the real open), and so does every path
// that cannot land in /proc: README, "What is not hidden".
import { fstatSync, lstatSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import type { DispatchModule, HandlerContext, WorkerSession } from '@sandlock/dispatch';
import {
  AT_FDCWD,
  type CapabilitySets,
  type Credentials,
  close,
  credentialsOf,
  encodeOpenHow,
  hasSyscall,
  hostArch,
  openAt,
  openFlags,
  pathWithin,
  RESOLVE_BENEATH,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  RESOLVE_NO_XDEV,
  readCStringBytes,
  sameIds,
  threadCapabilities,
  trySyscall,
  withCallerCapabilities,
} from '@sandlock/sys';
import {
  deterministicDirsOf,
  heldBy,
  hostnameOf,
  madeUpProcFiles,
  type ProcfsPolicy,
  policyReads,
  procReadable,
} from './content.js';
import { hostFileOf } from './host-content.js';
import { type DirEntry, ListingCache, sortEntries } from './listing.js';
import {
  type Caller,
  components,
  insideSandbox,
  parentIn,
  type Resolved,
  readProcFile,
  resolveForCaller,
} from './proc-path.js';
import {
  CONTINUE,
  errnoAnswer,
  injectAnswer,
  isPlainRead,
  OPEN_SYSCALLS,
  type PlainAnswer,
  shareOpenRequest,
} from './synthetic.js';

/** The listing calls of this architecture (aarch64 has no legacy getdents). */
const LISTING_SYSCALLS: readonly string[] = ['getdents64', 'getdents'].filter((name) =>
  hasSyscall(name),
);

/** The syscalls the proc-pids module is notified of. */
export const PROC_PIDS_SYSCALLS: readonly string[] = [...OPEN_SYSCALLS, ...LISTING_SYSCALLS];

/** Host paths no sandbox opens (sandlock 0.6, spec §4.9): EACCES, the path or beneath it. */
export const SENSITIVE_PATHS: readonly string[] = [
  '/proc/kcore',
  '/proc/kmsg',
  '/proc/kallsyms',
  '/proc/keys',
  '/proc/key-users',
  '/proc/sysrq-trigger',
  '/sys/firmware',
  '/sys/kernel/security',
];

function sensitive(path: string): boolean {
  return SENSITIVE_PATHS.some((entry) => pathWithin(path, entry));
}

const O = openFlags(hostArch());
const O_LARGEFILE = hostArch() === 'x86_64' ? 0o100000 : 0o400000;
/** Flags that write, create or truncate: never done on behalf. (__O_TMPFILE includes O_DIRECTORY.) */
const WRITING = O.O_WRONLY | O.O_RDWR | O.O_CREAT | O.O_TRUNC | O.O_APPEND | 0o20000000;
/** Flags an on-behalf open keeps; any other (O_DIRECT, O_NOATIME, O_SYNC, O_ASYNC…) continues. */
const ON_BEHALF =
  O.O_NONBLOCK | O.O_DIRECTORY | O.O_NOFOLLOW | O.O_PATH | O.O_CLOEXEC | 0o400; /* O_NOCTTY */
const OPEN_HOW_SIZE_VER0 = 24n;
/** Marks an openat2 whose struct open_how is larger than ours (not a RESOLVE_* bit). */
const EXTENDED = 0x4000_0000;
const RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
const PIN_HOW = encodeOpenHow({
  flags: BigInt(O.O_PATH | O.O_DIRECTORY | O.O_CLOEXEC),
  resolve: BigInt(RESOLVE),
});
const ELOOP = 40;
const EXDEV = 18;
/**
 * Files of another process opened in PTRACE_MODE_ATTACH (fs/proc/base.c:
 * mem, and lock_trace() for syscall, stack, personality): Yama's
 * ptrace_scope applies to them, and the supervisor, every sandbox process's
 * ancestor, would pass where the caller may not. They continue.
 */
const ATTACH_FILES: ReadonlySet<string> = new Set(['mem', 'syscall', 'stack', 'personality']);

interface Worker {
  /** The supervisor's /proc (O_PATH): on-behalf opens resolve beneath it. */
  readonly procFd: number;
  readonly procDev: number;
  readonly procIno: number;
  /** File systems whose files are looked at closely: proc, sys, securityfs. */
  readonly watched: ReadonlySet<number>;
  /** The supervisor's credentials (status lines), which an on-behalf open uses. */
  readonly credentials: Credentials;
  /** This worker thread's capability sets, restored after each open made with fewer. */
  readonly capabilities: CapabilitySets;
}

let worker: Worker | null = null;

function setUp(): Worker {
  if (worker !== null) return worker;
  const procFd = openAt('/proc', O.O_PATH | O.O_DIRECTORY | O.O_CLOEXEC);
  const proc = fstatSync(procFd);
  const watched = new Set<number>([proc.dev]);
  for (const path of ['/sys', '/sys/kernel/security']) {
    const stat = lstatSync(path, { throwIfNoEntry: false });
    if (stat !== undefined) watched.add(stat.dev);
  }
  const own = credentialsOf(readProcFile('/proc/self/status') ?? '');
  if (own === null) throw new Error('sandlock: cannot read the supervisor’s /proc/self/status');
  worker = {
    procFd,
    procDev: proc.dev,
    procIno: proc.ino,
    watched,
    credentials: own,
    capabilities: threadCapabilities(),
  };
  return worker;
}

/** Whether the sandbox may write in a directory (components): fsWrite holds it or an ancestor. */
function writable(policy: ProcfsPolicy | undefined, directory: readonly string[]): boolean {
  const path = `/${directory.join('/')}`;
  return (policy?.fsWrite ?? []).some((entry) => heldBy(path, entry));
}

/** An open call's arguments, copied. */
interface OpenCall {
  readonly path: string;
  readonly dirfd: number;
  readonly flags: number;
  /** openat2's RESOLVE_* flags (0 for open and openat), and EXTENDED. */
  readonly resolve: number;
}

/** PATH_MAX of <linux/limits.h>, the terminating NUL included. */
const PATH_MAX = 4096;

/**
 * The path argument as its bytes, one character per byte (latin1): a name
 * that is not UTF-8 stays exact (ctx.readPath decodes UTF-8, which would
 * turn it into replacement characters and make a symlink named so
 * unfindable). Every fs call of this module converts back the same way.
 */
function readRawPath(ctx: HandlerContext): string {
  try {
    return readCStringBytes(ctx.pid, BigInt(ctx.arg('pathname')), PATH_MAX).toString('latin1');
  } catch {
    // A bad pointer or a path too long: readPath fails the call the kernel's way.
    return Buffer.from(ctx.readPath(), 'utf8').toString('latin1');
  }
}

/** A NUL-terminated copy of a path, for the raw syscalls. */
function cPath(path: string): Buffer {
  return Buffer.from(`${path}\0`, 'latin1');
}

function readOpenCall(ctx: HandlerContext): OpenCall | null {
  if (ctx.syscall === 'openat2') {
    const { dirfd, how, size } = ctx.argsOf('openat2');
    if (BigInt(size) < OPEN_HOW_SIZE_VER0) return null; // the kernel refuses it (EINVAL)
    const copy = ctx.read(BigInt(how), 24);
    return {
      path: readRawPath(ctx),
      dirfd,
      flags: Number(copy.readBigUInt64LE(0) & 0xffffffffn),
      // A larger struct (a later kernel's fields, or E2BIG for non-zero
      // ones, openat2(2)): the kernel's to judge, as restrictions of its own.
      resolve:
        Number(copy.readBigUInt64LE(16) & 0xffffffffn) |
        (BigInt(size) > OPEN_HOW_SIZE_VER0 ? EXTENDED : 0),
    };
  }
  const dirfd = ctx.syscall === 'open' ? -100 : ctx.argsOf('openat').dirfd;
  return { path: readRawPath(ctx), dirfd, flags: Number(ctx.arg('flags')), resolve: 0 };
}

/** The first component is proc or sys: a path this module looks at closely. */
const WATCHED_TOP = /^\/(proc|sys)(\/|$)/;
const PROBE = encodeOpenHow({
  flags: BigInt(O.O_PATH | O.O_CLOEXEC),
  resolve: BigInt(RESOLVE_NO_SYMLINKS),
});

/**
 * The fast way out, for almost every open: a path (normalized, absolute,
 * not under /proc or /sys) needs the careful walk only when the supervisor's
 * own look at it meets a symlink (which may lead into /proc, and /proc/self
 * is the supervisor's there) or lands in procfs, sysfs or securityfs
 * mounted elsewhere. One openat2(O_PATH, RESOLVE_NO_SYMLINKS) tells: ELOOP at
 * the first symlink (openat2(2)); ENOENT or ENOTDIR before any symlink means
 * the caller's open fails the same way; a descriptor is fstat'ed for its
 * file system. Without symlinks, `..` resolved lexically is the kernel's.
 */
function needsWalk(path: string, state: Worker): boolean {
  const fd = trySyscall('openat2', AT_FDCWD, cPath(path), PROBE, PROBE.length);
  if (fd === -ELOOP) return true;
  if (fd < 0) return false;
  try {
    return state.watched.has(fstatSync(fd).dev);
  } finally {
    close(fd);
  }
}

// Paths the probe found plain (no symlink, no other procfs or sysfs mount),
// used for sandboxes that cannot write their tree: an open within a second
// skips the probe, in any sandbox of this worker (a short command's whole
// start-up is opens of the same system files as the previous one's). The
// host, or another sandbox that may write there, may make one a symlink
// meanwhile; the kernel then follows it, and Landlock still refuses
// /proc/<pid>, which sandlock leaves out of the rules of a sandbox that hides
// processes: a stale entry can fail an open that should have been served,
// not reveal.
const PLAIN_TTL_MS = 1000;
const MAX_PLAIN = 4096;
const plainPaths = new Map<string, number>();

/** {@link needsWalk}, remembered for paths the sandbox cannot change. */
function needsWalkCached(ctx: HandlerContext<ProcfsPolicy>, full: string, state: Worker): boolean {
  if (writable(ctx.session.policy, components(full))) return needsWalk(full, state);
  const now = Date.now();
  const seen = plainPaths.get(full);
  if (seen !== undefined && now - seen < PLAIN_TTL_MS) return false;
  if (needsWalk(full, state)) return true;
  if (plainPaths.size >= MAX_PLAIN) plainPaths.clear();
  plainPaths.set(full, now);
  return false;
}

function onOpen(ctx: HandlerContext<ProcfsPolicy>): PlainAnswer {
  const call = readOpenCall(ctx);
  if (call === null || !ctx.valid()) return CONTINUE; // valid: the bytes were the caller's
  const state = setUp();
  const inRoot = (call.resolve & RESOLVE_IN_ROOT) !== 0;
  // The directory the path starts from: the caller's dirfd or cwd (its
  // readlink), unless the path is absolute (and not RESOLVE_IN_ROOT).
  let base = '/';
  if (!call.path.startsWith('/') || inRoot) {
    const link = call.dirfd === -100 ? `/proc/${ctx.pid}/cwd` : `/proc/${ctx.pid}/fd/${call.dirfd}`;
    try {
      base = readlinkSync(link, 'latin1');
    } catch {
      return ctx.valid() ? errnoAnswer('EBADF') : CONTINUE;
    }
    if (!base.startsWith('/')) return CONTINUE; // not a directory (pipe:[…]): the kernel's ENOTDIR
  }
  if (call.path === '') return CONTINUE; // ENOENT: open(2) takes no empty path
  const full = posix.normalize(`${base}/${call.path}`);
  if (!WATCHED_TOP.test(full) && !needsWalkCached(ctx, full, state)) return CONTINUE;
  let status: Credentials | null | undefined;
  const callerCredentials = (): Credentials | null => {
    if (status === undefined) status = credentialsOf(readProcFile(`/proc/${ctx.pid}/status`) ?? '');
    return status;
  };
  const caller: Caller = {
    tid: ctx.pid,
    tgid: () => callerCredentials()?.tgid ?? ctx.pid,
    knownTgid: () => (status === undefined ? null : (status?.tgid ?? null)),
  };
  const start = components(base);
  const pin = new Pin(state.procFd, ctx.session.reaperPid);
  try {
    const resolved = resolveForCaller(start, call.path, {
      caller,
      member: (pid) => pin.member(pid),
      reaper: ctx.session.reaperPid,
      noFollow: (call.flags & O.O_NOFOLLOW) !== 0,
      floor: inRoot ? start.length : 0,
      stable: (directory) => !writable(ctx.session.policy, directory),
    });
    // The caller's memory and /proc files were read: is it still the caller?
    if (!ctx.valid()) return CONTINUE;
    const trailingSlash = /\/\.?$/.test(call.path);
    return decide(ctx, call, resolved, trailingSlash, state, callerCredentials, pin);
  } finally {
    pin.release();
  }
}

/**
 * A /proc/<pid> directory opened (O_PATH) when the walk enters it, and its
 * membership read through that descriptor: the on-behalf open then goes on
 * from it, so a pid reused meanwhile by an outside process is not the one
 * opened (a /proc/<pid> descriptor keeps naming its process; lookups
 * beneath it fail once that process is gone, proc(5)).
 */
class Pin {
  pid = -1;
  fd = -1;

  constructor(
    private readonly procFd: number,
    private readonly reaper: number,
  ) {}

  /** Whether a pid is the sandbox's; if so, it stays pinned (the previous pin is let go). */
  member(pid: number): boolean {
    this.release();
    if (pid === this.reaper) return false;
    const fd = trySyscall('openat2', this.procFd, Buffer.from(`${pid}\0`), PIN_HOW, PIN_HOW.length);
    if (fd < 0) return false;
    const parent = parentIn(readProcFile('stat', fd));
    const inside =
      parent !== null &&
      (parent === this.reaper || (parent > 1 && insideSandbox(parent, this.reaper) === true));
    if (!inside) {
      close(fd);
      return false;
    }
    this.pid = pid;
    this.fd = fd;
    return true;
  }

  release(): void {
    if (this.fd >= 0) close(this.fd);
    this.fd = -1;
    this.pid = -1;
  }
}

function decide(
  ctx: HandlerContext<ProcfsPolicy>,
  call: OpenCall,
  resolved: Resolved,
  trailingSlash: boolean,
  state: Worker,
  callerCredentials: () => Credentials | null,
  pin: Pin,
): PlainAnswer {
  if (resolved.kind === 'hidden') return errnoAnswer('ENOENT');
  if (resolved.kind === 'loop') return errnoAnswer('ELOOP');
  // A magic link to an object without a path (/dev/fd/N of a pipe or a
  // socket, ns/*): nothing in /proc to hide; the kernel opens it (never
  // followed on behalf), Landlock checks.
  if (resolved.kind === 'magic') return CONTINUE;
  const { path } = resolved;
  if (sensitive(path)) return errnoAnswer('EACCES');
  if (isPlainRead(call.flags)) {
    // The later modules (proc-host, hostname, num-cpus, meminfo) decide on this copy.
    shareOpenRequest(ctx, { path, cloexec: (call.flags & O.O_CLOEXEC) !== 0 });
    if (servedByOthers(ctx.session.policy, path)) return CONTINUE;
  }
  if (path !== '/proc' && !path.startsWith('/proc/')) return CONTINUE;
  if ((call.flags & WRITING) !== 0 || (call.flags & ~(ON_BEHALF | O_LARGEFILE)) !== 0) {
    return CONTINUE; // never on behalf; Landlock checks the real open
  }
  if (call.resolve !== 0) return CONTINUE; // the caller's own openat2 restrictions: the kernel's
  // SECCOMP_IOCTL_NOTIF_ADDFD cannot pass an O_PATH file: the kernel takes
  // the source with fget(), which skips FMODE_PATH files (EBADF; see
  // seccomp_notify_addfd() in kernel/seccomp.c and __fget() in fs/file.c).
  // An O_PATH descriptor reads nothing; opens through it come back here.
  if ((call.flags & O.O_PATH) !== 0) return CONTINUE;
  if (resolved.link) {
    // O_NOFOLLOW on a symlink: ELOOP (open(2)); O_PATH|O_NOFOLLOW opens the
    // link itself, which for /proc/self would be the supervisor's.
    return (call.flags & O.O_PATH) !== 0 ? CONTINUE : errnoAnswer('ELOOP');
  }
  // fsDeny beneath /proc (say /proc/sys): Landlock refuses it, so must we.
  if (!policyReads(ctx.session.policy, path)) return CONTINUE;
  const credentials = callerCredentials();
  if (credentials === null || !sameIds(credentials, state.credentials)) return CONTINUE;
  const parts = components(path);
  if (parts.length >= 3 && /^\d+$/.test(parts[1]!) && ATTACH_FILES.has(parts.at(-1)!)) {
    const target = insideTgid(Number(parts[1]));
    if (target !== credentials.tgid) return CONTINUE;
  }
  const flags =
    (call.flags & ON_BEHALF) |
    O.O_CLOEXEC |
    (trailingSlash && path !== '/proc' ? O.O_DIRECTORY : 0);
  // From the pinned /proc/<pid> when the path is beneath the pid it pinned.
  const pinned = pin.fd >= 0 && parts[1] === String(pin.pid);
  const rest = pinned ? parts.slice(2) : parts.slice(1);
  const relative = rest.length === 0 ? '.' : rest.join('/');
  const how = encodeOpenHow({ flags: BigInt(flags), resolve: BigInt(RESOLVE) });
  const from = pinned ? pin.fd : state.procFd;
  const fd = withCallerCapabilities(state.capabilities, credentials.capEff, () =>
    trySyscall('openat2', from, cPath(relative), how, how.length),
  );
  // ELOOP: a magic link after all; EXDEV: another mount beneath /proc
  // (binfmt_misc): the kernel opens it, Landlock checks.
  if (fd === -ELOOP || fd === -EXDEV) return CONTINUE;
  if (fd < 0) return { kind: 'errno', errno: -fd };
  return injectAnswer(fd, (call.flags & O.O_CLOEXEC) !== 0);
}

/** The thread group of a pid (a thread's leader), or the pid itself. */
function insideTgid(pid: number): number {
  const status = readProcFile(`/proc/${pid}/status`);
  const match = status === null ? null : /^Tgid:\s*(\d+)/m.exec(status);
  return match ? Number(match[1]) : pid;
}

const cache = new ListingCache();
const NUMERIC_NAME = /^\d+$/;

/**
 * Whether another module of this package serves a read-only open of `path`
 * for this policy: left to it. The proc-host module is on exactly when this
 * one is (procReadable) and comes right after it: /proc/loadavg and the
 * mount tables of the sandbox's processes (pids already checked above).
 */
function servedByOthers(policy: ProcfsPolicy | undefined, path: string): boolean {
  if (hostFileOf(path) !== null || madeUpProcFiles(policy).includes(path)) return true;
  return hostnameOf(policy) !== null && path === '/proc/sys/kernel/hostname';
}

/** getdents64 / getdents of the /proc root: the real entries minus the processes outside. */
function onGetdents(ctx: HandlerContext<ProcfsPolicy>): PlainAnswer {
  const state = setUp();
  const fd = Number(BigInt.asIntN(32, ctx.args[0] ?? 0n));
  // A bad fd: getFd throws CallError(EBADF), the kernel's answer.
  const dup = ctx.getFd(fd);
  try {
    const stat = fstatSync(dup, { bigint: true });
    if (stat.dev !== BigInt(state.procDev) || stat.ino !== BigInt(state.procIno)) return CONTINUE;
    if (ListingCache.readableFlags(dup) === null) return CONTINUE; // O_PATH: the kernel's EBADF
    const reaper = ctx.session.reaperPid;
    const sorted = deterministicDirsOf(ctx.session.policy);
    return cache.serve(
      ctx,
      { fd, dup, stat },
      (entries: DirEntry[]) => {
        const memo = new Map<number, boolean>();
        const kept = entries.filter(
          (entry) =>
            !NUMERIC_NAME.test(entry.name.toString('latin1')) ||
            insideSandbox(Number(entry.name.toString('latin1')), reaper, memo) === true,
        );
        return sorted ? sortEntries(kept) : kept;
      },
      true, // it hides entries: the kernel never lists /proc for the sandbox
    );
  } finally {
    close(dup);
  }
}

/**
 * On for a sandbox whose policy lets it read /proc (`procReadable`): the
 * processes outside the sandbox are hidden from its /proc, and the host's
 * most sensitive files refused. Runs before the other modules of this
 * package (it answers the opens of /proc/<pid> and the /proc listing).
 */
const procPidsModule: DispatchModule<unknown, ProcfsPolicy> = {
  name: 'proc-pids',
  syscalls: PROC_PIDS_SYSCALLS,
  enabled: (policy) => procReadable(policy),
  handlers: {
    ...Object.fromEntries(OPEN_SYSCALLS.map((name) => [name, onOpen])),
    ...Object.fromEntries(LISTING_SYSCALLS.map((name) => [name, onGetdents])),
  },
  sessionEnd(session: WorkerSession<ProcfsPolicy>) {
    cache.forgetSession(session.id);
  },
};

export default procPidsModule;
