import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { defaultDenyList } from '@sandlock/seccomp';
import {
  type Arch,
  close,
  descendantsOf,
  ERRNO,
  eventfd,
  hostArch,
  ioctlInteger,
  pidfdOpen,
  SECCOMP_IOCTL_NOTIF_SET_FLAGS,
  SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
  startTimeOf,
  writeFd,
} from '@sandlock/sys';
import { type Answer, isAnswer } from './answer.js';
import { CallError } from './call-error.js';
import { Call, NotificationGone } from './context.js';
import { killFailure, signalReaper } from './kill-sandbox.js';
import { importModules, setUpModules } from './loader.js';
import { type DispatchModule, ModuleError, type ModuleRef } from './module.js';
import type { FromWorker, ToWorker, WorkerData } from './protocol.js';
import type { Refusal, RefusalReport } from './refusal.js';
import { refusalWords } from './refusal.js';
import { checkDenied, orderModules, type ResolvedModuleRef, resolveModuleRef } from './registry.js';
import { Responder } from './respond.js';
import type { SessionInfo, SessionNotice } from './session-view.js';
import { holdUndumpable, releaseUndumpable } from './undumpable.js';

const { EPERM } = ERRNO;

/** Something a handler, hook or the loop itself reported. */
export interface DispatchError {
  message: string;
  /** The module whose handler or hook failed. */
  module?: string;
  /** The syscall (or hook) it was handling. */
  syscall?: string;
  /** The session (see {@link Session.id}). */
  session?: number;
  stack?: string;
}

export interface SupervisorOptions {
  /**
   * Sandlock's own modules; their handlers come first in every chain, in the
   * order their `after` and `before` constraints make of the order given.
   */
  modules?: readonly ModuleRef[];
  /** Third-party modules, after the built-in ones, in the order given (and their constraints). */
  plugins?: readonly ModuleRef[];
  /**
   * Syscalls no module may register on (default: `defaultDenyList` of
   * @sandlock/seccomp for this architecture).
   */
  deny?: readonly string[];
  /** Most worker threads to spread sandboxes over (default: the CPU count). */
  workers?: number;
  /** Failures of handlers and hooks (default: console.warn). The call itself failed with EPERM. */
  onError?: (error: DispatchError) => void;
}

/** Which sandbox a notified-syscall set or a session is for. */
export interface SandboxContext {
  /** Passed to each module's `enabled(policy, options)`; sent to the worker (structured clone). */
  policy?: unknown;
  /** The sandbox's deny list: a module that is on may register on none of these. */
  deny?: readonly string[];
}

export interface AttachOptions extends SandboxContext {
  /** The sandbox's reaper (the stub process Node spawned). */
  reaperPid: number;
  /** The program's first process (default: the reaper). */
  programPid?: number;
  /** Track the sandbox's processes even if no module has process hooks. */
  trackProcesses?: boolean;
  /** Called when a handler killed the sandbox. */
  onKill?: (reason: string) => void;
  /**
   * Listens for the modules' refusals from the start (before the program
   * runs): the same as {@link Session.onRefusal} right after attach, with no
   * refusal missed.
   */
  onRefusal?: (refusal: RefusalReport) => void;
  /**
   * The syscalls the sandbox's filter notifies (what `notifiedSyscalls`
   * returned for it, or more). A delegated subtree may use only these.
   */
  notified?: readonly string[];
  /**
   * This process's end of the socket the sandbox's reaper serves on-behalf
   * calls on (the `brokerFd` of the launch's forkReaper step got the other
   * end). Owned from here on: closed when the session ends. Without one, the
   * modules that act on the sandbox's behalf (`actsOnBehalf`) let the kernel
   * decide instead.
   */
  broker?: number;
}

/**
 * A sandbox started inside a supervised one, whose policy that sandbox's
 * supervisor takes on: its reaper is a process of the outer sandbox; what its
 * filter notifies is the outer sandbox's.
 */
export type DelegateOptions = Omit<AttachOptions, 'notified' | 'broker'>;

/** A delegated policy needs calls the outer sandbox's filter does not notify. */
export class DelegationError extends Error {
  override readonly name = 'DelegationError';
  constructor(
    message: string,
    /** The syscalls the outer filter would have to notify. */
    readonly missing: readonly string[],
  ) {
    super(message);
  }
}

// The worker script: beside this file in dist/ (worker.js). Run from the
// TypeScript sources (vitest), the worker starts through a bootstrap that
// registers a loader for .ts files first.
function workerEntry(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('./dev/worker.mjs', here) : new URL('./worker.js', here);
}

interface PendingStart {
  resolve(): void;
  reject(error: Error): void;
}

class WorkerHandle {
  readonly worker: Worker;
  readonly wakeFd: number;
  readonly stop = new Int32Array(new SharedArrayBuffer(4));
  readonly control: MessagePort;
  readonly sessions = new Set<Session>();
  ready = false;
  exited = false;
  private dead = false;
  readonly started: Promise<void>;
  private pending: PendingStart | undefined;
  private readonly wakeValue = Buffer.alloc(8);

  constructor(
    refs: ResolvedModuleRef[],
    private readonly onMessage: (handle: WorkerHandle, message: FromWorker) => void,
    private readonly onDeath: (handle: WorkerHandle, error: Error) => void,
  ) {
    const wakeFd = eventfd();
    if (wakeFd < 0) throw new Error(`sandlock: eventfd failed: errno ${-wakeFd}`);
    this.wakeFd = wakeFd;
    this.wakeValue.writeBigUInt64LE(1n);
    const { port1, port2 } = new MessageChannel();
    this.control = port1;
    // Neither the worker nor its control port may keep this process alive
    // while no sandbox is attached (adopt/release below).
    this.control.unref();
    const workerData: WorkerData = { modules: refs, control: port2, wakeFd, stop: this.stop };
    this.worker = new Worker(workerEntry(), {
      workerData,
      transferList: [port2],
      name: 'sandlock-dispatch',
      // Tracked, a descriptor the worker's fs opened is closed again when the
      // worker exits, even once close(2) or another thread closed it and its
      // number went to someone else (Node's `trackUnmanagedFds`, default
      // true): a handler's fs.openSync descriptor answered with inject and
      // closed by the answer, then the number reused for a session's reaper
      // pidfd, would make that session's kill miss. Descriptors are owned by
      // the code that opens them here, not by the thread.
      trackUnmanagedFds: false,
    });
    this.started = new Promise<void>((resolve, reject) => {
      this.pending = { resolve, reject };
    });
    this.started.catch(() => {});
    this.worker.on('message', (message: FromWorker) => {
      if (message.type === 'ready') {
        this.ready = true;
        // Ref'd while it starts (someone awaits it); idle, it must not keep
        // the process alive. Adding the 'message' listener above ref'd it,
        // so this unref has to come after it.
        if (this.sessions.size === 0) this.worker.unref();
        this.pending?.resolve();
        this.pending = undefined;
      } else if (message.type === 'failed') {
        const error = new Error(message.message);
        error.stack = message.stack ?? error.stack;
        this.pending?.reject(error);
        this.pending = undefined;
      } else {
        this.onMessage(this, message);
      }
    });
    this.worker.on('error', (error) => this.died(error));
    this.worker.on('exit', (code) => {
      this.exited = true;
      close(this.wakeFd);
      this.died(new Error(`sandlock: the dispatch worker exited (code ${code})`));
    });
  }

  private died(error: Error): void {
    if (this.dead) return;
    this.dead = true;
    this.ready = false;
    if (this.pending) {
      this.pending.reject(error);
      this.pending = undefined;
    }
    this.onDeath(this, error);
  }

  post(message: ToWorker): void {
    this.control.postMessage(message);
    writeFd(this.wakeFd, this.wakeValue);
  }

  /** Makes the loop return at its next wake-up, and wakes it. */
  requestStop(): void {
    if (this.exited) return;
    Atomics.store(this.stop, 0, 1);
    writeFd(this.wakeFd, this.wakeValue);
  }

  adopt(session: Session): void {
    if (this.sessions.size === 0) {
      this.worker.ref();
      this.control.ref();
    }
    this.sessions.add(session);
  }

  release(session: Session): void {
    this.sessions.delete(session);
    if (this.sessions.size === 0) {
      this.worker.unref();
      this.control.unref();
    }
  }
}

/**
 * The chain order of the loaded modules: the first `builtIn` (the built-in
 * modules) ordered by their constraints, then the plugins by theirs. A
 * constraint that would put a plugin before a built-in module cannot hold.
 */
function chainOrder(modules: readonly DispatchModule[], builtIn: number): number[] {
  const builtInNames = new Set(modules.slice(0, builtIn).map((module) => module.name));
  modules.forEach((module, index) => {
    const plugin = index >= builtIn;
    const across = plugin
      ? (module.before ?? []).filter((name) => builtInNames.has(name))
      : (module.after ?? []).filter(
          (name) => !builtInNames.has(name) && modules.some((other) => other.name === name),
        );
    if (across.length > 0) {
      throw new ModuleError(
        `sandlock: module '${module.name}' must come ${plugin ? 'before' : 'after'} '${across[0]}', but plugins come after the built-in modules`,
      );
    }
  });
  return [
    ...orderModules(modules.slice(0, builtIn)),
    ...orderModules(modules.slice(builtIn)).map((index) => index + builtIn),
  ];
}

/** One supervised sandbox. */
export class Session<P = unknown> implements SessionInfo<P> {
  readonly closed: Promise<void>;
  /** Why a handler killed the sandbox, or null. */
  killReason: string | null = null;
  /** @internal */ pendingDeferred = 0;
  /** @internal */ ended = false;
  /** @internal */ finished = false;
  /**
   * Refusals the worker forwarded to this thread (a count, for tests: none
   * arrives while nobody listens).
   */
  refusalsForwarded = 0;
  private readonly refusalListeners = new Set<(refusal: RefusalReport) => void>();
  private readonly noticeListeners = new Set<(notice: SessionNotice) => void>();
  /** @internal Tells the worker to start or stop forwarding refusals. */
  reportTo: ((on: boolean) => void) | null = null;
  /** @internal The reaper's start time when its pidfd was opened (null: unread). */
  reaperStart: number | null = null;
  /** @internal Reports what went wrong to the supervisor's onError. */
  reportError: ((error: DispatchError) => void) | null = null;
  /** @internal Posts an update of policy fields to the worker. */
  updateTo: ((fields: Record<string, unknown>, seq: number) => void) | null = null;
  private nextUpdate = 1;
  private readonly updates = new Map<number, () => void>();
  private resolveClosed!: () => void;

  /** @internal */
  constructor(
    readonly id: number,
    readonly reaperPid: number,
    readonly programPid: number,
    readonly policy: P,
    /** Whether the kernel accepted SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6+). */
    readonly syncWakeUp: boolean,
    /** @internal */ readonly listenerFd: number,
    /** @internal */ readonly reaperPidfd: number,
    /** @internal */ readonly onKill: ((reason: string) => void) | undefined,
    /** @internal What the filter notifies (null: not said at attach). */
    readonly notified: ReadonlySet<string> | null = null,
    /** The session whose listener this delegated subtree's calls arrive on; null for a sandbox of its own. */
    readonly parent: Session | null = null,
    /** @internal The supervisor's end of the sandbox's broker socket, or -1. */
    readonly brokerFd = -1,
  ) {
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  /** Whether anyone listens for this session's refusals. */
  get reportsRefusals(): boolean {
    return this.refusalListeners.size > 0;
  }

  /**
   * Calls `listener` for each refusal a module reports for this sandbox
   * (and a kill by a module). The worker forwards refusals only while a
   * listener is on: none costs anything otherwise. Returns the function that
   * takes the listener off.
   */
  onRefusal(listener: (refusal: RefusalReport) => void): () => void {
    const first = this.refusalListeners.size === 0;
    this.refusalListeners.add(listener);
    if (first) this.reportTo?.(true);
    return () => {
      if (!this.refusalListeners.delete(listener)) return;
      if (this.refusalListeners.size === 0) this.reportTo?.(false);
    };
  }

  /**
   * Calls `listener` for each notice a module gives about this sandbox
   * (WorkerSession.notice: the binds module's `port`, a
   * `{ protocol, virtual, real }` bound under portRemap). Returns the
   * function that takes the listener off.
   */
  onNotice(listener: (notice: SessionNotice) => void): () => void {
    this.noticeListeners.add(listener);
    return () => this.noticeListeners.delete(listener);
  }

  /** @internal A module's notice, from the worker. */
  notice(notice: SessionNotice): void {
    for (const listener of [...this.noticeListeners]) listener(notice);
  }

  /** @internal A refusal for the listeners (from the worker, a deferred handler or a kill). */
  refusal(report: RefusalReport): void {
    for (const listener of [...this.refusalListeners]) listener(report);
  }

  /**
   * @internal A module killed the sandbox: a refusal of everything it would
   * still do. Whether the reaper got the signal ({@link Session.killed}).
   */
  killedBy(module: string, reason: string, callerWaits = false): boolean {
    const first = this.killReason === null;
    const sent = this.killed(reason, callerWaits);
    if (!first) return sent;
    this.refusal({
      what: 'the whole sandbox (killed)',
      rule: reason,
      module,
      syscall: null,
      pid: null,
      dropped: 0,
    });
    return sent;
  }

  /** @internal A deferred handler's {@link CallContext.refused}. */
  refusedBy(refusal: Refusal, call: Call): void {
    if (this.refusalListeners.size === 0) return;
    this.refusal({
      what: refusalWords(refusal),
      rule: String(refusal.rule),
      module: call.module || null,
      syscall: call.syscall || null,
      pid: call.pid || null,
      dropped: 0,
    });
  }

  /**
   * Replaces `fields` of the policy its modules see, on this thread and in
   * the worker (a running sandbox's limits changed): resolves once the
   * worker's handlers see them, or once the session has ended.
   */
  updatePolicy(fields: Record<string, unknown>): Promise<void> {
    (this as { policy: P }).policy = { ...this.policy, ...fields };
    if (this.ended || this.updateTo === null) return Promise.resolve();
    const seq = this.nextUpdate++;
    return new Promise((resolve) => {
      this.updates.set(seq, resolve);
      this.updateTo!(structuredClone(fields), seq);
    });
  }

  /** @internal The worker has an update in force (or the session ended: every update settles). */
  updated(seq: number | null): void {
    for (const [pending, resolve] of this.updates) {
      if (seq !== null && pending !== seq) continue;
      this.updates.delete(pending);
      resolve();
    }
  }

  /** Every live process of the sandbox, read from /proc now. */
  processes(): number[] {
    return descendantsOf(this.reaperPid);
  }

  /** Kills every process of the sandbox through its reaper. */
  kill(reason = 'killed by the supervisor'): void {
    if (this.finished) return;
    this.killed(reason);
  }

  /**
   * @internal Signals the reaper; what went wrong goes to onError. Whether
   * the reaper got the signal. `callerWaits`: a call still waits for its
   * answer, so a reaper that has exited is a failure too.
   */
  killed(reason: string, callerWaits = false): boolean {
    const outcome = signalReaper({
      pid: this.reaperPid,
      pidfd: this.reaperPidfd,
      start: this.reaperStart,
    });
    const failure = killFailure(outcome, reason, callerWaits);
    if (failure !== null) this.reportError?.({ session: this.id, message: failure });
    if (this.killReason === null) {
      this.killReason = reason;
      this.onKill?.(reason);
    }
    return outcome.sent;
  }

  /** @internal Closes the listener once the worker let go of it and no deferred answer is due. */
  finishIfDone(): void {
    if (this.finished || !this.ended || this.pendingDeferred > 0) return;
    this.finished = true;
    // A delegated subtree shares its parent's listener.
    if (this.parent === null) {
      close(this.listenerFd);
      releaseUndumpable();
    }
    if (this.brokerFd >= 0) close(this.brokerFd);
    close(this.reaperPidfd);
    this.resolveClosed();
  }
}

/** Read right after the reaper's pidfd is opened: what proves a later pidfd of its pid is it. */
function startTimeOrNull(pid: number): number | null {
  try {
    return startTimeOf(pid);
  } catch {
    return null;
  }
}

/**
 * The supervisor: loads handler modules, runs receive loops in worker
 * threads, and answers deferred notifications on the main thread. One per
 * process is enough; it serves any number of sandboxes.
 */
export class Supervisor {
  private readonly workers: WorkerHandle[] = [];
  private readonly sessions = new Map<number, Session>();
  private nextSession = 1;
  private closing = false;
  private syncWakeUpRefused = false;
  private readonly responder = new Responder();
  private readonly maxWorkers: number;
  private readonly onExit = () => {
    for (const handle of this.workers) handle.requestStop();
  };

  private constructor(
    private readonly refs: ResolvedModuleRef[],
    private readonly loaded: readonly DispatchModule[],
    private readonly arch: Arch,
    private readonly options: SupervisorOptions,
  ) {
    this.maxWorkers = Math.max(1, options.workers ?? availableParallelism());
    // Node waits for worker threads at exit, and a worker blocked in poll()
    // never notices on its own: wake every loop and ask it to return.
    process.on('exit', this.onExit);
  }

  /**
   * Loads the modules on this thread and in a first worker thread, and
   * checks them: {@link Supervisor.load}, then {@link Supervisor.ready}.
   */
  static async start(options: SupervisorOptions = {}): Promise<Supervisor> {
    const supervisor = await Supervisor.load(options);
    if (supervisor.loaded.length > 0) {
      try {
        await supervisor.ready();
      } catch (error) {
        await supervisor.close();
        throw error;
      }
    }
    return supervisor;
  }

  /**
   * Loads the modules on this thread only, orders them and checks them; no
   * worker thread starts until {@link Supervisor.ready}. Enough to ask which
   * syscalls a policy needs notified. Rejects with a ModuleError naming the
   * module and what is wrong (a syscall in the deny list, an unknown
   * syscall, a bad shape, `after`/`before` constraints that cannot hold).
   */
  static async load(options: SupervisorOptions = {}): Promise<Supervisor> {
    const arch = hostArch();
    const given = [...(options.modules ?? []), ...(options.plugins ?? [])];
    const resolved = given.map(resolveModuleRef);
    const imported = await importModules(
      resolved,
      arch,
      given.map((ref) => ref.load),
    );
    const order = chainOrder(imported, options.modules?.length ?? 0);
    const refs = order.map((index) => resolved[index]!);
    const loaded = order.map((index) => imported[index]!);
    setUpModules(loaded, refs, arch, 'main');
    checkDenied(loaded, options.deny ?? defaultDenyList(arch), 'the deny list');
    return new Supervisor(refs, loaded, arch, options);
  }

  /**
   * Resolves once a worker thread is ready to take sandboxes
   * ({@link Supervisor.attach}), starting the first one if none runs.
   * Rejects when the modules fail to load there.
   */
  async ready(): Promise<void> {
    if (this.closing) throw new Error('sandlock: the supervisor is closed');
    if (this.workers.some((handle) => handle.ready)) return;
    const starting = this.workers.find((handle) => !handle.exited);
    await (starting ?? this.startWorker()).started;
  }

  /** The modules, in chain order: built-in ones, then plugins. */
  get modules(): readonly { readonly name: string; readonly syscalls: readonly string[] }[] {
    return this.loaded.map(({ name, syscalls }) => ({ name, syscalls: [...syscalls] }));
  }

  private enabledFor(context: SandboxContext): number[] {
    const enabled: number[] = [];
    this.loaded.forEach((module, index) => {
      let on: boolean;
      try {
        on = module.enabled?.(context.policy, this.refs[index]!.options) ?? true;
      } catch (error) {
        throw new ModuleError(
          `sandlock: module '${module.name}': enabled() failed: ${(error as Error).message}`,
          { cause: error },
        );
      }
      if (on) enabled.push(index);
    });
    if (context.deny !== undefined) {
      checkDenied(
        enabled.map((index) => this.loaded[index]!),
        context.deny,
        "this sandbox's deny list",
      );
    }
    return enabled;
  }

  /**
   * The syscalls a sandbox with this policy must notify: the union of what
   * its enabled modules declare, sorted. Empty means no module is on: launch
   * without a listener.
   */
  notifiedSyscalls(context: SandboxContext = {}): string[] {
    const names = new Set<string>();
    const enabled = this.enabledFor(context);
    for (const index of enabled) {
      for (const syscall of this.loaded[index]!.syscalls) names.add(syscall);
    }
    // A Landlock domain made inside the sandbox must be seen before it is
    // made: what is done on the sandbox's behalf is not done for it.
    if (enabled.some((index) => this.loaded[index]!.onBehalf === true)) {
      names.add('landlock_restrict_self');
    }
    return [...names].sort();
  }

  /**
   * Which modules see each syscall a sandbox with this policy notifies: the
   * names of the enabled modules that declare it, in chain order (the order
   * their handlers run in). `landlock_restrict_self`, notified for modules
   * that act on the sandbox's behalf, lists those. Keys as
   * {@link notifiedSyscalls}, sorted.
   */
  notifyingModules(context: SandboxContext = {}): Record<string, string[]> {
    const enabled = this.enabledFor(context).map((index) => this.loaded[index]!);
    const byCall = new Map<string, string[]>();
    const note = (syscall: string, name: string) => {
      const names = byCall.get(syscall) ?? [];
      if (!names.includes(name)) names.push(name);
      byCall.set(syscall, names);
    };
    for (const module of enabled) {
      for (const syscall of module.syscalls) note(syscall, module.name);
    }
    for (const module of enabled) {
      if (module.onBehalf === true) note('landlock_restrict_self', module.name);
    }
    return Object.fromEntries([...byCall].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /**
   * The modules on for this policy whose handlers need the caller's own
   * open file descriptions (pidfd_getfd(2); `DispatchModule.takesDescriptors`),
   * by name, in chain order.
   */
  modulesTakingDescriptors(context: SandboxContext = {}): string[] {
    return this.enabledFor(context)
      .filter((index) => {
        const module = this.loaded[index]!;
        try {
          return module.takesDescriptors?.(context.policy, this.refs[index]!.options) ?? false;
        } catch (error) {
          throw new ModuleError(
            `sandlock: module '${module.name}': takesDescriptors() failed: ${(error as Error).message}`,
            { cause: error },
          );
        }
      })
      .map((index) => this.loaded[index]!.name);
  }

  /**
   * Whether a module on for this policy acts on the sandbox's behalf: the
   * sandbox's reaper should then serve as its broker (`AttachOptions.broker`).
   */
  actsOnBehalf(context: SandboxContext = {}): boolean {
    return this.enabledFor(context).some((index) => this.loaded[index]!.onBehalf === true);
  }

  /**
   * Supervises the sandbox behind `listenerFd` (this process's duplicate of
   * its seccomp listener, e.g. `launched.takeListener()`). Takes ownership of
   * the fd, also when it throws: it is closed when the session ends. Call
   * before letting the program exec; intercepted calls wait until the worker
   * answers.
   */
  attach<P = unknown>(listenerFd: number, options: AttachOptions): Session<P> {
    if (!Number.isInteger(listenerFd) || listenerFd < 0) {
      throw new TypeError(`sandlock: bad listener fd ${listenerFd}`);
    }
    let reaperPidfd = -1;
    const brokerFd = options.broker ?? -1;
    let held = false;
    try {
      if (this.closing) throw new Error('sandlock: the supervisor is closed');
      const enabled = this.enabledFor(options);
      const handle = this.pickWorker();
      reaperPidfd = pidfdOpen(options.reaperPid);
      holdUndumpable(); // released when the session finishes
      held = true;
      return this.register<P>(handle, options, enabled, {
        listenerFd,
        syncWakeUp: this.enableSyncWakeUp(listenerFd),
        reaperPidfd,
        reaperStart: startTimeOrNull(options.reaperPid),
        notified: options.notified ? new Set(options.notified) : null,
        parent: null,
        brokerFd,
      });
    } catch (error) {
      if (held) releaseUndumpable();
      if (reaperPidfd >= 0) close(reaperPidfd);
      if (brokerFd >= 0) close(brokerFd);
      close(listenerFd);
      throw error;
    }
  }

  /**
   * Takes on the policy of a sandbox started inside `parent`'s sandbox (whose
   * filter chain already has a listener, so the kernel refuses the inner
   * sandbox one of its own: EBUSY). Calls from the processes under
   * `options.reaperPid` run the chains of the modules on for
   * `options.policy` first, then `parent`'s: the inner policy adds to the
   * outer one, it never replaces it. Only the built-in modules serve a
   * delegated subtree — a plugin named by the inner sandbox would run here,
   * outside both sandboxes. Throws a {@link DelegationError} when those
   * modules need calls `parent`'s filter does not notify (see
   * `AttachOptions.notified`).
   */
  delegate<P = unknown>(parent: Session, options: DelegateOptions): Session<P> {
    if (this.closing) throw new Error('sandlock: the supervisor is closed');
    if (parent.ended || this.sessions.get(parent.id) !== parent) {
      throw new Error('sandlock: the outer sandbox has ended');
    }
    const builtIn = this.options.modules?.length ?? 0;
    const enabled = this.enabledFor(options).filter((index) => index < builtIn);
    const needed = new Set(enabled.flatMap((index) => this.loaded[index]!.syscalls));
    let root = parent;
    while (root.parent !== null) root = root.parent;
    const notified = root.notified;
    const missing = [...needed].filter((name) => notified !== null && !notified.has(name)).sort();
    if (notified === null || missing.length > 0) {
      const names = enabled
        .filter((index) => this.loaded[index]!.syscalls.some((name) => missing.includes(name)))
        .map((index) => this.loaded[index]!.name);
      throw new DelegationError(
        notified === null
          ? 'sandlock: the outer sandbox did not say which calls its filter notifies'
          : `sandlock: the outer sandbox's filter does not notify ${missing.join(', ')}, which ${names.join(', ')} ${names.length === 1 ? 'needs' : 'need'}`,
        missing,
      );
    }
    const handle = this.workers.find((worker) => worker.sessions.has(root));
    if (handle === undefined) throw new Error('sandlock: the outer sandbox has no worker');
    return this.register<P>(handle, options, enabled, {
      listenerFd: parent.listenerFd,
      syncWakeUp: parent.syncWakeUp,
      reaperPidfd: pidfdOpen(options.reaperPid),
      reaperStart: startTimeOrNull(options.reaperPid),
      notified: root.notified,
      parent,
      brokerFd: -1,
    });
  }

  /** Makes the session, hands it to its worker's loop, and keeps it. */
  private register<P>(
    handle: WorkerHandle,
    options: DelegateOptions,
    enabled: number[],
    link: {
      listenerFd: number;
      syncWakeUp: boolean;
      reaperPidfd: number;
      reaperStart: number | null;
      notified: ReadonlySet<string> | null;
      parent: Session | null;
      brokerFd: number;
    },
  ): Session<P> {
    const session = new Session<P>(
      this.nextSession++,
      options.reaperPid,
      options.programPid ?? options.reaperPid,
      options.policy as P,
      link.syncWakeUp,
      link.listenerFd,
      link.reaperPidfd,
      options.onKill,
      link.notified,
      link.parent,
      link.brokerFd,
    );
    if (options.onRefusal !== undefined) session.onRefusal(options.onRefusal);
    const common = {
      report: session.reportsRefusals,
      session: session.id,
      reaperPid: options.reaperPid,
      reaperPidfd: link.reaperPidfd,
      reaperStart: link.reaperStart,
      programPid: session.programPid,
      policy: options.policy,
      enabled,
      track: options.trackProcesses ?? false,
    };
    handle.post(
      link.parent === null
        ? { type: 'attach', listenerFd: link.listenerFd, brokerFd: link.brokerFd, ...common }
        : { type: 'delegate', parent: link.parent.id, ...common },
    );
    session.reportTo = (on) => {
      if (!session.ended) handle.post({ type: 'report', session: session.id, on });
    };
    session.reaperStart = link.reaperStart;
    session.reportError = (error) => this.report(error);
    session.updateTo = (fields, seq) =>
      handle.post({ type: 'update', session: session.id, seq, fields });
    this.sessions.set(session.id, session as Session);
    handle.adopt(session as Session);
    return session;
  }

  /**
   * SECCOMP_IOCTL_NOTIF_SET_FLAGS with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
   * BY VALUE: the kernel takes the flag from the argument itself
   * (kernel/seccomp.c, seccomp_notify_set_flags); a pointer is EINVAL. The
   * caller's CPU then runs the loop, about 5x faster per call here. Linux
   * before 6.6 refuses it: the loop works on, slower, and says so once.
   */
  private enableSyncWakeUp(listenerFd: number): boolean {
    const result = ioctlInteger(
      listenerFd,
      SECCOMP_IOCTL_NOTIF_SET_FLAGS,
      SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
    );
    if (result === 0) return true;
    if (!this.syncWakeUpRefused) {
      this.syncWakeUpRefused = true;
      this.report({
        message: `the kernel refused SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (errno ${-result}): intercepted calls will be slower`,
      });
    }
    return false;
  }

  private startWorker(): WorkerHandle {
    const handle = new WorkerHandle(
      this.refs,
      (from, message) => this.onMessage(from, message),
      (from, error) => this.onWorkerDeath(from, error),
    );
    this.workers.push(handle);
    return handle;
  }

  /**
   * The ready worker with the fewest sandboxes. Sandboxes spread over up to
   * `workers` threads: one loop serves one CPU's worth of notifications.
   * A new worker starts in the background when every ready one is busy.
   */
  private pickWorker(): WorkerHandle {
    const ready = this.workers.filter((handle) => handle.ready);
    if (ready.length === 0) {
      throw new Error(
        this.loaded.length === 0
          ? 'sandlock: the supervisor has no modules: launch without a listener'
          : 'sandlock: no dispatch worker is running (await supervisor.ready() before attach)',
      );
    }
    ready.sort((a, b) => a.sessions.size - b.sessions.size);
    const best = ready[0]!;
    const starting = this.workers.some((handle) => !handle.ready && !handle.exited);
    if (best.sessions.size > 0 && this.workers.length < this.maxWorkers && !starting) {
      this.startWorker().started.catch((error: Error) => this.report({ message: error.message }));
    }
    return best;
  }

  private report(error: DispatchError): void {
    if (this.options.onError) this.options.onError(error);
    else {
      const where = [error.module && `module '${error.module}'`, error.syscall]
        .filter(Boolean)
        .join(' ');
      console.warn(`sandlock: dispatch${where ? ` (${where})` : ''}: ${error.message}`);
    }
  }

  private onMessage(handle: WorkerHandle, message: FromWorker): void {
    switch (message.type) {
      case 'defer': {
        const session = this.sessions.get(message.session);
        if (session) void this.runDeferred(session, message);
        return;
      }
      case 'kill': {
        const session = this.sessions.get(message.session);
        if (message.module === undefined) session?.killed(message.reason);
        else session?.killedBy(message.module, message.reason);
        return;
      }
      case 'refusal': {
        const session = this.sessions.get(message.session);
        if (session === undefined) return;
        const { type: _type, session: _id, ...report } = message;
        session.refusalsForwarded++;
        session.refusal(report);
        return;
      }
      case 'notice': {
        const { type: _type, session: id, ...notice } = message;
        this.sessions.get(id)?.notice(notice);
        return;
      }
      case 'ended': {
        const session = this.sessions.get(message.session);
        if (!session) return;
        session.ended = true;
        session.updated(null);
        handle.release(session);
        this.sessions.delete(session.id);
        session.finishIfDone();
        return;
      }
      case 'updated':
        this.sessions.get(message.session)?.updated(message.seq);
        return;
      case 'error': {
        const { type: _type, ...error } = message;
        this.report(error);
        return;
      }
    }
  }

  private async runDeferred(
    session: Session,
    message: Extract<FromWorker, { type: 'defer' }>,
  ): Promise<void> {
    session.pendingDeferred++;
    const module = this.loaded[message.module]!;
    const call = new Call(this.arch);
    call.loadFromNotification(
      message.notification,
      session.listenerFd,
      session,
      message.syscall,
      message.payload,
    );
    call.module = module.name;
    call.reporter = (refusal, from) => session.refusedBy(refusal, from);
    let decided: Answer;
    try {
      const handler = module.deferred?.[message.syscall];
      if (handler === undefined) throw new Error(`no deferred.${message.syscall}`);
      const result: unknown = await handler(call);
      if (!isAnswer(result) || result.kind === 'defer') {
        throw new TypeError(`deferred handler returned ${String(result)}, not an answer`);
      }
      decided = result;
    } catch (error) {
      if (error instanceof NotificationGone) decided = { kind: 'continue' };
      else if (error instanceof CallError) decided = { kind: 'errno', errno: error.errno };
      else {
        decided = { kind: 'errno', errno: EPERM };
        this.report({
          session: session.id,
          module: module.name,
          syscall: message.syscall,
          message: (error as Error)?.message ?? String(error),
          stack: (error as Error)?.stack,
        });
      }
    }
    try {
      if (decided.kind === 'kill') {
        const reason = `module '${module.name}' (${message.syscall}): ${decided.reason}`;
        // The reaper out of reach, the caller at least never returns from the call.
        if (!session.killedBy(module.name, reason, true) && !call.killCaller()) {
          this.report({
            session: session.id,
            module: module.name,
            syscall: message.syscall,
            message: `sandlock: nor was the caller (pid ${call.pid}) killed (${reason})`,
          });
        }
      }
      const delivery = this.responder.apply(session.listenerFd, call.idBuffer, decided);
      if (!delivery.ok && !delivery.gone) {
        this.report({
          session: session.id,
          module: module.name,
          syscall: message.syscall,
          message: `${delivery.what} failed: errno ${delivery.errno}`,
        });
      }
    } finally {
      session.pendingDeferred--;
      session.finishIfDone();
    }
  }

  private onWorkerDeath(handle: WorkerHandle, error: Error): void {
    const index = this.workers.indexOf(handle);
    if (index >= 0) this.workers.splice(index, 1);
    if (this.closing) return;
    if (handle.sessions.size === 0) return;
    // Nobody receives this worker's notifications any more: its sandboxes
    // would hang in their next intercepted call. Kill them instead.
    this.report({ message: error.message });
    for (const session of handle.sessions) {
      session.killed(`the dispatch worker died: ${error.message}`);
      session.ended = true;
      session.updated(null);
      this.sessions.delete(session.id);
      session.finishIfDone();
    }
    handle.sessions.clear();
  }

  /**
   * Stops supervising: kills the sandboxes still attached, waits for their
   * sessions to close, and stops the worker threads.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const live = [...this.sessions.values()];
    for (const session of live) session.kill('the supervisor was closed');
    await Promise.race([
      Promise.all(live.map((session) => session.closed)),
      new Promise((resolve) => setTimeout(resolve, 5000).unref()),
    ]);
    await Promise.all(
      this.workers.map(
        (handle) =>
          new Promise<void>((resolve) => {
            if (handle.exited) return resolve();
            handle.worker.once('exit', () => resolve());
            // Idle workers are unref'd: hold the event loop until this one is gone.
            handle.worker.ref();
            handle.requestStop();
          }),
      ),
    );
    process.off('exit', this.onExit);
  }
}
