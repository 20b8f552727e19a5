// Processes outside the sandbox are hidden from its /proc, as a handler
// module of @sandlock/dispatch: an open of /proc/<pid>/… for a pid that is
// not the sandbox's fails with ENOENT, and the /proc listing leaves those
// pids out. The supervisor imports this file in its worker threads by URL
// (PROC_PIDS_MODULE), so it has no side effects at import.
//
// Decided on copies, resolved by the kernel in the caller's view, done with
// the sandbox's authority (README of @sandlock/dispatch): the caller's path
// is copied once and walked one component at a time with the kernel doing
// each lookup (walkPath of @sandlock/sys: its /proc/self is the caller's,
// every /proc/<pid> entered is checked here); an open that ends beneath a
// process directory of the sandbox, which its Landlock domain leaves out,
// is made by the sandbox's reaper, in the policy's own domain, relative to
// the directory the walk pinned, and the descriptor injected. Another thread
// of the caller rewriting the path after the check opens nothing. Every
// other path continues: the kernel opens it, Landlock decides.
import { type BigIntStats, fstatSync, lstatSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import {
  type Answer,
  answer,
  defineModule,
  type HandlerContext,
  type WorkerSession,
} from '@sandlock/dispatch/module';
import { type ModulePolicy, policyReads } from '@sandlock/policy';
import {
  AT_FDCWD,
  bytePath,
  type CapabilitySets,
  type Credentials,
  close,
  credentialsOf,
  ERRNO,
  encodeOpenHow,
  hasSyscall,
  hostArch,
  openFlags,
  PATH_MAX,
  pathWithin,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_SYMLINKS,
  readCStringBytes,
  remoteAccess,
  SEEK_SET,
  sameIds,
  threadCapabilities,
  trySyscall,
  Walked,
  withCallerCapabilities,
} from '@sandlock/sys';
import { madeUpProcFiles } from './content.js';
import { hostFileOf } from './host-content.js';
import { type DirEntry, ListingCache, sortEntries } from './listing.js';
import { components, insideSandbox, parentIn, readProcFile } from './proc-path.js';
import {
  injectAnswer,
  isPlainRead,
  OPEN_SYSCALLS,
  shareOpenRequest,
  walkedPath,
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

/** The rule that hides processes outside the sandbox, as a refusal names it. */
const HIDDEN_RULE = 'proc-pids: processes outside the sandbox are hidden';
const SENSITIVE_RULE = 'proc-pids: host files no sandbox opens';

function sensitive(path: string): boolean {
  return SENSITIVE_PATHS.some((entry) => pathWithin(path, entry));
}

const O = openFlags(hostArch());
const OPEN_HOW_SIZE_VER0 = 24n;
/** Marks an openat2 whose struct open_how is larger than ours (not a RESOLVE_* bit). */
const EXTENDED = 0x4000_0000;
const { ELOOP } = ERRNO;
/**
 * Files of another process opened in PTRACE_MODE_ATTACH (fs/proc/base.c:
 * mem, and lock_trace() for syscall, stack, personality): Yama's
 * ptrace_scope applies to them, and the reaper, every sandbox process's
 * ancestor, would pass where the caller may not. They continue.
 */
const ATTACH_FILES: ReadonlySet<string> = new Set(['mem', 'syscall', 'stack', 'personality']);

interface Worker {
  /** The supervisor's /proc, which a listing is checked against. */
  readonly procDev: number;
  readonly procIno: number;
  /** File systems whose files are looked at closely: proc, sys, securityfs. */
  readonly watched: ReadonlySet<number>;
  /** The supervisor's credentials (status lines): the reaper's, which an on-behalf open uses. */
  readonly credentials: Credentials;
  /** This worker thread's capability sets, restored after each open made with fewer. */
  readonly capabilities: CapabilitySets;
}

let worker: Worker | null = null;

function setUp(): Worker {
  if (worker !== null) return worker;
  const proc = statSync('/proc');
  const watched = new Set<number>([proc.dev]);
  for (const path of ['/sys', '/sys/kernel/security']) {
    const stat = lstatSync(path, { throwIfNoEntry: false });
    if (stat !== undefined) watched.add(stat.dev);
  }
  const own = credentialsOf(readProcFile('/proc/self/status') ?? '');
  if (own === null) throw new Error('sandlock: cannot read the supervisor’s /proc/self/status');
  worker = {
    procDev: proc.dev,
    procIno: proc.ino,
    watched,
    credentials: own,
    capabilities: threadCapabilities(),
  };
  return worker;
}

/** Whether the sandbox may write in a directory (components): fsWrite holds it or an ancestor. */
function writable(policy: ModulePolicy, directory: readonly string[]): boolean {
  const path = `/${directory.join('/')}`;
  return policy.fsWrite.some((entry) => pathWithin(path, bytePath(entry)));
}

/** An open call's arguments, copied. */
interface OpenCall {
  readonly path: string;
  readonly dirfd: number;
  readonly flags: number;
  /** openat2's RESOLVE_* flags (0 for open and openat), and EXTENDED. */
  readonly resolve: number;
  /** The mode for O_CREAT. */
  readonly mode: number;
}

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

/** A path in this module's one-character-per-byte form, as the kernel takes it. */
function bytes(path: string): Buffer {
  return Buffer.from(path, 'latin1');
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
      mode: Number(copy.readBigUInt64LE(8) & 0xfffn),
      // A larger struct (a later kernel's fields, or E2BIG for non-zero
      // ones, openat2(2)): the kernel's to judge, as restrictions of its own.
      resolve:
        Number(copy.readBigUInt64LE(16) & 0xffffffffn) |
        (BigInt(size) > OPEN_HOW_SIZE_VER0 ? EXTENDED : 0),
    };
  }
  const dirfd = ctx.syscall === 'open' ? -100 : ctx.argsOf('openat').dirfd;
  return {
    path: readRawPath(ctx),
    dirfd,
    flags: Number(ctx.arg('flags')),
    resolve: 0,
    mode: Number(ctx.arg('mode')) & 0o7777,
  };
}

const PROBE = encodeOpenHow({
  flags: BigInt(O.O_PATH | O.O_CLOEXEC),
  resolve: BigInt(RESOLVE_NO_SYMLINKS),
});

/**
 * The fast way out, for almost every open: the kernel's own look at the
 * caller's path from where it starts, following no symlink (openat2 with
 * RESOLVE_NO_SYMLINKS, which also refuses magic links, openat2(2)). ELOOP:
 * a symlink is on the way (it may lead into /proc, whose self link would be
 * this process's): walk. Another error: the caller's open fails the same
 * way, at the same component. A descriptor on procfs, sysfs or securityfs:
 * walk; anywhere else the kernel's open of the caller's path lands on the
 * same object, whatever `..` it holds.
 */
function needsWalk(start: number, path: string, state: Worker): boolean {
  const fd = trySyscall('openat2', start, cPath(path), PROBE, PROBE.length);
  if (fd === -ELOOP) return true;
  if (fd < 0) return false;
  try {
    return state.watched.has(fstatSync(fd).dev);
  } finally {
    close(fd);
  }
}

// Absolute paths the probe found plain (no symlink, not on procfs or sysfs),
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

/** {@link needsWalk} for the caller's path: from its cwd or dirfd when relative; remembered for absolute paths the sandbox cannot change. */
function needsWalkFor(ctx: HandlerContext<ModulePolicy>, call: OpenCall, state: Worker): boolean {
  if (!call.path.startsWith('/')) {
    // From the very directory the caller's lookup starts in.
    // CallError(EBADF) for a dirfd that is not open: the kernel's answer.
    const start = ctx.openStart(call.dirfd);
    try {
      return needsWalk(start, call.path, state);
    } finally {
      close(start);
    }
  }
  const cacheable =
    !call.path.includes('/..') && !writable(ctx.session.policy, components(call.path));
  if (!cacheable) return needsWalk(AT_FDCWD, call.path, state);
  const now = Date.now();
  const seen = plainPaths.get(call.path);
  if (seen !== undefined && now - seen < PLAIN_TTL_MS) return false;
  if (needsWalk(AT_FDCWD, call.path, state)) return true;
  if (plainPaths.size >= MAX_PLAIN) plainPaths.clear();
  plainPaths.set(call.path, now);
  return false;
}

/**
 * The ids the sandbox's processes have: the supervisor's, or those it was
 * started as (the view's callerIds, sandlock's SpawnOptions.user).
 */
function sandboxIds(policy: ModulePolicy, state: Worker): Credentials {
  const ids = policy.callerIds;
  if (ids === undefined) return state.credentials;
  return {
    ...state.credentials,
    fsuid: String(ids.fsuid),
    fsgid: String(ids.fsgid),
    groups: ids.groups.join(' '),
  };
}

/** The caller's /proc/<tid>/status, read once per call when first needed: its credentials and thread group. */
class CallerStatus {
  private read = false;
  private value: Credentials | null = null;

  constructor(private readonly tid: number) {}

  get credentials(): Credentials | null {
    if (!this.read) {
      this.value = credentialsOf(readProcFile(`/proc/${this.tid}/status`) ?? '');
      this.read = true;
    }
    return this.value;
  }

  /** Its thread group, or the thread id itself when the status cannot be read. */
  tgid(): number {
    return this.credentials?.tgid ?? this.tid;
  }
}

/**
 * Whether /proc/<pid> is the sandbox's: the caller's own thread or thread
 * group, or a process whose parent chain reaches the reaper (read through the
 * directory the walk opened, when it did: a pid reused meanwhile by an
 * outside process is not the one decided on; lookups beneath a /proc/<pid>
 * descriptor fail once its process is gone, proc(5)). The reaper is not.
 */
function member(ctx: HandlerContext, pid: number, dir: number, caller: CallerStatus): boolean {
  const reaper = ctx.session.reaperPid;
  if (pid === reaper) return false;
  if (pid === ctx.pid || pid === caller.tgid()) return true;
  const parent = parentIn(dir >= 0 ? readProcFile('stat', dir) : readProcFile(`/proc/${pid}/stat`));
  if (parent === null) return false;
  if (parent === reaper) return true;
  return parent > 1 && insideSandbox(parent, reaper) === true;
}

function onOpen(ctx: HandlerContext<ModulePolicy>): Answer {
  const call = readOpenCall(ctx);
  if (call === null || !ctx.valid()) return answer.continue(); // valid: the bytes were the caller's
  if (call.path === '') return answer.continue(); // ENOENT: open(2) takes no empty path
  // The host's most sensitive files are refused by name too, whether they
  // exist or not (a refusal needs no exact resolution to be safe).
  if (call.path.startsWith('/') && sensitive(posix.normalize(call.path))) {
    ctx.refused({ what: () => `open ${printable(call.path)}`, rule: SENSITIVE_RULE });
    return answer.errno('EACCES');
  }
  const state = setUp();
  // openat2's RESOLVE_* flags change where the path starts, and a path
  // written under /proc or /sys is walked anyway: no probe for those.
  const walkAnyway = call.resolve !== 0 || /^\/(proc|sys)(\/|$)/.test(call.path);
  if (!walkAnyway && !needsWalkFor(ctx, call, state)) return answer.continue();
  const caller = new CallerStatus(ctx.pid);
  let hiddenPid = 0;
  // The walk's lookups are the caller's: a sandbox never holds capabilities
  // (the launch empties them, no_new_privs keeps them out), so neither does
  // this thread while it walks. Its root, cwd and dirfd are opened before,
  // with this thread's own: a process reaches its own whether dumpable or
  // not (ptrace_may_access(), kernel/ptrace.c), where a non-dumpable
  // caller's /proc/<pid> refuses a thread without CAP_SYS_PTRACE.
  let lowered = 0;
  const walked = ctx.walk(bytes(call.path), {
    dirfd: call.dirfd,
    followLast: (call.flags & O.O_NOFOLLOW) === 0,
    inRoot: (call.resolve & RESOLVE_IN_ROOT) !== 0,
    enterPid: (pid, dir) => {
      if (member(ctx, pid, dir, caller)) return true;
      hiddenPid = pid;
      return false;
    },
    tgid: () => caller.tgid(),
    asCaller: (walk) => {
      let done: Walked | undefined;
      let thrown: { error: unknown } | undefined;
      lowered = withCallerCapabilities(state.capabilities, 0n, () => {
        try {
          done = walk();
        } catch (error) {
          thrown = { error }; // thrown once the capabilities are back
        }
        return 0;
      });
      if (thrown !== undefined) throw thrown.error;
      return done ?? new Walked();
    },
  });
  if (lowered < 0) {
    walked.close();
    return answer.continue(); // the kernel decides, Landlock carries the check
  }
  try {
    // The caller's memory and /proc files were read: is it still the caller?
    if (!ctx.valid()) return answer.continue();
    return decide(ctx, call, walked, state, caller, hiddenPid);
  } finally {
    walked.close();
  }
}

function errnoOf(walked: Walked): Answer {
  return answer.errno(walked.errno);
}

function decide(
  ctx: HandlerContext<ModulePolicy>,
  call: OpenCall,
  walked: Walked,
  state: Worker,
  caller: CallerStatus,
  hiddenPid: number,
): Answer {
  if (walked.hidden) {
    ctx.refused({
      what: () => `open ${printable(call.path)}: process ${hiddenPid} is outside the sandbox`,
      rule: HIDDEN_RULE,
    });
    return answer.errno('ENOENT');
  }
  // Too long to walk here: the kernel's own open, which Landlock keeps out of
  // /proc's process directories.
  if (walked.gaveUp) return answer.continue();
  if (walked.errno !== 0 && walked.kind !== 'missing') {
    // The kernel fails the same way; through /proc/<pid> the answer is given
    // here (its open would meet Landlock's refusal of the process
    // directories first, and say EACCES where the kernel alone says ENOENT).
    return walked.viaProc ? answer.errno(walked.errno) : answer.continue();
  }
  const path = walkedPath(walked);
  if (path !== null && sensitive(path)) {
    ctx.refused({ what: () => `open ${printable(path)}`, rule: SENSITIVE_RULE });
    return answer.errno('EACCES');
  }
  if (path !== null && walked.errno === 0 && isPlainRead(call.flags)) {
    // The later modules (proc-host, hostname, num-cpus, meminfo) decide on this copy.
    shareOpenRequest(ctx, { path, cloexec: (call.flags & O.O_CLOEXEC) !== 0 });
    if (servedByOthers(ctx.session.policy, path)) return answer.continue();
  }
  // Not on procfs (or to be made there, O_CREAT): the kernel's own open of
  // the caller's path lands on the same object (a walk through
  // /proc/<pid>/cwd or fd/N included: Landlock checks what is opened, not
  // the way to it, and its ptrace check the magic links), and decides.
  if (!walked.inProc) return answer.continue();
  if (walked.errno !== 0) return errnoOf(walked);
  // On procfs the sandbox's domain lacks what the policy grants (its /proc
  // rule is carved around the process directories): served on its behalf.
  // SECCOMP_IOCTL_NOTIF_ADDFD cannot pass an O_PATH file: the kernel takes
  // the source with fget(), which skips FMODE_PATH files (EBADF; see
  // seccomp_notify_addfd() in kernel/seccomp.c and __fget() in fs/file.c).
  // An O_PATH descriptor reads nothing; opens through it come back here.
  if ((call.flags & O.O_PATH) !== 0) return answer.continue();
  if (call.resolve !== 0) return answer.continue(); // the caller's own openat2 restrictions: the kernel's
  // A caller under a Landlock domain of its own (a sandbox or jail made
  // inside), or a sandbox without a broker: the kernel decides, with the
  // caller's own domains, which leave /proc's process directories out.
  const onBehalf = ctx.session.onBehalf;
  if (onBehalf === null || ctx.session.narrowed(ctx.pid)) return answer.continue();
  // O_NOFOLLOW on a symlink: ELOOP (open(2)).
  if (walked.kind === 'symlink') return answer.errno('ELOOP');
  if (walked.pid !== null && ATTACH_FILES.has(walked.name)) {
    if (insideTgid(walked.pid) !== caller.tgid()) return answer.continue();
  }
  // What the policy denies beneath /proc (an fsDeny such as /proc/sys; for a
  // delegated subtree, its own policy within the outer one): the reaper's
  // domain keeps /proc whole (confine.ts), so the refusal is made here, on
  // the path of what the walk found (procfs has no renames nor links).
  if (path === null || !policyReads(ctx.session.policy, path)) {
    ctx.refused({
      what: () => `open ${printable(path ?? call.path)}`,
      rule: 'fsDeny (or not in fsRead)',
    });
    return answer.errno('EACCES');
  }
  const credentials = caller.credentials;
  if (credentials === null || !sameIds(credentials, sandboxIds(ctx.session.policy, state)))
    return answer.continue();
  // The reaper opens the last component beneath the directory the walk
  // ended in: in the sandbox's own Landlock domain, with its credentials.
  // A magic link is followed there (its object, after the kernel's
  // ptrace-mode check of the reaper); anything else is not.
  const inDirectory = walked.parent >= 0;
  const flags =
    call.flags |
    O.O_CLOEXEC |
    (walked.magic ? 0 : O.O_NOFOLLOW) |
    (/\/\.?$/.test(call.path) ? O.O_DIRECTORY : 0);
  const fd = onBehalf.openat(
    inDirectory ? walked.parent : walked.fd,
    bytes(inDirectory ? walked.name : '.'),
    flags,
    call.mode,
  );
  if (fd < 0) return answer.errno(-fd);
  return injectAnswer(fd, (call.flags & O.O_CLOEXEC) !== 0);
}

/** A path of this module's one-character-per-byte form as text for a report. */
function printable(path: string): string {
  return Buffer.from(path, 'latin1').toString('utf8');
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
function servedByOthers(policy: ModulePolicy, path: string): boolean {
  if (hostFileOf(path) !== null || madeUpProcFiles(policy).includes(path)) return true;
  return policy.hostname !== null && path === '/proc/sys/kernel/hostname';
}

/** The /proc root's listing without the processes outside, served on `call.dup`'s offset. */
function serveProcRoot(
  ctx: HandlerContext<ModulePolicy>,
  call: { fd: number; dup: number; stat: BigIntStats },
): Answer {
  const reaper = ctx.session.reaperPid;
  const sorted = ctx.session.policy.deterministicDirs;
  return cache.serve(
    ctx,
    call,
    (entries: DirEntry[]) => {
      const memo = new Map<number, boolean>();
      const kept = entries.filter(
        (entry) =>
          !NUMERIC_NAME.test(entry.name.toString('latin1')) ||
          insideSandbox(Number(entry.name.toString('latin1')), reaper, memo) === true,
      );
      const hidden = entries.length - kept.length;
      if (hidden > 0) {
        ctx.refused({
          what: `list /proc: ${hidden} process${hidden === 1 ? '' : 'es'} outside the sandbox left out`,
          rule: HIDDEN_RULE,
        });
      }
      return sorted ? sortEntries(kept) : kept;
    },
    true, // it hides entries: the kernel never lists /proc for the sandbox
  );
}

/** getdents64 / getdents of the /proc root: the real entries minus the processes outside. */
function onGetdents(ctx: HandlerContext<ModulePolicy>): Answer {
  const state = setUp();
  const fd = Number(BigInt.asIntN(32, ctx.args[0] ?? 0n));
  if (!remoteAccess().pidfdGetfd) {
    return withoutDuplicate(ctx, fd, state, (call) => serveProcRoot(ctx, call));
  }
  // A bad fd: getFd throws CallError(EBADF), the kernel's answer.
  const dup = ctx.getFd(fd);
  try {
    const stat = fstatSync(dup, { bigint: true });
    if (stat.dev !== BigInt(state.procDev) || stat.ino !== BigInt(state.procIno))
      return answer.continue();
    if (ListingCache.readableFlags(dup) === null) return answer.continue(); // O_PATH: the kernel's EBADF
    return serveProcRoot(ctx, { fd, dup, stat });
  } finally {
    close(dup);
  }
}

/**
 * getdents of the caller's fd where pidfd_getfd is refused (a container's
 * default seccomp profile). A listing is served on the caller's own open
 * file description, whose offset the module sets; without a duplicate of
 * it, the module gives the caller a new description of the same directory
 * (opened through /proc/<tid>/fd/N, at the offset fdinfo shows), installed
 * over its descriptor (SECCOMP_IOCTL_NOTIF_ADDFD with SETFD, as dup2), and
 * serves the listing on that. A description the caller shared (after fork
 * or dup) is no longer shared for this descriptor. Any other directory is
 * the kernel's, told from the file behind /proc/<tid>/fd/N; the kernel then
 * takes the descriptor again by number, as after the duplicate's check (the
 * same window: a dup2 between the two).
 */
function withoutDuplicate(
  ctx: HandlerContext<ModulePolicy>,
  fd: number,
  state: { procDev: number; procIno: number },
  serve: (call: { fd: number; dup: number; stat: BigIntStats }) => Answer,
): Answer {
  const link = `/proc/${ctx.pid}/fd/${fd}`;
  let stat: BigIntStats | undefined;
  try {
    stat = statSync(link, { bigint: true, throwIfNoEntry: false });
  } catch {
    if (!ctx.valid()) return answer.continue();
    return answer.errno(ERRNO.EACCES); // fail closed: it might be /proc
  }
  if (!ctx.valid()) return answer.continue();
  if (stat === undefined) return answer.continue(); // not open: the kernel's EBADF
  if (stat.dev !== BigInt(state.procDev) || stat.ino !== BigInt(state.procIno)) {
    return answer.continue();
  }
  const info = readProcFile(`/proc/${ctx.pid}/fdinfo/${fd}`);
  const pos = info === null ? null : /^pos:\s*(\d+)/m.exec(info);
  const flags = info === null ? null : /^flags:\s*([0-7]+)/m.exec(info);
  if (!ctx.valid()) return answer.continue();
  if (pos === null || flags === null) return answer.errno(ERRNO.EACCES);
  const mode = Number.parseInt(flags[1]!, 8);
  // O_PATH: the kernel's EBADF, without a listing.
  if ((mode & O.O_PATH) !== 0) return answer.errno(ERRNO.EBADF);
  const fresh = trySyscall(
    'openat',
    AT_FDCWD,
    Buffer.from(`${link}\0`),
    O.O_RDONLY | O.O_DIRECTORY | O.O_CLOEXEC,
    0,
  );
  if (fresh < 0) return ctx.valid() ? answer.errno(ERRNO.EACCES) : answer.continue();
  try {
    const opened = fstatSync(fresh, { bigint: true });
    if (opened.dev !== BigInt(state.procDev) || opened.ino !== BigInt(state.procIno)) {
      return answer.errno(ERRNO.EAGAIN); // changed meanwhile: the caller asks again
    }
    if (trySyscall('lseek', fresh, BigInt(pos[1]!), SEEK_SET) < 0) {
      return answer.errno(ERRNO.EINVAL);
    }
    ctx.addFd(fresh, { targetFd: fd, cloexec: (mode & O.O_CLOEXEC) !== 0 });
    return serve({ fd, dup: fresh, stat: opened });
  } finally {
    close(fresh);
  }
}

/**
 * On for a sandbox whose policy lets it read /proc (`procReadable`): the
 * processes outside the sandbox are hidden from its /proc, and the host's
 * most sensitive files refused.
 */
export default defineModule<unknown, ModulePolicy>({
  name: 'proc-pids',
  syscalls: PROC_PIDS_SYSCALLS,
  onBehalf: true,
  enabled: (policy) => policy.procReadable,
  /**
   * It hides the processes outside the sandbox before the other modules of
   * this package answer an open or a listing, and hands them its resolved
   * copy of the open's path (shareOpenRequest).
   */
  before: ['hostname', 'num-cpus', 'meminfo', 'deterministic-dirs'],
  handlers: {
    ...Object.fromEntries(OPEN_SYSCALLS.map((name) => [name, onOpen])),
    ...Object.fromEntries(LISTING_SYSCALLS.map((name) => [name, onGetdents])),
  },
  sessionEnd(session: WorkerSession<ModulePolicy>) {
    cache.forgetSession(session.id);
  },
});
