// The receive loop. It runs in a worker thread and never returns to that
// thread's event loop: it blocks in poll(2) over the listeners of its
// sessions, an eventfd the main thread writes to after posting a control
// message, and an epoll set of the pidfds of tracked processes; it receives
// each notification with a blocking SECCOMP_IOCTL_NOTIF_RECV, runs the
// syscall's chain and answers, all through synchronous koffi calls.
//
// Why poll and not a bare blocking RECV: a thread blocked in RECV cannot be
// woken (not to add a sandbox, not even for process exit, which would wait
// for it forever), and on kernels before 6.6 it does not return when the
// sandbox dies. poll() reports POLLHUP once the last task using the filter
// is gone, and SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (set by the main thread at
// attach) still wakes this thread on the caller's CPU.

import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import {
  type Arch,
  AUDIT_ARCH,
  blockAsyncSignals,
  CLONE_PARENT,
  close,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_EVENT_SIZE,
  ERRNO,
  epollCreate,
  epollCtl,
  epollReady,
  hostArch,
  ioctlBuffer,
  POLLERR,
  POLLFD_SIZE,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  parentOf,
  poll,
  readFd,
  SECCOMP_IOCTL_NOTIF_RECV,
  startTimeOf,
  syscallName,
  syscallNumberOrUndefined,
  trySyscall,
} from '@sandlock/sys';
import { type Answer, isAnswer } from './answer.js';
import { CallError } from './call-error.js';
import { Call, NotificationGone, threadGroupOrNull } from './context.js';
import { answerInjection } from './injection.js';
import { killFailure, signalReaper } from './kill-sandbox.js';
import { loadModules } from './loader.js';
import type { DispatchModule } from './module.js';
import { Broker } from './on-behalf.js';
import { ProcessTracker } from './processes.js';
import type { FromWorker, ToWorker, WorkerData } from './protocol.js';
import type { Provision } from './provisions.js';
import { type Refusal, RefusalBudget, refusalWords } from './refusal.js';
import { buildTable, type ChainLink } from './registry.js';
import { Responder } from './respond.js';
import { Retargeter } from './retarget.js';
import type { ProcessView, WorkerSession } from './session-view.js';

const { EAGAIN, ENOENT, EINTR, EPERM, ENOSYS } = ERRNO;
/** Retargets waiting on each other's listener: past this the call fails with EAGAIN. */
const MAX_RETARGET_DEPTH = 8;
/**
 * Processes are looked for this often in sandboxes whose processes are
 * tracked, or less often if walking the tree takes long (at most 5% of the
 * loop's time goes to it).
 */
const SCAN_INTERVAL_MS = 100;
const SCAN_COST_FACTOR = 20;
/**
 * After a fork-like call was let through, its child is looked for this
 * soon — or later, if walking the sandbox's tree takes long: a sandbox that
 * forks all the time must not keep its loop busy walking /proc.
 */
const FORK_SCAN_DELAY_MS = 1;
const FORK_SCAN_COST_FACTOR = 4;

const data = workerData as WorkerData;
const port = parentPort!;
const arch: Arch = hostArch();
const hostAuditArch = AUDIT_ARCH[arch];
/** The call that makes a Landlock domain: a caller after it is narrower than its sandbox. */
const RESTRICT_SELF = syscallNumberOrUndefined('landlock_restrict_self', arch);
const CLONE = syscallNumberOrUndefined('clone', arch);
const CLONE_PARENT_BIT = BigInt(CLONE_PARENT);
/** Calls after which a new process may exist. */
const forkLike = new Set(
  ['clone', 'clone3', 'fork', 'vfork']
    .map((name) => syscallNumberOrUndefined(name, arch))
    .filter((nr) => nr !== undefined),
);

function post(message: FromWorker): void {
  port.postMessage(message);
}

function describeError(error: unknown): { message: string; stack?: string } {
  if (error instanceof Error) return { message: error.message, stack: error.stack };
  return { message: String(error) };
}

interface LoopSession {
  readonly id: number;
  readonly fd: number;
  readonly reaperPidfd: number;
  /** The reaper's start time at attach (null: unread): proves a new pidfd of its pid is it. */
  readonly reaperStart: number | null;
  readonly table: (readonly ChainLink[] | undefined)[];
  readonly enabled: readonly DispatchModule[];
  readonly view: WorkerSession;
  tracker: ProcessTracker | null;
  /** When a fork-like call was let through (0: none since the last walk). */
  forkedAt: number;
  /** No walk after a fork before this time. */
  nextForkScan: number;
  /** The next periodic walk. */
  nextScan: number;
  ended: boolean;
  /** A delegated subtree: the session whose listener its calls arrive on. */
  readonly parent: LoopSession | null;
  /** On a listener's own session: every delegated subtree under it, by reaper pid. */
  readonly delegates: Map<number, LoopSession>;
  /**
   * On a listener's own session: thread groups (and threads) seen calling
   * landlock_restrict_self, with when (a count of such calls): they, and
   * what they start, are narrower than the session they were in then.
   */
  readonly restricted: Map<number, number>;
  /** The count of landlock_restrict_self calls when the session began: earlier ones made its own domain. */
  readonly since: number;
  /** When the program's first process started (startTimeOf), null if that could not be read. */
  readonly programStart: number | null;
  /** Forwards the modules' refusals to the main thread (null: nobody listens). */
  reporter: ((refusal: Refusal, call: Call) => void) | null;
}

/** Deeper than any real tree of nested sandboxes. */
const MAX_DEPTH = 256;

function rootOf(session: LoopSession): LoopSession {
  let root = session;
  while (root.parent !== null) root = root.parent;
  return root;
}

/**
 * The sessions whose chains a call from `tid` runs, innermost first: the
 * delegated subtrees it is in (the nearest ancestor that is a delegated
 * reaper, then that one's parents), then the listener's own session. A
 * reaper itself belongs to the session around it.
 */
function levelsOf(root: LoopSession, tid: number): LoopSession[] {
  let pid = parentOf(tid) ?? 0;
  for (let depth = 0; depth < MAX_DEPTH && pid > 1 && pid !== root.view.reaperPid; depth++) {
    const delegate = root.delegates.get(pid);
    if (delegate !== undefined && !delegate.ended) {
      const levels: LoopSession[] = [];
      for (let level: LoopSession | null = delegate; level !== null; level = level.parent) {
        levels.push(level);
      }
      return levels;
    }
    pid = parentOf(pid) ?? 0;
  }
  return [root];
}

/**
 * {@link WorkerSession.narrowed}: a thread whose thread group, or a process
 * above it up to the session's reaper, called landlock_restrict_self since
 * the session began (a delegated subtree's own launch made its domain before
 * that); in a listener's own session, also a thread in a delegated subtree.
 * The other threads of such a process count too (a domain is per thread:
 * over-approximated, never under). A /proc read that fails: narrowed.
 * A process whose parent exited was reparented to the reaper (a child
 * subreaper, PR_SET_CHILD_SUBREAPER in prctl(2)), its ancestry lost with it
 * while the domain it inherited stays: every child of the reaper but the
 * program's first process is narrowed once any process of the sandbox
 * restricted itself.
 */
function narrowed(session: LoopSession, tid: number): boolean {
  const root = rootOf(session);
  const marks = root.restricted;
  if (marks.size === 0 && root.delegates.size === 0) return false;
  if ((marks.get(tid) ?? -1) >= session.since) return true;
  let pid = threadGroupOrNull(tid);
  let child: number | null = null;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    if (pid === null) return true;
    if (pid === session.view.reaperPid) {
      return child !== null && !isProgram(session, child) && restrictedSince(root, session.since);
    }
    if ((marks.get(pid) ?? -1) >= session.since) return true;
    if (session === root && root.delegates.has(pid)) return true;
    if (pid <= 1) return true; // left the sandbox's tree: not its process
    child = pid;
    pid = parentOf(pid);
  }
  return true;
}

/** Whether `pid` is the program's first process (not another process given its pid since). */
function isProgram(session: LoopSession, pid: number): boolean {
  if (pid !== session.view.programPid || session.programStart === null) return false;
  return startTimeOf(pid) === session.programStart;
}

/** Whether a process restricted itself since `since` (a delegated subtree's launch counts). */
function restrictedSince(root: LoopSession, since: number): boolean {
  if (root.delegates.size > 0) return true;
  for (const seq of root.restricted.values()) if (seq >= since) return true;
  return false;
}

function programStartOf(pid: number): number | null {
  try {
    return startTimeOf(pid);
  } catch {
    return null;
  }
}

class Loop {
  private readonly sessions = new Map<number, LoopSession>();
  /** [wake eventfd, pidfd epoll, listeners…] */
  private pollfds = Buffer.alloc(POLLFD_SIZE * 2);
  private polled: LoopSession[] = [];
  private dirty = true;
  private readonly notif = Buffer.alloc(80);
  private readonly wakeBuffer = Buffer.alloc(8);
  private readonly epollEvents = Buffer.alloc(EPOLL_EVENT_SIZE * 64);
  private readonly epfd: number;
  private readonly call = new Call(arch);
  private readonly responder = new Responder();
  private readonly trackerByPidfd = new Map<number, ProcessTracker>();
  /** Delegated subtrees by the pidfd of their reaper. */
  private readonly delegateByPidfd = new Map<number, LoopSession>();
  private tracking = 0;
  /** landlock_restrict_self calls seen, in every session of this loop. */
  private restricts = 0;
  private readonly names: string[] = [];
  /** Each reporting session's refusal budget, by session id. */
  private readonly budgets = new Map<number, RefusalBudget>();
  /** Retarget answers in progress (nested through the listener they serve). */
  private retargets = 0;

  constructor(private readonly modules: readonly DispatchModule[]) {
    const epfd = epollCreate();
    if (epfd < 0) throw new Error(`sandlock: epoll_create1 failed: errno ${-epfd}`);
    this.epfd = epfd;
  }

  private nameOf(nr: number): string {
    let name = this.names[nr];
    if (name === undefined) {
      name = syscallName(nr, arch) ?? `syscall ${nr}`;
      this.names[nr] = name;
    }
    return name;
  }

  run(): void {
    for (;;) {
      if (this.dirty) this.rebuild();
      const count = poll(this.pollfds, this.polled.length + 2, this.timeout());
      if (Atomics.load(data.stop, 0) === 1) return;
      if (count < 0) {
        if (count === -EINTR) continue;
        throw new Error(`sandlock: poll failed: errno ${-count}`);
      }
      if (count > 0) {
        const fds = this.pollfds;
        if (fds.readInt16LE(6) !== 0) {
          readFd(data.wakeFd, this.wakeBuffer);
          if (this.drainControl()) return;
        }
        if (fds.readInt16LE(POLLFD_SIZE + 6) !== 0) this.reapExits();
        const polled = this.polled;
        for (let index = 0; index < polled.length; index++) {
          const revents = fds.readInt16LE((index + 2) * POLLFD_SIZE + 6);
          if (revents === 0) continue;
          const session = polled[index]!;
          if (session.ended) continue;
          if (revents & POLLIN) this.receive(session);
          else if (revents & (POLLHUP | POLLERR | POLLNVAL)) this.end(session);
        }
      }
      if (this.tracking > 0) this.scanIfDue();
    }
  }

  private timeout(): number {
    if (this.tracking === 0) return -1;
    const now = Date.now();
    let wake = Number.POSITIVE_INFINITY;
    for (const session of this.sessions.values()) {
      if (session.tracker === null) continue;
      wake = Math.min(wake, session.nextScan);
      if (session.forkedAt === 0) continue;
      wake = Math.min(wake, Math.max(session.forkedAt + FORK_SCAN_DELAY_MS, session.nextForkScan));
    }
    return wake === Number.POSITIVE_INFINITY ? -1 : Math.max(0, Math.ceil(wake - now));
  }

  private rebuild(): void {
    this.polled = [...this.sessions.values()].filter(
      (session) => !session.ended && session.parent === null,
    );
    const size = (this.polled.length + 2) * POLLFD_SIZE;
    if (this.pollfds.length < size) this.pollfds = Buffer.alloc(size * 2);
    const fds = this.pollfds;
    fds.fill(0);
    fds.writeInt32LE(data.wakeFd, 0);
    fds.writeInt16LE(POLLIN, 4);
    // poll(2) skips negative fds: the pidfd set only while a sandbox is tracked.
    const watching = this.tracking > 0 || this.delegateByPidfd.size > 0;
    fds.writeInt32LE(watching ? this.epfd : -1, POLLFD_SIZE);
    fds.writeInt16LE(POLLIN, POLLFD_SIZE + 4);
    this.polled.forEach((session, index) => {
      fds.writeInt32LE(session.fd, (index + 2) * POLLFD_SIZE);
      fds.writeInt16LE(POLLIN, (index + 2) * POLLFD_SIZE + 4);
    });
    this.dirty = false;
  }

  /** Handles queued control messages; true when the loop must stop. */
  private drainControl(): boolean {
    for (;;) {
      const received = receiveMessageOnPort(data.control);
      if (received === undefined) return false;
      const message = received.message as ToWorker;
      if (message.type === 'stop') return true;
      if (message.type === 'attach') this.attach(message);
      if (message.type === 'delegate') this.delegate(message);
      if (message.type === 'report') {
        const session = this.sessions.get(message.session);
        if (session !== undefined) session.reporter = message.on ? this.reporterFor(session) : null;
      }
      if (message.type === 'update') {
        // Read by the handlers at each call: the next call sees the new fields.
        const session = this.sessions.get(message.session);
        if (session !== undefined) Object.assign(session.view.policy as object, message.fields);
        post({ type: 'updated', session: message.session, seq: message.seq });
      }
    }
  }

  /**
   * A subtree of a supervised sandbox (a sandbox started inside it) gets a
   * session of its own on the same listener: its processes' calls run its
   * chain first, then its parent's, up to the listener's own session.
   */
  private delegate(message: Extract<ToWorker, { type: 'delegate' }>): void {
    const parent = this.sessions.get(message.parent);
    if (parent === undefined || parent.ended) {
      // The parent ended meanwhile: so did the subtree's calls.
      post({ type: 'ended', session: message.session });
      return;
    }
    const root = rootOf(parent);
    this.attach({ ...message, type: 'attach', listenerFd: root.fd, brokerFd: -1 }, parent);
  }

  /**
   * Posts a session's refusals, within its budget (RefusalBudget): past it
   * they are counted, and the count goes with the next one posted (or with
   * the session's end).
   */
  private reporterFor(session: LoopSession): (refusal: Refusal, call: Call) => void {
    const budget = this.budgets.get(session.id) ?? new RefusalBudget();
    this.budgets.set(session.id, budget);
    return (refusal, call) => {
      if (!budget.take(Date.now())) return;
      let what: string;
      try {
        what = refusalWords(refusal);
      } catch (error) {
        what = `(the module failed to say: ${describeError(error).message})`;
      }
      post({
        type: 'refusal',
        session: session.id,
        what,
        rule: String(refusal.rule),
        module: call.module || null,
        syscall: call.syscall || null,
        pid: call.pid || null,
        dropped: budget.dropped,
      });
      budget.dropped = 0;
    };
  }

  private attach(message: Extract<ToWorker, { type: 'attach' }>, parent?: LoopSession): void {
    const enabled = message.enabled.map((index) => this.modules[index]!);
    const loop = this;
    const session: LoopSession = {
      id: message.session,
      fd: message.listenerFd,
      reaperPidfd: message.reaperPidfd,
      reaperStart: message.reaperStart,
      table: buildTable(this.modules, message.enabled, arch),
      enabled,
      tracker: null,
      forkedAt: 0,
      nextForkScan: 0,
      nextScan: 0,
      ended: false,
      view: undefined as unknown as WorkerSession,
      parent: parent ?? null,
      delegates: new Map(),
      restricted: new Map(),
      since: parent === undefined ? 0 : this.restricts,
      programStart: programStartOf(message.programPid),
      reporter: null,
    };
    const processes: ProcessView = {
      get live() {
        return loop.trackerOf(session).live;
      },
      refresh() {
        const tracker = loop.trackerOf(session);
        tracker.scan();
        return tracker.live;
      },
    };
    const provisions = new Map<string, unknown>();
    (session as { view: WorkerSession }).view = Object.freeze({
      id: message.session,
      reaperPid: message.reaperPid,
      programPid: message.programPid,
      policy: message.policy,
      processes,
      kill: (reason: string) => {
        this.kill(session, reason);
      },
      // A delegated subtree is served by its listener's reaper: the outer
      // policy's domain, which its modules narrow to its own policy.
      onBehalf:
        parent !== undefined
          ? rootOf(parent).view.onBehalf
          : message.brokerFd >= 0
            ? new Broker(message.brokerFd)
            : null,
      narrowed: (tid: number) => narrowed(session, tid),
      notice: (module: string, kind: string, detail: unknown) =>
        post({ type: 'notice', session: message.session, module, kind, detail }),
      provide: <T>(key: Provision<T>, value: T) => provisions.set(key.name, value),
      provided: <T>(key: Provision<T>) => provisions.get(key.name) as T | undefined,
    });
    this.sessions.set(session.id, session);
    if (message.report) session.reporter = this.reporterFor(session);
    this.dirty = true;
    if (parent !== undefined) {
      rootOf(parent).delegates.set(message.reaperPid, session);
      // The subtree ends when its reaper does.
      epollCtl(this.epfd, EPOLL_CTL_ADD, message.reaperPidfd, POLLIN);
      this.delegateByPidfd.set(message.reaperPidfd, session);
    }
    for (const module of enabled) {
      this.hook(session, module, 'sessionStart', () => module.sessionStart?.(session.view));
    }
    const tracked =
      message.track ||
      enabled.some((m) => m.processStart !== undefined || m.processExit !== undefined);
    if (tracked) this.trackerOf(session).tryScan();
  }

  private trackerOf(session: LoopSession): ProcessTracker {
    if (session.tracker !== null) return session.tracker;
    if (session.ended) {
      // Asked for from a sessionEnd hook: nothing is left to track.
      const nothing = () => {};
      return new ProcessTracker(session.view.reaperPid, {
        watch: nothing,
        unwatch: nothing,
        started: nothing,
        exited: nothing,
      });
    }
    const tracker = new ProcessTracker(session.view.reaperPid, {
      watch: (pidfd) => {
        epollCtl(this.epfd, EPOLL_CTL_ADD, pidfd, POLLIN);
        this.trackerByPidfd.set(pidfd, tracker);
      },
      unwatch: (pidfd) => {
        epollCtl(this.epfd, EPOLL_CTL_DEL, pidfd, 0);
        this.trackerByPidfd.delete(pidfd);
      },
      started: (pid) => {
        for (const module of session.enabled) {
          if (module.processStart === undefined) continue;
          this.hook(session, module, 'processStart', () =>
            module.processStart?.(session.view, pid),
          );
        }
      },
      exited: (pid) => {
        for (const module of session.enabled) {
          if (module.processExit === undefined) continue;
          this.hook(session, module, 'processExit', () => module.processExit?.(session.view, pid));
        }
      },
    });
    session.tracker = tracker;
    session.nextScan = Date.now() + SCAN_INTERVAL_MS;
    this.tracking++;
    this.dirty = true;
    return tracker;
  }

  private hook(session: LoopSession, module: DispatchModule, hook: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      post({
        type: 'error',
        session: session.id,
        module: module.name,
        syscall: hook,
        ...describeError(error),
      });
    }
  }

  private reapExits(): void {
    for (;;) {
      const ready = epollReady(this.epfd, this.epollEvents);
      if (ready.length === 0) return;
      for (const pidfd of ready) {
        const delegate = this.delegateByPidfd.get(pidfd);
        if (delegate !== undefined) {
          this.end(delegate);
          continue;
        }
        const tracker = this.trackerByPidfd.get(pidfd);
        // Not ours (cannot happen): drop it, or it would stay ready forever.
        if (tracker === undefined) epollCtl(this.epfd, EPOLL_CTL_DEL, pidfd, 0);
        else tracker.exited(pidfd);
      }
    }
  }

  private scanIfDue(): void {
    const now = Date.now();
    for (const session of this.sessions.values()) {
      if (session.tracker === null || session.ended) continue;
      const forkScan =
        session.forkedAt !== 0 &&
        now >= session.forkedAt + FORK_SCAN_DELAY_MS &&
        now >= session.nextForkScan;
      if (!forkScan && now < session.nextScan) continue;
      session.forkedAt = 0;
      const started = performance.now();
      session.tracker.tryScan();
      const cost = performance.now() - started;
      session.nextForkScan = now + FORK_SCAN_COST_FACTOR * cost;
      session.nextScan = now + Math.max(SCAN_INTERVAL_MS, SCAN_COST_FACTOR * cost);
    }
  }

  private noteFork(session: LoopSession): void {
    if (session.forkedAt === 0) session.forkedAt = Date.now();
  }

  /**
   * Whether the reaper got the signal. `callerWaits`: the kill is a call's
   * answer, still to be sent.
   */
  private kill(
    session: LoopSession,
    reason: string,
    module?: string,
    callerWaits = false,
  ): boolean {
    // The reaper turns its control signal into SIGKILL for every process of
    // the sandbox; the pidfd cannot reach a process that reused its pid.
    const outcome = signalReaper({
      pid: session.view.reaperPid,
      pidfd: session.reaperPidfd,
      start: session.reaperStart,
    });
    post(
      module === undefined
        ? { type: 'kill', session: session.id, reason }
        : { type: 'kill', session: session.id, reason, module },
    );
    const failure = killFailure(outcome, reason, callerWaits);
    if (failure !== null) post({ type: 'error', session: session.id, module, message: failure });
    return outcome.sent;
  }

  private receive(session: LoopSession): void {
    const notif = this.notif;
    // The kernel refuses a non-zero buffer with EINVAL (seccomp_unotify(2)).
    notif.fill(0);
    const received = ioctlBuffer(session.fd, SECCOMP_IOCTL_NOTIF_RECV, notif);
    if (received < 0) {
      // ENOENT: the caller died between the wake-up and RECV; not an error.
      if (received === -ENOENT || received === -EINTR) return;
      post({
        type: 'error',
        session: session.id,
        message: `sandlock: SECCOMP_IOCTL_NOTIF_RECV failed: errno ${-received}`,
      });
      this.end(session);
      return;
    }
    const fd = session.fd;
    if (notif.readUInt32LE(20) !== hostAuditArch) {
      // The filter kills other ABIs before they get here.
      this.responder.errno(fd, notif, ENOSYS);
      return;
    }
    const nr = notif.readInt32LE(16);
    // A call a retarget apart made to carry a descriptor (injection.ts).
    if (answerInjection(fd, notif.readBigUInt64LE(0), notif.readUInt32LE(8), nr)) return;
    if (nr === RESTRICT_SELF) {
      // Before the kernel makes the domain (the call waits for this answer).
      const tid = notif.readUInt32LE(8);
      const seq = this.restricts++;
      session.restricted.set(tid, seq);
      session.restricted.set(threadGroupOrNull(tid) ?? tid, seq);
    }
    if (nr === CLONE && (notif.readBigUInt64LE(32) & CLONE_PARENT_BIT) !== 0n) {
      // The child of clone(CLONE_PARENT) is its caller's sibling (kernel/fork.c:
      // copy_process()): it inherits the caller's Landlock domain but not its
      // place in the tree narrowed() walks. Refused to a narrowed caller.
      let refuse: boolean;
      try {
        refuse = narrowed(session, notif.readUInt32LE(8));
      } catch {
        refuse = true;
      }
      if (refuse) {
        this.responder.errno(fd, notif, EPERM);
        return;
      }
    }
    if (session.delegates.size === 0) {
      this.dispatch(session, nr, notif.readUInt32LE(8), true);
      return;
    }
    let levels: LoopSession[];
    try {
      levels = levelsOf(session, notif.readUInt32LE(8));
    } catch (error) {
      // Which sandbox the caller is in cannot be read (ProcReadError): refuse.
      this.failed(session, undefined, error);
      return;
    }
    for (let index = 0; index < levels.length; index++) {
      if (this.dispatch(levels[index]!, nr, notif.readUInt32LE(8), index === levels.length - 1)) {
        return;
      }
    }
  }

  /**
   * Runs `session`'s chain for the received call. Returns true when the call
   * was answered; false when the chain let it through and `last` is false (the
   * next session out decides).
   */
  private dispatch(session: LoopSession, nr: number, tid: number, last: boolean): boolean {
    const notif = this.notif;
    const fd = session.fd;
    const tracker = session.tracker;
    if (tracker !== null) tracker.noteCaller(tid);
    const chain = session.table[nr];
    if (chain === undefined) return this.letThrough(session, nr, last);
    const call = this.call;
    call.loadFromBuffer(notif, fd, session.view, this.nameOf(nr));
    call.reporter = session.reporter;
    let decided: Answer | undefined;
    let decider: ChainLink | undefined;
    try {
      for (let index = 0; index < chain.length; index++) {
        const link = chain[index]!;
        decider = link;
        call.module = link.module.name;
        if (link.handler === undefined) {
          decided = { kind: 'defer', payload: undefined };
          break;
        }
        const result = link.handler(call);
        if (result === undefined || result === null) {
          throw new TypeError(`handler for ${link.syscall} returned no answer`);
        }
        if (result.kind === 'continue') continue;
        decided = result;
        break;
      }
    } catch (error) {
      this.failed(session, decider, error);
      return true;
    }
    if (decided === undefined) return this.letThrough(session, nr, last);
    this.deliver(session, decider!, decided);
    return true;
  }

  /** No handler of `session` answered: continue the call if no session out is left to ask. */
  private letThrough(session: LoopSession, nr: number, last: boolean): boolean {
    if (last) this.responder.continue(session.fd, this.notif);
    if (session.tracker !== null && forkLike.has(nr)) this.noteFork(session);
    return last;
  }

  /** A handler threw (or returned something that is not an answer). */
  private failed(session: LoopSession, link: ChainLink | undefined, error: unknown): void {
    const notif = this.notif;
    if (error instanceof NotificationGone) return;
    if (error instanceof CallError) {
      this.responder.errno(session.fd, notif, error.errno);
      return;
    }
    // Fail closed: the call is refused, never let through.
    this.responder.errno(session.fd, notif, EPERM);
    post({
      type: 'error',
      session: session.id,
      module: link?.module.name,
      syscall: link?.syscall,
      ...describeError(error),
    });
  }

  private deliver(session: LoopSession, link: ChainLink, decided: Answer): void {
    const notif = this.notif;
    if (!isAnswer(decided)) {
      this.failed(
        session,
        link,
        new TypeError(`handler returned ${String(decided)}, not an answer`),
      );
      return;
    }
    if (decided.kind === 'defer') {
      if (link.module.deferred?.[link.syscall] === undefined) {
        this.failed(
          session,
          link,
          new TypeError(`answered defer, but the module has no deferred.${link.syscall}`),
        );
        return;
      }
      try {
        post({
          type: 'defer',
          session: session.id,
          module: link.moduleIndex,
          syscall: link.syscall,
          notification: this.call.notification(),
          payload: decided.payload,
        });
      } catch (error) {
        // A payload structured clone cannot copy.
        this.failed(session, link, error);
      }
      return;
    }
    if (decided.kind === 'retarget') {
      this.retarget(session, link, decided);
      return;
    }
    if (decided.kind === 'kill') {
      const reason = `module '${link.module.name}' (${link.syscall}): ${decided.reason}`;
      // The reaper out of reach, the caller at least never returns from the call.
      if (!this.kill(session, reason, link.module.name, true) && !this.call.killCaller()) {
        post({
          type: 'error',
          session: session.id,
          module: link.module.name,
          syscall: link.syscall,
          message: `sandlock: nor was the caller (pid ${this.call.pid}) killed (${reason})`,
        });
      }
    }
    const delivery = this.responder.apply(session.fd, notif, decided);
    if (!delivery.ok && !delivery.gone) {
      post({
        type: 'error',
        session: session.id,
        module: link.module.name,
        syscall: link.syscall,
        message: `sandlock: ${delivery.what} failed: errno ${delivery.errno}`,
      });
    }
  }

  /**
   * Runs a retarget answer (retarget.ts). Meanwhile the loop serves this
   * listener only: the thread's new call may be notified on it, and so may
   * other threads' calls (re-entrantly: `notif` and `call` are not used again
   * by the caller of this method). A nested retarget is refused past a depth.
   */
  private retarget(
    session: LoopSession,
    link: ChainLink,
    decided: Extract<Answer, { kind: 'retarget' }>,
  ): void {
    const id = Buffer.from(this.notif.subarray(0, 8));
    const tid = this.notif.readUInt32LE(8);
    if (this.retargets >= MAX_RETARGET_DEPTH) {
      this.responder.apply(session.fd, id, { kind: 'errno', errno: EAGAIN });
      if (decided.fd !== null) close(decided.fd);
      return;
    }
    const listener = rootOf(session).fd;
    const pollfd = Buffer.alloc(POLLFD_SIZE);
    pollfd.writeInt32LE(listener, 0);
    pollfd.writeInt16LE(POLLIN, 4);
    const timeout = Buffer.alloc(16);
    const serve = (timeoutNs: number) => {
      pollfd.writeInt16LE(0, 6);
      timeout.writeBigInt64LE(BigInt(Math.floor(timeoutNs / 1e9)), 0);
      timeout.writeBigInt64LE(BigInt(timeoutNs % 1e9), 8);
      if (trySyscall('ppoll', pollfd, 1, timeout, 0, 0) <= 0) return;
      if (pollfd.readInt16LE(6) & POLLIN && !session.ended) this.receive(rootOf(session));
    };
    this.retargets++;
    let result: ReturnType<Retargeter['run']>;
    try {
      result = new Retargeter(arch).run(this.responder, listener, id, tid, decided, serve);
    } finally {
      this.retargets--;
    }
    if (result.ok || result.gone) return;
    if ('stuck' in result) {
      this.kill(session, result.what, link.module.name, true);
      return;
    }
    if (result.what === 'PTRACE_SEIZE') return; // the caller got its errno: closed, not a defect
    post({
      type: 'error',
      session: session.id,
      module: link.module.name,
      syscall: link.syscall,
      message: `sandlock: ${result.what} failed: errno ${result.errno}`,
    });
  }

  private end(session: LoopSession): void {
    if (session.ended) return;
    // Subtrees first: their calls arrived on this session's listener.
    for (const delegate of [...rootOf(session).delegates.values()]) {
      if (delegate.parent === session) this.end(delegate);
    }
    session.ended = true;
    this.dirty = true;
    if (session.parent !== null) {
      rootOf(session).delegates.delete(session.view.reaperPid);
      epollCtl(this.epfd, EPOLL_CTL_DEL, session.reaperPidfd, 0);
      this.delegateByPidfd.delete(session.reaperPidfd);
    }
    if (session.tracker !== null) {
      session.tracker.close();
      this.tracking--;
      this.dirty = true;
    }
    for (const module of session.enabled) {
      this.hook(session, module, 'sessionEnd', () => module.sessionEnd?.(session.view));
    }
    this.sessions.delete(session.id);
    const budget = this.budgets.get(session.id);
    this.budgets.delete(session.id);
    if (budget !== undefined && budget.dropped > 0) {
      post({
        type: 'refusal',
        session: session.id,
        what: `${budget.dropped} more refusal${budget.dropped === 1 ? '' : 's'}`,
        rule: 'not reported: too many at once',
        module: null,
        syscall: null,
        pid: null,
        dropped: budget.dropped,
      });
    }
    // The main thread closes the listener once no deferred answer is pending.
    post({ type: 'ended', session: session.id });
  }
}

async function main(): Promise<void> {
  // Process-directed signals (SIGCHLD at each child's exit, a user's SIGINT)
  // go to the other threads, so they never interrupt a handler's calls here.
  const blocked = blockAsyncSignals();
  if (blocked < 0) {
    post({ type: 'failed', message: `sandlock: rt_sigprocmask failed: errno ${-blocked}` });
    return;
  }
  let modules: DispatchModule[];
  try {
    modules = await loadModules(data.modules, arch, 'worker');
  } catch (error) {
    post({ type: 'failed', ...describeError(error) });
    return;
  }
  const loop = new Loop(modules);
  post({ type: 'ready' });
  loop.run();
}

await main();
