import { readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import {
  type Arch,
  AT_FDCWD,
  argumentIndex,
  argumentLayout,
  type CallerIds,
  close,
  convertArg,
  ERRNO,
  forgetProcessMemory,
  hostArch,
  ioctlBuffer,
  isDescendantOf,
  type KnownSyscall,
  namedArgs,
  openFlags,
  PATH_MAX,
  PIDFD_THREAD,
  readCStringBytes,
  readMemory,
  remoteAccess,
  SECCOMP_ADDFD_FLAG_SEND,
  SECCOMP_ADDFD_FLAG_SETFD,
  SECCOMP_IOCTL_NOTIF_ADDFD,
  SECCOMP_IOCTL_NOTIF_ID_VALID,
  SIGKILL,
  type SyscallArg,
  type SyscallArgs,
  SysError,
  setCallerIds,
  syscallAsync,
  trySyscall,
  type Walked,
  walkPath,
  writeMemory,
} from '@sandlock/sys';

/**
 * The ids a sandbox that runs as another user than its supervisor is judged
 * by (the policy view's callerIds, set by sandlock for SpawnOptions.user).
 */
function callerIdsOf(policy: unknown): CallerIds | undefined {
  return (policy as { callerIds?: CallerIds } | null)?.callerIds;
}

import { CallError } from './call-error.js';
import { threadGroupOf } from './proc-status.js';
import type { Refusal } from './refusal.js';
import type { SessionInfo, WorkerSession } from './session-view.js';

/** One intercepted syscall, as the kernel reported it (a copy: safe to keep). */
export interface Notification {
  /** The kernel's cookie; valid only while the call is pending. */
  readonly id: bigint;
  /** Thread id of the caller (a TID, not always a process id). */
  readonly pid: number;
  readonly flags: number;
  readonly nr: number;
  /** AUDIT_ARCH_* of the call. */
  readonly arch: number;
  readonly instructionPointer: bigint;
  /** The six raw argument registers. */
  readonly args: readonly bigint[];
}

/** The notification was withdrawn (its task died): nothing is left to answer. */
export class NotificationGone extends Error {
  override readonly name = 'NotificationGone';
}

const { EFAULT, EBADF, EINVAL, ENOENT, ESRCH, ENAMETOOLONG, EINTR } = ERRNO;

/** What every handler gets: the call, and safe ways to look at the caller. */
export interface CallContext<P = unknown> {
  readonly id: bigint;
  /** Thread id of the caller. */
  readonly pid: number;
  readonly nr: number;
  /** The syscall's name on `arch`. */
  readonly syscall: string;
  readonly arch: Arch;
  readonly instructionPointer: bigint;
  /** The six raw argument registers (32-bit arguments may carry garbage above bit 31). */
  readonly args: readonly bigint[];
  readonly session: SessionInfo<P>;
  /** A copy of the notification, e.g. to pass in a deferred payload. */
  notification(): Notification;
  /** The arguments by name, typed (throws if this call is not `syscall`). */
  argsOf<S extends KnownSyscall>(syscall: S): SyscallArgs<S>;
  /** Argument `name` of this syscall, converted as the kernel reads it. */
  arg(name: string): number | bigint;
  /** SECCOMP_IOCTL_NOTIF_ID_VALID: whether the caller still waits for this answer. */
  valid(): boolean;
  /** Copies `length` bytes of the caller's memory (checked with ID_VALID after reading). */
  read(address: bigint, length: number): Buffer;
  /** Copies a NUL-terminated string (UTF-8) of the caller's memory. */
  readString(address: bigint, maxLength?: number): string;
  /** Writes into the caller's memory (ID_VALID checked before). */
  write(address: bigint, data: Buffer): void;
  /** A copy of the path argument `pathArg` (default `pathname`), as the caller passed it. */
  readPath(pathArg?: string): string;
  /**
   * The path argument made absolute against its directory fd (`dirfdArg`,
   * default `dirfd`; AT_FDCWD or no dirfd: the caller's cwd), through
   * /proc/<tid>/fd/<n> and /proc/<tid>/cwd. `.` and `..` are resolved
   * lexically: this names the file for a log or a decision on a copy, it
   * does not prove what the kernel would open.
   */
  resolvePath(pathArg?: string, dirfdArg?: string): string;
  /** A duplicate of the caller's descriptor `childFd` (pidfd_getfd); the handler owns it. */
  getFd(childFd: number): number;
  /**
   * The directory a relative path of the caller starts in: its cwd for
   * AT_FDCWD (opened O_PATH through /proc/<tid>/cwd), else a duplicate of
   * `dirfd`. The handler closes it. Throws a {@link CallError} (EBADF) for a
   * dirfd that is not open.
   */
  openStart(dirfd: number): number;
  /**
   * Resolves `path` (the caller's bytes) as the kernel would for the caller:
   * from its root when absolute, else from its cwd or `dirfd`, one component
   * at a time with the kernel doing each lookup, /proc/self and
   * /proc/thread-self naming the caller (walkPath of @sandlock/sys). The
   * handler closes the result. Throws a {@link CallError} (EBADF) for a dirfd
   * that is not open.
   */
  walk(path: Buffer, options: CallerWalkOptions): Walked;
  /**
   * Runs `syscall(dup, ...rest)` on a duplicate of the caller's `childFd`
   * and closes the duplicate: the result, or -errno. Blocks the thread it
   * runs on, so only for quick calls in the worker.
   */
  onBehalf(childFd: number, syscall: string, ...rest: SyscallArg[]): number;
  /**
   * Installs a descriptor in the caller now (ADDFD without SEND) and returns
   * its number there; the handler still answers the syscall afterwards.
   * Throws a {@link CallError} with the kernel's errno on failure.
   */
  addFd(fd: number, options?: { targetFd?: number; cloexec?: boolean }): number;
  /**
   * Reports that this call is refused by a rule (the handler still answers
   * it): a `'refusal'` of the session, with the module, the syscall and the
   * caller. Nothing is done unless someone listens for the session's
   * refusals; `what` may be a function, called only then.
   */
  refused(refusal: Refusal): void;
}

export interface CallerWalkOptions {
  /** The caller's dirfd argument (AT_FDCWD for its cwd). */
  readonly dirfd: number;
  /** Follow a symlink in the last component (the call has no O_NOFOLLOW / AT_SYMLINK_NOFOLLOW). */
  readonly followLast: boolean;
  /** Shown each /proc/<pid> directory the walk enters: false hides it (ENOENT). */
  readonly enterPid?: (pid: number, fd: number) => boolean;
  /**
   * Whether a magic link beneath /proc/<pid> may be followed (default: only
   * the sandbox's own processes', as Landlock lets the caller ptrace only
   * processes of its domain).
   */
  readonly followMagic?: (pid: number | null) => boolean;
  /** openat2's RESOLVE_IN_ROOT: the dirfd (or cwd) is the root, for `/`, `..` and absolute symlinks. */
  readonly inRoot?: boolean;
  /** The caller's thread group, if the handler knows it (default: read from /proc/<tid>/status when needed). */
  readonly tgid?: () => number;
  /**
   * Runs the lookups (`walk`) with the caller's credentials, e.g. through
   * withCallerCapabilities of @sandlock/sys; its root, cwd and dirfd are
   * opened before, with the supervisor's (pidfd_getfd's ptrace check uses
   * real ids: kernel/ptrace.c, PTRACE_MODE_REALCREDS).
   */
  readonly asCaller?: (walk: () => Walked) => Walked;
}

/** The context of a worker-thread handler. Valid only until the handler returns. */
export interface HandlerContext<P = unknown> extends CallContext<P> {
  readonly session: WorkerSession<P>;
}

/** The context of a deferred (main-thread) handler. */
export interface DeferredContext<P = unknown> extends CallContext<P> {
  /** What the worker handler passed to `answer.defer(payload)`. */
  readonly payload: unknown;
  /** {@link CallContext.onBehalf} on a thread of libuv's pool, for calls that may block. */
  onBehalfAsync(childFd: number, syscall: string, ...rest: SyscallArg[]): Promise<number>;
}

/**
 * The implementation of both contexts. The worker keeps one instance and
 * re-points it at each notification; the main thread makes one per deferred
 * call.
 */
export class Call implements HandlerContext, DeferredContext {
  /** Listener fd of the session. */
  fd = -1;
  /** 8 bytes (or more) starting with the notification id, for ID_VALID. */
  idBuffer: Buffer = Buffer.alloc(8);
  pid = 0;
  nr = 0;
  syscall = '';
  arch: Arch;
  auditArch = 0;
  flags = 0;
  session!: WorkerSession;
  payload: unknown = undefined;
  /** Where {@link refused} goes: null while nobody listens for the session's refusals. */
  reporter: ((refusal: Refusal, call: Call) => void) | null = null;
  /** The module whose handler runs (for {@link refused}). */
  module = '';
  private cachedId: bigint | undefined;
  private cachedIp: bigint | undefined;
  private cachedArgs: bigint[] | undefined;
  /** Where `id`, `instructionPointer` and `args` are decoded from when not cached. */
  private source: Buffer | undefined;

  constructor(arch: Arch) {
    this.arch = arch;
  }

  /** Points the context at a received `struct seccomp_notif` (worker). */
  loadFromBuffer(notif: Buffer, fd: number, session: WorkerSession, syscall: string): void {
    forgetProcessMemory();
    setCallerIds(callerIdsOf(session.policy));
    this.fd = fd;
    this.idBuffer = notif;
    this.source = notif;
    this.cachedId = undefined;
    this.cachedIp = undefined;
    this.cachedArgs = undefined;
    this.pid = notif.readUInt32LE(8);
    this.flags = notif.readUInt32LE(12);
    this.nr = notif.readInt32LE(16);
    this.auditArch = notif.readUInt32LE(20);
    this.syscall = syscall;
    this.session = session;
    this.payload = undefined;
  }

  /** Points the context at a copied notification (main thread). */
  loadFromNotification(
    notification: Notification,
    fd: number,
    session: SessionInfo,
    syscall: string,
    payload: unknown,
  ): void {
    forgetProcessMemory();
    setCallerIds(callerIdsOf(session.policy));
    this.fd = fd;
    this.idBuffer = Buffer.alloc(8);
    this.idBuffer.writeBigUInt64LE(notification.id);
    this.source = undefined;
    this.cachedId = notification.id;
    this.cachedIp = notification.instructionPointer;
    this.cachedArgs = [...notification.args];
    this.pid = notification.pid;
    this.flags = notification.flags;
    this.nr = notification.nr;
    this.auditArch = notification.arch;
    this.syscall = syscall;
    this.session = session as WorkerSession;
    this.payload = payload;
  }

  get id(): bigint {
    this.cachedId ??= this.source!.readBigUInt64LE(0);
    return this.cachedId;
  }

  get instructionPointer(): bigint {
    this.cachedIp ??= this.source!.readBigUInt64LE(24);
    return this.cachedIp;
  }

  get args(): readonly bigint[] {
    if (this.cachedArgs === undefined) {
      const source = this.source!;
      this.cachedArgs = [0, 1, 2, 3, 4, 5].map((index) => source.readBigUInt64LE(32 + index * 8));
    }
    return this.cachedArgs;
  }

  notification(): Notification {
    return {
      id: this.id,
      pid: this.pid,
      flags: this.flags,
      nr: this.nr,
      arch: this.auditArch,
      instructionPointer: this.instructionPointer,
      args: [...this.args],
    };
  }

  argsOf<S extends KnownSyscall>(syscall: S): SyscallArgs<S> {
    if (syscall !== this.syscall) {
      throw new TypeError(`sandlock: argsOf('${syscall}') on a '${this.syscall}' call`);
    }
    return namedArgs(syscall, this.arch, this.args) as unknown as SyscallArgs<S>;
  }

  arg(name: string): number | bigint {
    const layout = argumentLayout(this.syscall, this.arch);
    const index = layout?.findIndex(([argName]) => argName === name) ?? -1;
    if (layout === undefined || index < 0) {
      throw new TypeError(`sandlock: '${this.syscall}' has no argument named '${name}'`);
    }
    return convertArg(this.args[index]!, layout[index]![1]);
  }

  valid(): boolean {
    return ioctlBuffer(this.fd, SECCOMP_IOCTL_NOTIF_ID_VALID, this.idBuffer) === 0;
  }

  /** Throws {@link NotificationGone} unless the caller still waits. */
  ensureValid(): void {
    if (!this.valid()) throw new NotificationGone(`notification of ${this.syscall} withdrawn`);
  }

  /** Copies from the caller's memory, then checks the notification is still valid. */
  private copied<T>(copy: () => T): T {
    let data: T;
    try {
      data = copy();
    } catch (error) {
      this.ensureValid();
      throw toCallError(error);
    }
    // After the copy: had the caller died and its pid been reused while we
    // read, the id would no longer be valid and the bytes not be its own.
    this.ensureValid();
    return data;
  }

  read(address: bigint, length: number): Buffer {
    return this.copied(() => readMemory(this.pid, address, length));
  }

  readString(address: bigint, maxLength = PATH_MAX): string {
    return this.copied(() => readCStringBytes(this.pid, address, maxLength)).toString('utf8');
  }

  write(address: bigint, data: Buffer): void {
    this.ensureValid();
    try {
      writeMemory(this.pid, address, data);
    } catch (error) {
      this.ensureValid();
      throw toCallError(error);
    }
  }

  private argIndex(name: string): number {
    const index = argumentIndex(this.syscall, this.arch, name);
    if (index < 0) {
      throw new TypeError(`sandlock: '${this.syscall}' has no argument named '${name}'`);
    }
    return index;
  }

  readPath(pathArg = 'pathname'): string {
    return this.readString(this.args[this.argIndex(pathArg)]!, PATH_MAX);
  }

  resolvePath(pathArg = 'pathname', dirfdArg = 'dirfd'): string {
    const path = this.readPath(pathArg);
    if (path.startsWith('/')) return posix.resolve(path);
    const dirIndex = argumentIndex(this.syscall, this.arch, dirfdArg);
    const dirfd = dirIndex < 0 ? AT_FDCWD : Number(BigInt.asIntN(32, this.args[dirIndex]!));
    const link = dirfd === AT_FDCWD ? `/proc/${this.pid}/cwd` : `/proc/${this.pid}/fd/${dirfd}`;
    let base: string;
    try {
      base = readlinkSync(link);
    } catch {
      this.ensureValid();
      throw new CallError(EBADF, `${this.syscall}: dirfd ${dirfd} is not open`);
    }
    this.ensureValid();
    return path === '' ? base : posix.resolve(base, path);
  }

  private openCallerPidfd(): number {
    let pidfd = trySyscall('pidfd_open', this.pid, PIDFD_THREAD);
    if (pidfd === -EINVAL) {
      // Before Linux 6.9 a pidfd names a thread-group leader only.
      pidfd = trySyscall('pidfd_open', threadGroupOf(this.pid), 0);
    }
    if (pidfd < 0) {
      this.ensureValid();
      throw new CallError(ESRCH, `pidfd_open(${this.pid}) failed: errno ${-pidfd}`);
    }
    // The pidfd pins a task; the id check says it is the caller and not a
    // process that got its pid after it died.
    try {
      this.ensureValid();
    } catch (error) {
      close(pidfd);
      throw error;
    }
    return pidfd;
  }

  /**
   * SIGKILL for the caller, if it still waits for this call: what a kill
   * answer falls back to when the reaper cannot be signalled. Whether sent.
   */
  killCaller(): boolean {
    let pidfd: number;
    try {
      pidfd = this.openCallerPidfd();
    } catch {
      return false;
    }
    try {
      return trySyscall('pidfd_send_signal', pidfd, SIGKILL, 0, 0) >= 0;
    } finally {
      close(pidfd);
    }
  }

  getFd(childFd: number): number {
    const pidfd = this.openCallerPidfd();
    try {
      const fd = trySyscall('pidfd_getfd', pidfd, childFd, 0);
      if (fd < 0) throw new CallError(-fd, `pidfd_getfd(${childFd}) failed`);
      return fd;
    } finally {
      close(pidfd);
    }
  }

  /**
   * The caller's cwd or root (`/proc/<tid>/cwd`, `/root`), or the file behind
   * one of its descriptors (`fd/N`), opened O_PATH; the handler owns it.
   */
  private openOwn(what: 'cwd' | 'root' | `fd/${number}`): number {
    const fd = trySyscall(
      'openat',
      AT_FDCWD,
      Buffer.from(`/proc/${this.pid}/${what}\0`),
      O_PATH | O_CLOEXEC,
      0,
    );
    if (fd < 0) {
      this.ensureValid();
      if (what.startsWith('fd/') && -fd === ENOENT) {
        throw new CallError(EBADF, `${this.syscall}: dirfd ${what.slice(3)} is not open`);
      }
      throw new CallError(
        -fd === ENOENT ? ESRCH : -fd,
        `open /proc/${this.pid}/${what}: errno ${-fd}`,
      );
    }
    // It was the caller's, not a process that got its tid since.
    try {
      this.ensureValid();
    } catch (error) {
      close(fd);
      throw error;
    }
    return fd;
  }

  openStart(dirfd: number): number {
    if (dirfd === AT_FDCWD) return this.openOwn('cwd');
    // Where pidfd_getfd is refused (a container's default seccomp profile),
    // the file behind the descriptor, opened anew through the caller's
    // /proc/<tid>/fd/N (the kernel's ptrace-mode check): a new open file
    // description of the same file, which is all a lookup starting there
    // uses (its mount and dentry).
    if (!remoteAccess().pidfdGetfd) {
      if (dirfd < 0) throw new CallError(EBADF, `${this.syscall}: dirfd ${dirfd} is not open`);
      return this.openOwn(`fd/${dirfd}`);
    }
    return this.getFd(dirfd);
  }

  walk(path: Buffer, options: CallerWalkOptions): Walked {
    const from = () => this.openStart(options.dirfd);
    const root = options.inRoot ? from() : this.openOwn('root');
    let start = root;
    try {
      const absolute = path.length > 0 && path[0] === 0x2f;
      if (!absolute && !options.inRoot) start = from();
      let tgid: number | undefined;
      const tid = this.pid;
      const walk = () =>
        walkPath({
          root,
          start,
          path,
          followLast: options.followLast,
          tid,
          tgid:
            options.tgid ??
            (() => {
              tgid ??= threadGroupOf(tid);
              return tgid;
            }),
          enterPid: options.enterPid,
          followMagic:
            options.followMagic ??
            ((pid) => pid !== null && (pid === tid || isDescendantOf(pid, this.session.reaperPid))),
        });
      return options.asCaller === undefined ? walk() : options.asCaller(walk);
    } finally {
      if (start !== root) close(start);
      close(root);
    }
  }

  /** A duplicate of the caller's fd, or -errno when it cannot be had (EBADF…). */
  private duplicateOrErrno(childFd: number): number {
    try {
      return this.getFd(childFd);
    } catch (error) {
      if (error instanceof CallError) return -error.errno;
      throw error;
    }
  }

  onBehalf(childFd: number, syscall: string, ...rest: SyscallArg[]): number {
    const fd = this.duplicateOrErrno(childFd);
    if (fd < 0) return fd;
    try {
      return trySyscall(syscall, fd, ...rest);
    } finally {
      close(fd);
    }
  }

  async onBehalfAsync(childFd: number, syscall: string, ...rest: SyscallArg[]): Promise<number> {
    const fd = this.duplicateOrErrno(childFd);
    if (fd < 0) return fd;
    try {
      return await syscallAsync(syscall, fd, ...rest);
    } finally {
      close(fd);
    }
  }

  refused(refusal: Refusal): void {
    this.reporter?.(refusal, this);
  }

  addFd(fd: number, options: { targetFd?: number; cloexec?: boolean } = {}): number {
    const result = addFd(this.fd, this.id, fd, {
      targetFd: options.targetFd ?? null,
      cloexec: options.cloexec ?? false,
    });
    if (result < 0) throw new CallError(-result, `SECCOMP_IOCTL_NOTIF_ADDFD failed`);
    return result;
  }
}

const { O_CLOEXEC, O_PATH } = openFlags(hostArch());

/**
 * SECCOMP_IOCTL_NOTIF_ADDFD without SECCOMP_ADDFD_FLAG_SEND: the child's new
 * fd number, or -errno; the call stays unanswered (see Responder.inject for
 * why the one-step SEND flag is never used). An EINTR means the request was
 * withdrawn before the child installed anything (seccomp_notify_addfd() in
 * kernel/seccomp.c): it is made again.
 */
export function addFd(
  listener: number,
  id: bigint,
  fd: number,
  options: { targetFd: number | null; cloexec: boolean; send?: boolean },
): number {
  const request = Buffer.alloc(24);
  request.writeBigUInt64LE(id, 0);
  const flags =
    (options.targetFd !== null ? SECCOMP_ADDFD_FLAG_SETFD : 0) |
    (options.send === true ? SECCOMP_ADDFD_FLAG_SEND : 0);
  request.writeUInt32LE(flags, 8);
  request.writeUInt32LE(fd, 12);
  request.writeUInt32LE(options.targetFd ?? 0, 16);
  request.writeUInt32LE(options.cloexec ? O_CLOEXEC : 0, 20);
  let result: number;
  do {
    result = ioctlBuffer(listener, SECCOMP_IOCTL_NOTIF_ADDFD, request);
  } while (result === -EINTR);
  return result;
}

function toCallError(error: unknown): unknown {
  if (error instanceof SysError) {
    const errno = error.errno === ENAMETOOLONG ? ENAMETOOLONG : EFAULT;
    return new CallError(errno, error.message);
  }
  return error;
}

export { threadGroupOf, threadGroupOrNull } from './proc-status.js';
