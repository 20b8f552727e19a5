import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { RefusalReport } from '@sandlock/dispatch';
import type { Denial } from '@sandlock/http';
import { formatByteSize, type LimitViolation, type ResourceWatch } from '@sandlock/resource';
import { close, cpuAffinityOf, type JoinOptions, joinSandbox, REAPER_SIGNAL } from '@sandlock/sys';
import { SandboxError } from './errors.js';
import { JoinedProcess } from './joined.js';
import {
  checkLimitUpdate,
  type LimitUpdate,
  type SandboxLimits,
  setSandboxAffinity,
} from './limits.js';
import type { PortMapping, Registration } from './registry.js';
import type { Session } from './supervision.js';
import type { WorkdirResult } from './workdir.js';

/** Why Sandlock killed a sandbox (other than a timeout or a kill() call). */
export type KillCause =
  | { reason: 'memory'; limit: number; used: number; message: string }
  /** Its processes could not be read for UNMEASURED_KILL_MS (2 s): a limit could not be enforced. */
  | { reason: 'unmeasured'; message: string }
  | { reason: 'supervisor'; message: string }
  /** run(): stdout or stderr went over `maxBuffer`. */
  | { reason: 'maxBuffer'; message: string };

/** How a sandboxed program ended. */
export interface ExitStatus {
  /** The exit code, or null when a signal ended it. */
  exitCode: number | null;
  /** The signal that ended it, or null. */
  signal: NodeJS.Signals | null;
  /** True when the sandbox was killed because its timeout expired. */
  timedOut: boolean;
  /** Set when a limit or a supervisor module killed the sandbox. */
  killedBy: KillCause | null;
  /** With a workdir: what became of its layer (null without one). */
  workdir?: WorkdirResult | null;
}

/**
 * Something refused on the sandbox's behalf by the supervisor or a limit: a
 * hidden /proc entry, a fork over `maxProcesses`, a metadata change outside
 * `fsWrite`, a kill over `maxMemory`…
 */
export interface SandboxRefusal extends RefusalReport {}

/** The events of a {@link SandboxProcess}. */
export interface SandboxProcessEvents {
  refusal: [refusal: SandboxRefusal];
  /** A connection or request the HTTP proxy refused (a policy with HTTP rules). */
  denied: [denial: Denial];
  /** A port bound under portRemap, or bound to another real port than before. */
  port: [port: SandboxPort];
}

/** A port the sandbox bound under portRemap: the port it sees (`virtual`) and the host's (`real`). */
export interface SandboxPort extends PortMapping {}

/** A limit's kill as a refusal. */
function limitRefusal(violation: LimitViolation): SandboxRefusal {
  const common = { module: null, syscall: null, pid: null, dropped: 0 };
  if (violation.reason === 'memory') {
    return {
      what: `the whole sandbox (killed): memory use ${formatByteSize(violation.used)}`,
      rule: `maxMemory ${formatByteSize(violation.limit)}`,
      ...common,
    };
  }
  return {
    what: 'the whole sandbox (killed): its processes could not be measured',
    rule: violation.message.replace(/^sandlock: /, ''),
    ...common,
  };
}

/** What watches a running sandbox besides the reaper. */
export interface Watchers {
  watch: ResourceWatch | null;
  session: Session | null;
}

function killCause(watchers: Watchers): KillCause | null {
  const violation = watchers.watch?.violation;
  if (violation?.reason === 'unmeasured') {
    return { reason: 'unmeasured', message: violation.message.replace(/^sandlock: /, '') };
  }
  if (violation) {
    return {
      reason: 'memory',
      limit: violation.limit,
      used: violation.used,
      message: `memory use ${formatByteSize(violation.used)} went over the limit of ${formatByteSize(violation.limit)} (maxMemory)`,
    };
  }
  const reason = watchers.session?.killReason;
  return reason ? { reason: 'supervisor', message: reason } : null;
}

/** Signals the reaper passes on to every process of the sandbox as they are. */
const FORWARDED: readonly NodeJS.Signals[] = [
  'SIGHUP',
  'SIGINT',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGTERM',
  'SIGWINCH',
];

const CONTROL: Partial<Record<NodeJS.Signals, number>> = {
  SIGKILL: REAPER_SIGNAL.killAll,
  SIGSTOP: REAPER_SIGNAL.stopAll,
  SIGCONT: REAPER_SIGNAL.continueAll,
};

/** The signals a sandbox can be sent as a whole. */
export const SANDBOX_SIGNALS: readonly NodeJS.Signals[] = [
  ...(Object.keys(CONTROL) as NodeJS.Signals[]),
  ...FORWARDED,
];

/**
 * What to send the reaper so that every process of the sandbox gets
 * `signal`, or undefined for a signal that cannot be sent so (any other would
 * end the reaper itself and leave the sandbox orphaned).
 */
export function reaperSignal(signal: NodeJS.Signals): number | undefined {
  return CONTROL[signal] ?? (FORWARDED.includes(signal) ? constants.signals[signal] : undefined);
}

export function badSignal(signal: unknown): TypeError {
  return new TypeError(
    `sandlock: cannot send ${String(signal)} to a sandbox; one of ${SANDBOX_SIGNALS.join(', ')}`,
  );
}

/**
 * A running sandbox. The process Node started is the sandbox's reaper: it
 * outlives the program until every process of the sandbox has ended, mirrors
 * the program's exit status, and passes signals on to all of them.
 */
export class SandboxProcess extends EventEmitter<SandboxProcessEvents> {
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  private status: ExitStatus | null = null;
  private timedOut = false;
  private readonly ended: Promise<ExitStatus>;
  private readonly watchers: Watchers = { watch: null, session: null };
  /** Stops the session's refusals coming here (null: not listening). */
  private unsubscribe: (() => void) | null = null;
  /** The ports bound under portRemap, by protocol and virtual port. */
  private readonly bound = new Map<string, SandboxPort>();
  /** The last write of the ports to the registry. */
  private portsListed: Promise<void> = Promise.resolve();
  /** Finishes the workdir's layer once every process has gone. */
  private finisher: ((status: ExitStatus) => Promise<WorkdirResult>) | null = null;
  private registration: Registration | null = null;
  private listedName: string | null = null;
  /** The supervisor's end of the zygote's socket (SpawnOptions.joinable), or -1. */
  private zygote = -1;
  /** The limits in force, and whether the process limit is counted here (set at start). */
  private inForce: SandboxLimits = {
    maxMemory: null,
    maxProcesses: null,
    maxCpu: null,
    cpuCores: null,
  };
  private forksCounted = false;
  /** The last updateLimits call: one runs at a time. */
  private updating: Promise<unknown> = Promise.resolve();

  /** @internal */
  constructor(
    private readonly child: ChildProcess,
    /** The program's pid. */
    readonly pid: number,
    /** Protections dropped in best-effort mode. */
    readonly warnings: readonly string[],
  ) {
    super();
    const watchers = this.watchers;
    // The supervisor forwards refusals only while someone listens.
    const untyped = this as EventEmitter;
    untyped.on('newListener', (event: string | symbol) => {
      if (event === 'refusal') this.subscribe();
    });
    untyped.on('removeListener', (event: string | symbol) => {
      if (event === 'refusal' && this.listenerCount('refusal') === 0) {
        this.unsubscribe?.();
        this.unsubscribe = null;
      }
    });
    this.stdin = child.stdin;
    this.stdout = child.stdout;
    this.stderr = child.stderr;
    this.ended = new Promise((resolve, reject) => {
      child.once('close', (code, signal) => {
        watchers.watch?.stop();
        if (this.zygote >= 0) close(this.zygote);
        this.zygote = -1;
        const status: ExitStatus = {
          exitCode: code,
          signal,
          timedOut: this.timedOut,
          killedBy: killCause(watchers),
        };
        // The worker posts a session's refusals before its end: with someone
        // listening, the end waits for the session's, so none comes after.
        const session = this.unsubscribe !== null ? watchers.session : null;
        const settle = () => {
          this.status = status;
          const finisher = this.finisher;
          if (finisher === null) {
            resolve(status);
            return;
          }
          // The layer is finished before anyone learns the sandbox ended:
          // a caller that reads the workdir then sees it committed.
          finisher(status).then(
            (workdir) => resolve({ ...status, workdir }),
            (error: unknown) => reject(error),
          );
        };
        // Off the registry before wait() resolves: a listing after it does not show it.
        const unlisted = this.registration?.remove().catch(() => {}) ?? Promise.resolve();
        void Promise.all([unlisted, session?.closed]).then(settle);
      });
    });
  }

  /** @internal The supervisor's end of the zygote's socket; this object closes it. */
  setZygote(fd: number): void {
    this.zygote = fd;
  }

  /**
   * Starts another program inside this running sandbox (spawned with
   * `joinable`): forked by the sandbox's zygote, it is in the sandbox's own
   * Landlock domains, under its seccomp filters and supervisor, with its
   * credentials, and counted with its processes. `options.path` and `cwd`
   * are as the sandbox sees them (inside its emulated root, if any); `stdio`
   * are descriptors of this process. Rejects with a SandboxError (step
   * 'join') when the sandbox has ended or the program could not start.
   */
  async join(options: JoinOptions): Promise<JoinedProcess> {
    if (!this.running) return this.notRunning('join');
    if (this.zygote < 0) {
      throw new SandboxError('sandlock: cannot join: the sandbox was not spawned joinable', 'join');
    }
    try {
      const joined = await joinSandbox(this.zygote, options);
      return new JoinedProcess(joined.pid, joined.pidfd);
    } catch (error) {
      throw new SandboxError(
        `sandlock: cannot join the sandbox: ${(error as Error).message.replace(/^sandlock: /, '')}`,
        'join',
        { cause: error },
      );
    }
  }

  /** @internal The supervisor's session, once attached (before the program runs). */
  supervise(session: Session | null): void {
    this.watchers.session = session;
    session?.onNotice(({ module, kind, detail }) => {
      if (module !== 'binds' || kind !== 'port') return;
      const port = detail as SandboxPort;
      this.bound.set(`${port.protocol}/${port.virtual}`, port);
      this.emit('port', port);
      // In order: the registry's entry ends with the latest list.
      this.portsListed = this.portsListed.then(() => this.setPorts(this.ports)).catch(() => {});
    });
    if (this.listenerCount('refusal') > 0) this.subscribe();
  }

  /** @internal How the workdir's layer is finished once the sandbox has ended. */
  finishWorkdir(finisher: (status: ExitStatus) => Promise<WorkdirResult>): void {
    this.finisher = finisher;
  }

  /** @internal The sandbox's registry entry (null: it runs unlisted, under `name`). */
  list(registration: Registration | null, name: string): void {
    this.registration = registration;
    this.listedName = name;
  }

  /**
   * The sandbox's name: unique among this user's running sandboxes
   * (`Sandbox.list()`, `sandlock ps`), given with the `name` option or
   * `sandbox-N`.
   */
  get name(): string {
    return this.listedName ?? `sandbox-${this.reaperPid}`;
  }

  /** @internal Records the ports a `portRemap` sandbox bound (`Sandbox.list()`'s `ports`), virtual and real. */
  setPorts(ports: readonly PortMapping[]): Promise<void> {
    return this.registration?.setPorts(ports) ?? Promise.resolve();
  }

  /** @internal The limits it started with; `forksCounted`: its supervisor counts forks (maxProcesses). */
  startedWith(limits: SandboxLimits, forksCounted: boolean): void {
    this.inForce = { ...limits };
    this.forksCounted = forksCounted;
  }

  /** The limits in force: those it started with, as updateLimits changed them. */
  get limits(): Readonly<SandboxLimits> {
    return { ...this.inForce };
  }

  /**
   * Changes the limits of the running sandbox, all or none: each field is
   * checked as the policy checks it (a PolicyError naming it), and the call
   * is refused with a SandboxError (step 'update limits') when one cannot
   * be applied. Resolves once every change is in force.
   *
   * - `maxMemory`: a use above the new limit kills the sandbox at once, as
   *   going over it does.
   * - `maxProcesses`: below the current count, forks fail with EAGAIN until
   *   enough processes have ended; none is killed.
   * - `maxCpu`: the throttle's share from now on.
   * - `cpuCores`: every thread of the sandbox moved to these CPUs (what it
   *   starts afterwards inherits them); null: every CPU this process may use.
   *
   * `maxMemory`, `maxProcesses` and `maxCpu` can be changed only on a sandbox
   * started with them (the mechanisms that enforce them start with it), and
   * cannot be removed (null) once set.
   */
  updateLimits(update: LimitUpdate): Promise<void> {
    const next = this.updating.then(() => this.applyLimits(update));
    this.updating = next.catch(() => {});
    return next;
  }

  private async applyLimits(update: LimitUpdate): Promise<void> {
    if (!this.running) return this.notRunning('update limits');
    const wanted = checkLimitUpdate(update);
    const refuse = (field: string, why: string): never => {
      throw new SandboxError(`sandlock: cannot update limits: ${field}: ${why}`, 'update limits');
    };
    const watched = this.watchers.watch?.active ? this.watchers.watch.limits : null;
    const mechanisms = {
      maxMemory: watched?.maxMemory != null,
      maxCpu: watched?.maxCpu != null,
      maxProcesses: this.forksCounted && this.inForce.maxProcesses !== null,
    };
    const what = {
      maxMemory: 'no memory limit (nothing measures its memory)',
      maxCpu: 'no CPU limit (nothing throttles it)',
      maxProcesses: 'no process limit (its forks are not counted)',
    };
    for (const field of ['maxMemory', 'maxCpu', 'maxProcesses'] as const) {
      const value = wanted[field];
      if (value === undefined) continue;
      if (value === null) {
        if (this.inForce[field] === null) delete wanted[field];
        else refuse(field, 'a limit cannot be removed from a running sandbox (raise it instead)');
      } else if (!mechanisms[field]) {
        refuse(
          field,
          `the sandbox was started with ${what[field]}; a limit can be changed, not added`,
        );
      }
    }
    if (wanted.cpuCores !== undefined) {
      // null: as a sandbox started without cpuCores, on the CPUs this process may use.
      setSandboxAffinity(this.reaperPid, wanted.cpuCores ?? cpuAffinityOf(0)!);
    }
    const { maxMemory, maxCpu } = wanted;
    if (maxMemory !== undefined || maxCpu !== undefined) {
      this.watchers.watch!.update({
        ...(maxMemory !== undefined ? { maxMemory } : {}),
        ...(maxCpu !== undefined ? { maxCpu } : {}),
      });
    }
    this.inForce = { ...this.inForce, ...wanted };
    // The modules read the limits at each call (process-limit, /proc/meminfo).
    await this.watchers.session?.updatePolicy({ ...wanted });
  }

  /** @internal The resource watch, once started. */
  watch(watch: ResourceWatch | null): void {
    this.watchers.watch = watch;
  }

  /** @internal A limit killed the sandbox. */
  limitKilled(violation: LimitViolation): void {
    this.emit('refusal', limitRefusal(violation));
  }

  private subscribe(): void {
    const session = this.watchers.session;
    if (this.unsubscribe !== null || session === null || !this.running) return;
    this.unsubscribe = session.onRefusal((refusal) => this.emit('refusal', refusal));
  }

  /**
   * The ports the sandbox has bound under portRemap (`--port-remap`) since
   * it started, each with the host's port behind it (the same where it was
   * free); empty without portRemap.
   */
  get ports(): readonly SandboxPort[] {
    return [...this.bound.values()].sort(
      (a, b) => a.virtual - b.virtual || a.protocol.localeCompare(b.protocol),
    );
  }

  /** The pid of the reaper (the process this Node process started). */
  get reaperPid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.status === null;
  }

  /** Resolves when every process of the sandbox has ended. */
  wait(): Promise<ExitStatus> {
    return this.ended;
  }

  private notRunning(action: string): Promise<never> {
    const status = this.status!;
    const how =
      status.signal !== null
        ? `was killed by ${status.signal}`
        : `exited with code ${status.exitCode}`;
    return Promise.reject(
      new SandboxError(
        `sandlock: cannot ${action}: the sandbox is not running (it ${how})`,
        action,
      ),
    );
  }

  private send(signal: number, action: string): Promise<void> {
    if (!this.running) return this.notRunning(action);
    try {
      process.kill(this.reaperPid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
    return Promise.resolve();
  }

  /**
   * Sends `signal` to every process of the sandbox (SIGKILL by default),
   * including those that left its session or process group.
   */
  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const number = reaperSignal(signal);
    if (number === undefined) return Promise.reject(badSignal(signal));
    return this.send(number, 'kill');
  }

  /** Stops every process of the sandbox (SIGSTOP). */
  pause(): Promise<void> {
    // The watch holds the CPU throttle too; once it has stopped, signal directly.
    if (this.running && this.watchers.watch?.pause()) return Promise.resolve();
    return this.send(REAPER_SIGNAL.stopAll, 'pause');
  }

  /** Continues every process of the sandbox (SIGCONT). */
  resume(): Promise<void> {
    if (this.running && this.watchers.watch?.resume()) return Promise.resolve();
    return this.send(REAPER_SIGNAL.continueAll, 'resume');
  }

  /**
   * @internal Marks the end as a timeout and sends `signal` to every process
   * of the sandbox (SIGKILL: it ends now).
   */
  expire(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.running) return;
    this.timedOut = true;
    void this.kill(signal).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.running) await this.kill('SIGKILL').catch(() => {});
    await this.ended;
  }
}
