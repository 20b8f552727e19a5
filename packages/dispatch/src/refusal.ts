/**
 * Something a module refused on the sandbox's behalf, as it reports it
 * ({@link CallContext.refused}).
 */
export interface Refusal {
  /**
   * What was refused, in words: `open /proc/1/status: process 1 is outside
   * the sandbox`, `fork (5 processes)`. A function is called only when the
   * session reports refusals (for words that cost something to find).
   */
  readonly what: string | (() => string);
  /** The rule that refused it: a policy field and its value (`maxProcesses 5`), or the module's reason. */
  readonly rule: string;
}

/** A refusal as the session reports it. */
export interface RefusalReport {
  readonly what: string;
  readonly rule: string;
  /** The module that refused (null: the supervisor itself). */
  readonly module: string | null;
  /** The syscall refused (null: none, e.g. a kill). */
  readonly syscall: string | null;
  /** The calling thread (null: none). */
  readonly pid: number | null;
  /**
   * Refusals of this session not reported just before this one: a session
   * reports at most {@link REFUSAL_BURST} at once and {@link REFUSAL_RATE}
   * a second after that, so a sandbox cannot flood the host.
   */
  readonly dropped: number;
}

/** The most refusals a session reports at once. */
export const REFUSAL_BURST = 100;
/** Refusals per second a session reports past the burst. */
export const REFUSAL_RATE = 50;

/** A token bucket: whether one more refusal may be reported now, and how many were not. */
export class RefusalBudget {
  private tokens = REFUSAL_BURST;
  private at = 0;
  /** Refusals not reported since the last one that was. */
  dropped = 0;

  take(now: number): boolean {
    if (this.at !== 0) {
      this.tokens = Math.min(REFUSAL_BURST, this.tokens + ((now - this.at) * REFUSAL_RATE) / 1000);
    }
    this.at = now;
    if (this.tokens < 1) {
      this.dropped++;
      return false;
    }
    this.tokens -= 1;
    return true;
  }
}

export function refusalWords(refusal: Refusal): string {
  return typeof refusal.what === 'function' ? refusal.what() : refusal.what;
}
