// Clock arithmetic of the time module: the session offset, the supervisor's
// own clock readings, and which absolute deadlines to shift back.

import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import {
  CLOCK_REALTIME,
  CLOCK_TAI,
  FUTEX_CLOCK_REALTIME,
  FUTEX_CMD_MASK,
  FUTEX_LOCK_PI,
  FUTEX_LOCK_PI2,
  FUTEX_WAIT_BITSET,
  FUTEX_WAIT_REQUEUE_PI,
  REALTIME_CLOCKS,
  trySyscall,
} from '@sandlock/sys';

/** The clocks that read wall-clock time: the ones the module shifts. */
export const REALTIME_CLOCK_SET: ReadonlySet<number> = new Set(REALTIME_CLOCKS);

/**
 * The session's offset in whole seconds: floor(timeStart / 1000) − floor(now / 1000),
 * both in epoch milliseconds. Virtual realtime = real realtime + offset; it ticks.
 */
export function offsetSeconds(timeStartMs: number, nowMs: number = Date.now()): bigint {
  if (!Number.isFinite(timeStartMs)) throw new RangeError(`timeStart ${timeStartMs} is not finite`);
  return BigInt(Math.floor(timeStartMs / 1000)) - BigInt(Math.floor(nowMs / 1000));
}

export interface Timespec {
  sec: bigint;
  nsec: bigint;
}

// One buffer per thread (each worker has its own module instance), used synchronously.
const clockBuffer = Buffer.alloc(16);

/** clock_gettime(clock) in the supervisor: the time, or -errno. */
export function readClock(clock: number): Timespec | number {
  const result = trySyscall('clock_gettime', clock, clockBuffer);
  if (result < 0) return result;
  return { sec: clockBuffer.readBigInt64LE(0), nsec: clockBuffer.readBigInt64LE(8) };
}

/** Real realtime now, in seconds (the reference for the deadline heuristic). */
function realSeconds(clock: number): bigint {
  // CLOCK_REALTIME_ALARM may be refused without an RTC; it counts in realtime anyway.
  const now = readClock(clock === CLOCK_TAI ? CLOCK_TAI : CLOCK_REALTIME);
  if (typeof now === 'number') throw new Error(`sandlock: clock_gettime failed (${-now})`);
  return now.sec;
}

/**
 * Whether an absolute deadline `deadlineSec` on a realtime clock was computed
 * from the sandbox's (virtual) clock, and so must be shifted back by `offset`
 * before the kernel, which counts in real time, sees it: it lies closer to
 * virtual now than to real now. A deadline the module already shifted (a
 * caller re-submits the same struct), or one computed from real time, lies
 * closer to real now and is left alone. This is a guess: it holds while the
 * deadline is less than |offset|/2 away from now, which is the point of
 * `timeStart` (dates years away); with a small offset, a deadline further in
 * the future than |offset|/2 is taken for a real one.
 */
export function shouldShiftDeadline(
  deadlineSec: bigint,
  realNowSec: bigint,
  offset: bigint,
): boolean {
  if (offset === 0n) return false;
  const abs = (value: bigint) => (value < 0n ? -value : value);
  return abs(deadlineSec - (realNowSec + offset)) < abs(deadlineSec - realNowSec);
}

/** {@link shouldShiftDeadline} against the supervisor's clock now. */
export function shiftedDeadline(deadlineSec: bigint, clock: number, offset: bigint): bigint | null {
  return shouldShiftDeadline(deadlineSec, realSeconds(clock), offset) ? deadlineSec - offset : null;
}

/**
 * Whether a futex op waits with an absolute CLOCK_REALTIME timeout
 * (kernel/futex/syscalls.c, futex_init_timeout() and do_futex(): FUTEX_LOCK_PI
 * always; WAIT_BITSET, WAIT_REQUEUE_PI and LOCK_PI2 with FUTEX_CLOCK_REALTIME).
 */
export function futexRealtimeAbsolute(op: number): boolean {
  const cmd = op & FUTEX_CMD_MASK;
  if (cmd === FUTEX_LOCK_PI) return true;
  return (
    (op & FUTEX_CLOCK_REALTIME) !== 0 &&
    (cmd === FUTEX_WAIT_BITSET || cmd === FUTEX_WAIT_REQUEUE_PI || cmd === FUTEX_LOCK_PI2)
  );
}

/** The `clockid:` line of a timerfd's fdinfo (fs/timerfd.c, timerfd_show()); null if absent. */
export function parseTimerfdClock(fdinfo: string): number | null {
  const match = /^clockid:\s*(-?\d+)$/m.exec(fdinfo);
  return match ? Number(match[1]) : null;
}

/**
 * The clock of POSIX timer `id` in /proc/<pid>/timers (fs/proc/base.c, show_timer()).
 * A last line without its newline (a read cut short) is not trusted: `ClockID: 1` may be
 * the start of `ClockID: 11`.
 */
export function parsePosixTimerClock(timers: string, id: number): number | null {
  if (!timers.endsWith('\n')) timers = timers.slice(0, timers.lastIndexOf('\n') + 1);
  for (const block of timers.split(/^(?=ID:)/m)) {
    const idMatch = /^ID:\s*(-?\d+)$/m.exec(block);
    const clockMatch = /^ClockID:\s*(-?\d+)$/m.exec(block);
    if (idMatch && clockMatch && Number(idMatch[1]) === id) return Number(clockMatch[1]);
  }
  return null;
}

/** The clock of the caller's timerfd `fd`, or null when it cannot be read. */
export function timerfdClock(tid: number, fd: number): number | null {
  try {
    return parseTimerfdClock(readFileSync(`/proc/${tid}/fdinfo/${fd}`, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * What of /proc/<pid>/timers is read: ~900 timers (~70 bytes each). A process may make tens of
 * thousands (RLIMIT_SIGPENDING); the whole list at every call would let one
 * sandbox hold the worker its neighbours share. The kernel lists the newest
 * timers first (posix_timer_add() adds at the head of the list).
 */
export const TIMERS_READ_MAX = 64 * 1024;
const timersBuffer = Buffer.alloc(TIMERS_READ_MAX);

/**
 * The clock of the caller's POSIX timer `id` (needs CONFIG_CHECKPOINT_RESTORE), or null
 * when it cannot be read or is not among the first {@link TIMERS_READ_MAX} bytes.
 */
export function posixTimerClock(tid: number, id: number): number | null {
  let fd: number;
  try {
    fd = openSync(`/proc/${tid}/timers`, 'r');
  } catch {
    return null;
  }
  try {
    let length = 0;
    for (;;) {
      const got = readSync(fd, timersBuffer, length, timersBuffer.length - length, null);
      length += got;
      if (got === 0 || length === timersBuffer.length) break;
    }
    return parsePosixTimerClock(timersBuffer.toString('latin1', 0, length), id);
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}
