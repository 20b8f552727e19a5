/** Node's timers fire at once past 2^31-1 ms (about 24.8 days): longer waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `callback` once `ms` milliseconds have passed, however long that is;
 * returns a function that cancels it. The timer does not keep the process
 * alive on its own (`unref`) unless `keepAlive`.
 */
export function afterDelay(ms: number, callback: () => void, keepAlive = true): () => void {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`sandlock: a delay must be a finite number of milliseconds, got ${ms}`);
  }
  const deadline = Date.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const left = deadline - Date.now();
    if (left <= 0) {
      timer = undefined;
      callback();
      return;
    }
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    if (!keepAlive) timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}

const UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };

/**
 * A duration as timeout(1) writes them: a number of seconds, possibly
 * fractional, with an optional unit `s`, `m`, `h` or `d` (`10s`, `5m`, `1.5`).
 * Returns milliseconds, or null when `text` is not such a duration or is not
 * positive.
 */
export function parseDuration(text: string): number | null {
  const match = /^(\d+(?:\.\d*)?|\.\d+)([smhd]?)$/.exec(text.trim());
  if (!match) return null;
  const ms = Number(match[1]) * UNITS[match[2]!]! * 1000;
  return Number.isFinite(ms) && ms > 0 ? ms : null;
}
