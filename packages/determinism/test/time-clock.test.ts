// The time module's arithmetic and parsing, and its fail-closed answers, without a sandbox.

import { spawn } from 'node:child_process';
import { hostArch } from '@sandlock/sys';
import { describe, expect, it } from 'vitest';
import { sessionPolicy } from '../../../tools/test-support/supervised.js';
import timeModule, { TIME_HOOK_SYSCALLS, TIME_SYSCALLS } from '../src/time.js';
import {
  futexRealtimeAbsolute,
  offsetSeconds,
  parsePosixTimerClock,
  parseTimerfdClock,
  shouldShiftDeadline,
} from '../src/time-clock.js';

describe('offsetSeconds', () => {
  it('is floor(timeStart/1000) - floor(now/1000)', () => {
    expect(offsetSeconds(946_684_800_000, 1_700_000_000_999)).toBe(946_684_800n - 1_700_000_000n);
    expect(offsetSeconds(946_684_800_999, 1_700_000_000_000)).toBe(946_684_800n - 1_700_000_000n);
    expect(offsetSeconds(-1, 0)).toBe(-1n); // before 1970: floor, not truncation
    expect(offsetSeconds(5_000, 5_000)).toBe(0n);
    expect(() => offsetSeconds(Number.NaN)).toThrow(RangeError);
  });
});

describe('shouldShiftDeadline', () => {
  const real = 1_700_000_000n;
  const offset = -750_000_000n; // a start in 2000
  const virtual = real + offset;

  it('shifts deadlines computed from the virtual clock', () => {
    expect(shouldShiftDeadline(virtual + 1n, real, offset)).toBe(true);
    expect(shouldShiftDeadline(virtual - 3600n, real, offset)).toBe(true); // already past
    expect(shouldShiftDeadline(virtual + 86_400n * 365n, real, offset)).toBe(true);
  });

  it('leaves shifted, real and far-away deadlines alone', () => {
    // What the module wrote last time, plus the caller's interval: near real now.
    expect(shouldShiftDeadline(virtual + 1n - offset + 1n, real, offset)).toBe(false);
    expect(shouldShiftDeadline(real + 10n, real, offset)).toBe(false);
    expect(shouldShiftDeadline(real, real, 0n)).toBe(false);
    // Half-way between: left alone.
    expect(shouldShiftDeadline(real + offset / 2n, real, offset)).toBe(false);
  });

  it('works for a start in the future too', () => {
    const ahead = 3_000_000_000n - real;
    expect(shouldShiftDeadline(real + ahead + 5n, real, ahead)).toBe(true);
    expect(shouldShiftDeadline(real + 5n, real, ahead)).toBe(false);
  });

  it('mistakes deadlines further than |offset|/2 ahead for real ones (small offsets)', () => {
    // Documented limit: offset -10 s, a deadline 60 s ahead of the virtual clock.
    expect(shouldShiftDeadline(real - 10n + 60n, real, -10n)).toBe(false);
    expect(shouldShiftDeadline(real - 10n + 4n, real, -10n)).toBe(true);
  });
});

describe('futexRealtimeAbsolute', () => {
  it('holds for LOCK_PI and the realtime variants of WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2', () => {
    for (const op of [6, 6 | 128, 9 | 256, 9 | 256 | 128, 11 | 256, 13 | 256 | 128]) {
      expect(futexRealtimeAbsolute(op), `op ${op}`).toBe(true);
    }
    for (const op of [0, 0 | 256, 1, 9, 9 | 128, 11, 13, 7, 8, 10 | 256]) {
      expect(futexRealtimeAbsolute(op), `op ${op}`).toBe(false);
    }
  });
});

describe('clock of a timer', () => {
  it('reads a timerfd fdinfo', () => {
    const fdinfo =
      'pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\nclockid: 1\nticks: 0\nsettime flags: 01\nit_value: (0, 0)\nit_interval: (0, 0)\n';
    expect(parseTimerfdClock(fdinfo)).toBe(1);
    expect(parseTimerfdClock('pos:\t0\nflags:\t02\n')).toBeNull();
  });

  it('reads /proc/<pid>/timers', () => {
    const timers =
      'ID: 0\nsignal: 10/0000000000000000\nnotify: signal/pid.77\nClockID: 1\nID: 1\nsignal: 14/0000000000000000\nnotify: signal/pid.77\nClockID: 0\n';
    expect(parsePosixTimerClock(timers, 0)).toBe(1);
    expect(parsePosixTimerClock(timers, 1)).toBe(0);
    expect(parsePosixTimerClock(timers, 2)).toBeNull();
    expect(parsePosixTimerClock('', 0)).toBeNull();
  });
});

describe('the module', () => {
  it('lists only syscalls of this arch, with a handler for each', () => {
    expect(timeModule.syscalls).toEqual([...TIME_SYSCALLS, ...TIME_HOOK_SYSCALLS]);
    for (const name of timeModule.syscalls)
      expect(timeModule.handlers?.[name], name).toBeTypeOf('function');
    if (hostArch() === 'x86_64') expect(TIME_HOOK_SYSCALLS).toContain('arch_prctl');
    else expect(TIME_HOOK_SYSCALLS).toContain('sched_getaffinity');
  });

  /** A handler context for `pid`, as much of it as the hooks use. */
  function fakeContext(pid: number, valid: boolean, sessionId: number) {
    return {
      pid,
      syscall: 'set_tid_address',
      arch: hostArch(),
      args: [0n, 0n, 0n, 0n, 0n, 0n],
      valid: () => valid,
      session: {
        id: sessionId,
        policy: sessionPolicy({ timeStart: 0 }),
        reaperPid: 1,
        programPid: pid,
      },
    } as never;
  }

  it('kills the sandbox when a live caller cannot be patched', async () => {
    // A pid that is gone while its notification still counts as valid: /proc/<pid>/auxv fails.
    const child = spawn('/bin/true');
    const pid = child.pid!;
    await new Promise((resolve) => child.on('close', resolve));
    const answer = timeModule.handlers!.set_tid_address!(fakeContext(pid, true, 9001));
    expect(answer).toMatchObject({ kind: 'kill' });
    expect((answer as { reason: string }).reason).toMatch(
      /cannot patch the vDSO.*clock would be real/,
    );
  });

  it('answers nothing special for a caller that is gone', async () => {
    const child = spawn('/bin/true');
    const pid = child.pid!;
    await new Promise((resolve) => child.on('close', resolve));
    expect(timeModule.handlers!.set_tid_address!(fakeContext(pid, false, 9002))).toEqual({
      kind: 'continue',
    });
  });
});
