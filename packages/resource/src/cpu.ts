import { readProc, type TreeEntry } from '@sandlock/sys';
import { CLOCK_TICKS_PER_SECOND, cpuTicks } from './proc.js';

/** What the throttle needs to act on a sandbox (a Reaper fits). */
export interface StopContinue {
  stopAll(): boolean;
  continueAll(): boolean;
}

export interface CpuThrottleOptions {
  /** How often the throttle looks and decides, in ms (default 20). */
  tick?: number;
  /**
   * How much unused share an idle sandbox may save up, in ms of wall time at
   * its share (default 100: at 25 % it may then run 25 ms of CPU at once).
   */
  burst?: number;
}

/**
 * CPU time the sandbox has used so far, in ms: what its live processes used
 * (with their threads and the children they reaped) plus what the reaper
 * reaped. Every CPU second is counted once: the kernel moves a process's time
 * into its parent's cutime/cstime when it is reaped. Processes reaped
 * automatically (SIGCHLD ignored) take their time with them, so the figure can
 * be low; the throttle's stop phases still bound what such a sandbox gets.
 */
export function sandboxCpuMs(reaperPid: number, processes: readonly TreeEntry[]): number {
  const reaper = readProc(`/proc/${reaperPid}/stat`);
  let ticks = reaper === null ? 0 : cpuTicks(reaper).reaped;
  for (const entry of processes) {
    const stat = entry.stat ?? readProc(`/proc/${entry.pid}/stat`);
    if (stat === null) continue;
    const times = cpuTicks(stat);
    ticks += times.own + times.reaped;
  }
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

function checkShare(percent: number): void {
  if (!(Number.isFinite(percent) && percent > 0)) {
    throw new RangeError(`sandlock: invalid CPU share ${percent}: expected a percentage above 0`);
  }
}

/**
 * Holds a sandbox to `percent` of one CPU (200 = two CPUs) with a token
 * bucket: the sandbox earns `percent`/100 ms of CPU per ms of wall time, spends
 * what it measurably used (all its processes and threads together), and is
 * stopped (REAPER_SIGNAL.stopAll) while it is in debt and continued once the
 * debt is paid. A single busy thread at 25 % runs one tick and stops three. An
 * idle sandbox keeps its credit and is never stopped. Accurate over time, not
 * within one tick: the measured time includes the tick that went over.
 *
 * `hold()` / `release()` are for a pause by the user: while held the throttle
 * never continues the sandbox, and on release it continues it only if it has
 * credit.
 */
export class CpuThrottle {
  readonly tick: number;
  private share: number;
  private cap: number;
  private readonly burst: number;
  private credit: number;
  private lastCpu: number | null = null;
  private lastTime = 0;
  private held = false;
  /** Whether the throttle has the sandbox stopped. */
  stopped = false;
  /** How many times it stopped the sandbox. */
  stops = 0;

  constructor(
    public percent: number,
    private readonly control: StopContinue,
    options: CpuThrottleOptions = {},
  ) {
    checkShare(percent);
    this.tick = options.tick ?? 20;
    this.burst = options.burst ?? 100;
    this.share = percent / 100;
    this.cap = this.share * this.burst;
    this.credit = this.cap;
  }

  /**
   * Changes the share from now on: the credit saved up stays, within the new
   * cap; a debt stays to be paid at the new rate.
   */
  setPercent(percent: number): void {
    checkShare(percent);
    this.percent = percent;
    this.share = percent / 100;
    this.cap = this.share * this.burst;
    this.credit = Math.min(this.credit, this.cap);
  }

  /** The CPU ms the sandbox may still use before it is stopped (negative: debt). */
  get balance(): number {
    return this.credit;
  }

  /**
   * Takes the sandbox's cumulative CPU time `cpuMs` at time `now` (ms) and
   * stops or continues it.
   */
  update(cpuMs: number, now: number): void {
    if (this.lastCpu === null) {
      this.lastCpu = cpuMs;
      this.lastTime = now;
      return;
    }
    const used = Math.max(0, cpuMs - this.lastCpu);
    // Never let the total go back (a process read just before it was reaped
    // and its parent's cutime read after it would count twice, and the next
    // reading would be lower).
    this.lastCpu = Math.max(this.lastCpu, cpuMs);
    const elapsed = Math.max(0, now - this.lastTime);
    this.lastTime = now;
    this.credit = Math.min(this.cap, this.credit + elapsed * this.share - used);
    if (this.held) return;
    if (this.credit > 0) {
      if (this.stopped) {
        this.control.continueAll();
        this.stopped = false;
      }
    } else {
      // Sent on every tick in debt, not only on the first: a process forked
      // while the stop was being delivered would otherwise run on.
      if (!this.stopped) this.stops += 1;
      this.control.stopAll();
      this.stopped = true;
    }
  }

  /** The user paused the sandbox: never continue it until `release()`. */
  hold(): void {
    this.held = true;
  }

  /** The user resumed: continue the sandbox now if it has credit, else once it has. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    if (this.credit > 0) {
      this.control.continueAll();
      this.stopped = false;
    } else {
      this.stopped = true;
    }
  }

  /** Whether `hold()` is in force. */
  get holding(): boolean {
    return this.held;
  }

  /** Lets the sandbox run unthrottled again (unless held). */
  end(): void {
    if (this.stopped && !this.held) this.control.continueAll();
    this.stopped = false;
  }
}
