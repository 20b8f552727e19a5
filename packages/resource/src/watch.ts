import { ProcReadError, SysError, type TreeEntry, walkTree, writeProc } from '@sandlock/sys';
import { CpuThrottle, type CpuThrottleOptions, type StopContinue, sandboxCpuMs } from './cpu.js';
import { MemoryLimit, type MemoryLimitOptions, type MemoryViolation } from './memory.js';
import { threadCpuMs, UNMEASURED_KILL_MS } from './proc.js';
import { Reaper } from './reaper.js';

/** How soon a check that could not read the sandbox is tried again, in ms. */
const UNMEASURED_RETRY_MS = 20;

/** The sandbox could not be measured for longer than the bound: a blind limit is no limit. */
export interface UnmeasuredViolation {
  reason: 'unmeasured';
  /** The limits that could not be enforced (`'maxMemory'`, `'maxCpu'`). */
  limits: string[];
  /** The errno symbol of the last failed read, e.g. `'EMFILE'`. */
  code: string;
  /** How long it went unmeasured, in ms. */
  for: number;
  /** One line for people. */
  message: string;
}

/** Why a limit killed the sandbox. More reasons (time, output) may follow. */
export type LimitViolation = MemoryViolation | UnmeasuredViolation;

export interface ResourceLimits {
  /** Bytes (parseByteSize reads a size such as `'512M'`). Null: no limit. */
  maxMemory?: number | null;
  /** Percent of one CPU (25 = a quarter, 200 = two CPUs). Null: no limit. */
  maxCpu?: number | null;
}

export interface WatchOptions extends ResourceLimits {
  /** Called once, right after a limit killed the sandbox. */
  onViolation?: (violation: LimitViolation) => void;
  /** Tuning for the memory checks. */
  memory?: Omit<MemoryLimitOptions, 'reader'> & {
    /**
     * Written to /proc/PID/oom_score_adj of each process of a sandbox with a
     * memory limit (default 1000; null leaves it alone): should the machine
     * run out of memory before a check catches the sandbox, the kernel's OOM
     * killer takes the sandbox first. Children inherit it.
     */
    oomScoreAdj?: number | null;
  };
  /** Tuning for the CPU throttle. */
  cpu?: CpuThrottleOptions;
  /** How long the sandbox may go unmeasured before it is killed, in ms (default UNMEASURED_KILL_MS). */
  unmeasuredKill?: number;
}

/** What watching cost. */
export interface WatchStats {
  /** Checks made. */
  checks: number;
  /** CPU time this thread spent in them, in ms. */
  busyMs: number;
  /** Highest memory figure seen, in bytes (0 without a memory limit). */
  memoryPeak: number;
  /** Times the CPU throttle stopped the sandbox. */
  throttleStops: number;
}

/**
 * Enforces memory and CPU limits on a running sandbox from this process. One
 * timer on the event loop: at each check it walks the sandbox's process tree
 * from the reaper, sums the memory (see MemoryLimit) and kills the whole
 * sandbox when it is over the limit, and feeds the CPU time to the throttle.
 * The checks stop by themselves when the reaper exits; call `stop()` once the
 * sandbox has ended anyway.
 *
 * Fails closed: when the sandbox's /proc files cannot be read (this process
 * out of descriptors or memory, say) the sandbox is held stopped and the
 * check retried; still unmeasured after `unmeasuredKill` ms (2 s), it is
 * killed with an UnmeasuredViolation.
 */
export class ResourceWatch {
  private readonly reaper: Reaper;
  private readonly memory: MemoryLimit | null;
  private readonly throttle: CpuThrottle | null;
  private readonly onViolation: ((violation: LimitViolation) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private userPaused = false;
  /** Set when a limit killed the sandbox. */
  violation: LimitViolation | null = null;
  private checks = 0;
  private busyMs = 0;
  private readonly oomScoreAdj: number | null;
  private adjusted = new Set<number>();
  private readonly unmeasuredKill: number;
  /** When the current run of failed checks began (performance.now()), or null. */
  private unmeasuredSince: number | null = null;
  /** Whether the watch holds the sandbox stopped because it cannot measure it. */
  private frozen = false;
  /** CPU ms the current check spent on descriptor buffers. */
  private buffersMs = 0;

  constructor(reaperPid: number, options: WatchOptions) {
    const maxMemory = options.maxMemory ?? null;
    this.memory = maxMemory === null ? null : new MemoryLimit(maxMemory, options.memory);
    this.reaper = new Reaper(reaperPid);
    // The throttle never continues a sandbox the watch holds for want of a measurement.
    const control: StopContinue = {
      stopAll: () => this.reaper.stopAll(),
      continueAll: () => !this.frozen && this.reaper.continueAll(),
    };
    this.throttle =
      options.maxCpu === null || options.maxCpu === undefined
        ? null
        : new CpuThrottle(options.maxCpu, control, options.cpu);
    this.unmeasuredKill = options.unmeasuredKill ?? UNMEASURED_KILL_MS;
    this.onViolation = options.onViolation;
    this.oomScoreAdj = this.memory ? (options.memory?.oomScoreAdj ?? 1000) : null;
    if (this.memory || this.throttle) this.check();
  }

  /** Whether the checks still run. */
  get active(): boolean {
    return !this.stopped;
  }

  get stats(): WatchStats {
    return {
      checks: this.checks,
      busyMs: this.busyMs,
      memoryPeak: this.memory?.peak ?? 0,
      throttleStops: this.throttle?.stops ?? 0,
    };
  }

  /** The limits in force (null: the watch has no such mechanism). */
  get limits(): { maxMemory: number | null; maxCpu: number | null } {
    return { maxMemory: this.memory?.limit ?? null, maxCpu: this.throttle?.percent ?? null };
  }

  /**
   * Changes limits the watch enforces (it was started with them) and looks at
   * the sandbox at once: a memory limit now below its use kills it as any
   * check over the limit does. Throws a RangeError for a limit it was not
   * started with or a bad value, changing nothing.
   */
  update(limits: ResourceLimits): void {
    const { maxMemory, maxCpu } = limits;
    for (const [name, value, mechanism] of [
      ['maxMemory', maxMemory, this.memory],
      ['maxCpu', maxCpu, this.throttle],
    ] as const) {
      if (value === undefined) continue;
      if (value === null || mechanism === null) {
        throw new RangeError(`sandlock: the watch cannot add or remove ${name}, only change it`);
      }
    }
    if (maxMemory !== undefined && maxMemory !== null) {
      new MemoryLimit(maxMemory); // checks the value before anything changes
    }
    if (maxCpu !== undefined && maxCpu !== null) this.throttle!.setPercent(maxCpu);
    if (maxMemory !== undefined && maxMemory !== null) this.memory!.setLimit(maxMemory);
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.check(), 0);
    this.timer.unref();
  }

  private check(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const started = threadCpuMs();
    this.checks += 1;
    this.buffersMs = 0;
    let delay: number | 'ended';
    try {
      delay = this.measure();
      if (delay !== 'ended') this.measured();
    } catch (error) {
      if (!(error instanceof ProcReadError || error instanceof SysError)) throw error;
      delay = this.unmeasured(error);
    }
    const cost = threadCpuMs() - started;
    this.busyMs += cost;
    if (delay === 'ended') return;
    // However large the sandbox, checking takes at most ~4 % of a CPU (the
    // buffers of its descriptors keep a budget of their own, see MemoryLimit).
    delay = Math.max(delay, (cost - this.buffersMs) * 25);
    this.timer = setTimeout(() => this.check(), delay);
    this.timer.unref();
  }

  /**
   * One look at the sandbox: kills it over the memory limit, feeds the
   * throttle. The delay until the next look, or 'ended'.
   *
   * @throws ProcReadError (or SysError) when a file or descriptor of the
   *   sandbox cannot be read.
   */
  private measure(): number | 'ended' {
    const processes = walkTree(this.reaper.pid, {
      status: this.memory !== null,
      stat: this.throttle !== null,
    });
    if (processes === null) {
      this.stop(); // the reaper is gone: so is the sandbox
      return 'ended';
    }
    let delay = Number.POSITIVE_INFINITY;
    if (this.oomScoreAdj !== null) this.adjustOomScores(processes);
    if (this.memory) {
      const sample = this.memory.check(processes);
      this.buffersMs = sample.buffersMs;
      if (sample.violation) {
        this.kill(sample.violation);
        return 'ended';
      }
      delay = this.memory.nextDelay(sample.used);
    }
    if (this.throttle) {
      this.throttle.update(sandboxCpuMs(this.reaper.pid, processes), performance.now());
      delay = Math.min(delay, this.throttle.tick);
    }
    return delay;
  }

  /** A check read the sandbox again: let it run, unless paused or throttled. */
  private measured(): void {
    this.unmeasuredSince = null;
    if (!this.frozen) return;
    this.frozen = false;
    if (!this.userPaused && !(this.throttle?.stopped ?? false)) this.reaper.continueAll();
  }

  /** A check could not read the sandbox: hold it stopped, and kill it once that lasts too long. */
  private unmeasured(error: ProcReadError | SysError): number | 'ended' {
    const now = performance.now();
    this.unmeasuredSince ??= now;
    const lasted = now - this.unmeasuredSince;
    if (lasted >= this.unmeasuredKill) {
      const limits = [this.memory && 'maxMemory', this.throttle && 'maxCpu'].filter(
        (limit): limit is string => typeof limit === 'string',
      );
      this.kill({
        reason: 'unmeasured',
        limits,
        code: error.code,
        for: lasted,
        message: `sandlock: the sandbox could not be measured for ${(lasted / 1000).toFixed(1)} s (${error instanceof ProcReadError ? `${error.path}: ${error.code}` : error.message}), so ${limits.join(' and ')} could not be enforced`,
      });
      return 'ended';
    }
    // Sent again at every retry: a process forked while the stop was being
    // delivered would run on.
    this.frozen = true;
    this.reaper.stopAll();
    return UNMEASURED_RETRY_MS;
  }

  private kill(violation: LimitViolation): void {
    this.reaper.killAll();
    this.violation = violation;
    this.stop();
    this.onViolation?.(violation);
  }

  private adjustOomScores(processes: readonly TreeEntry[]): void {
    const adjusted = new Set<number>();
    for (const { pid } of processes) {
      if (!this.adjusted.has(pid)) writeProc(`/proc/${pid}/oom_score_adj`, `${this.oomScoreAdj}`);
      adjusted.add(pid);
    }
    this.adjusted = adjusted;
  }

  /**
   * Pauses the sandbox for the user (stops every process) so that the CPU
   * throttle cannot continue it; use instead of sending stopAll yourself.
   * False once the watch has stopped: then send stopAll yourself.
   */
  pause(): boolean {
    if (this.stopped) return false;
    this.userPaused = true;
    this.throttle?.hold();
    return this.reaper.stopAll();
  }

  /**
   * Ends a `pause()`: continues the sandbox now, or, when the CPU throttle has
   * it in debt, as soon as the debt is paid (within a few ticks). False once
   * the watch has stopped: then send continueAll yourself.
   */
  resume(): boolean {
    if (this.stopped) return false;
    if (!this.userPaused) return true;
    this.userPaused = false;
    if (this.throttle) this.throttle.release();
    else if (!this.frozen) this.reaper.continueAll();
    return true;
  }

  /** Stops checking; a sandbox the throttle or the watch had stopped is continued (unless paused). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    const frozen = this.frozen;
    this.frozen = false;
    if (!this.userPaused && !this.violation) {
      if (this.throttle?.stopped) this.throttle.end();
      else if (frozen) this.reaper.continueAll();
    }
    this.reaper.close();
  }

  [Symbol.dispose](): void {
    this.stop();
  }
}

/**
 * Starts enforcing `limits` on the sandbox whose reaper is `reaperPid`
 * (`SandboxProcess.reaperPid`). Returns null when there is nothing to enforce.
 */
export function watchResources(reaperPid: number, options: WatchOptions): ResourceWatch | null {
  const hasMemory = options.maxMemory !== null && options.maxMemory !== undefined;
  const hasCpu = options.maxCpu !== null && options.maxCpu !== undefined;
  if (!hasMemory && !hasCpu) return null;
  return new ResourceWatch(reaperPid, options);
}
