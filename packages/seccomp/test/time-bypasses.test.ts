// The argument conditions of the time module's notified syscalls (addNotifyBypasses): each
// case runs the compiled BPF program through the interpreter, on both architectures.

import { type Arch, AUDIT_ARCH, hasSyscall, syscallNumber } from '@sandlock/sys';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  actionValue,
  allow,
  compileSandboxFilter,
  notify,
  runFilter,
  sandboxRules,
} from '../src/index.js';
import { evaluateRules } from './support/reference-evaluator.js';
import { call, raw } from './support/seccomp-data.js';

const ALLOW = actionValue(allow);
const NOTIFY = actionValue(notify);
/**
 * The value the time module's vDSO trampolines used to put in an unused argument register, and
 * the filter let such calls through: any code of the sandbox could put it there too.
 */
const FORMER_MARKER = 0x534c4b54n;

const TIME_SYSCALLS = [
  'clock_gettime',
  'gettimeofday',
  'time',
  'brk',
  'clock_nanosleep',
  'timerfd_settime',
  'timer_settime',
  'futex',
  'futex_waitv',
  'mq_timedsend',
  'mq_timedreceive',
];

describe.each(['x86_64', 'aarch64'] as const)('time bypasses on %s', (arch: Arch) => {
  const notified = TIME_SYSCALLS.filter((name) => hasSyscall(name, arch));
  const { instructions } = compileSandboxFilter({ arch, notify: notified });
  const verdict = (name: string, args: readonly (number | bigint)[] = []) =>
    runFilter(instructions, call(arch, name, args));
  const plain = compileSandboxFilter({ arch }).instructions;
  const unsupervised = (name: string, args: readonly (number | bigint)[] = []) =>
    runFilter(plain, call(arch, name, args));

  it('clock_gettime: only realtime clocks are notified, whatever the other registers hold', () => {
    for (const clock of [0, 5, 8, 11]) {
      expect(verdict('clock_gettime', [clock, 0x1000]), `clock ${clock}`).toBe(NOTIFY);
      expect(verdict('clock_gettime', [clock, 0x1000, FORMER_MARKER]), `marked ${clock}`).toBe(
        NOTIFY,
      );
    }
    // MONOTONIC, PROCESS_CPUTIME, THREAD_CPUTIME, MONOTONIC_RAW, MONOTONIC_COARSE, BOOTTIME,
    // BOOTTIME_ALARM, and a CPU clock of a pid (negative ids).
    for (const clock of [1, 2, 3, 4, 6, 7, 9, -6, -2]) {
      expect(verdict('clock_gettime', [clock, 0x1000]), `clock ${clock}`).toBe(ALLOW);
    }
    // clockid_t is an int: upper register bits do not make a realtime clock another one.
    expect(verdict('clock_gettime', [0x1_0000_0000n, 0x1000])).toBe(NOTIFY);
  });

  it('gettimeofday and time are always notified (aarch64 has no time)', () => {
    for (const args of [
      [0x1000, 0],
      [0x1000, 0, FORMER_MARKER],
      [0x1000, FORMER_MARKER],
      [0, 0],
    ]) {
      expect(verdict('gettimeofday', args)).toBe(NOTIFY);
    }
    expect(hasSyscall('time', arch)).toBe(arch === 'x86_64');
    if (arch !== 'x86_64') return;
    for (const args of [[0], [0x1000, FORMER_MARKER], [0x1000, 0, FORMER_MARKER]]) {
      expect(verdict('time', args)).toBe(NOTIFY);
    }
  });

  it('no register value lets a realtime clock read pass', () => {
    const word = fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn });
    const reads = fc.oneof(
      fc.tuple(fc.constant('clock_gettime'), fc.constantFrom(0n, 5n, 8n, 11n)),
      fc.tuple(
        fc.constantFrom(...notified.filter((n) => n === 'gettimeofday' || n === 'time')),
        word,
      ),
    );
    fc.assert(
      fc.property(reads, fc.array(word, { minLength: 5, maxLength: 5 }), ([name, first], rest) => {
        expect(verdict(name, [first, ...rest])).toBe(NOTIFY);
      }),
      { numRuns: 2000 },
    );
  });

  it('brk is notified only for the query brk(0)', () => {
    expect(verdict('brk', [0])).toBe(NOTIFY);
    expect(verdict('brk', [0x5555_5555_0000n])).toBe(ALLOW);
    // The address is 64 bits wide: a zero low half is not a query.
    expect(verdict('brk', [0x1_0000_0000n])).toBe(ALLOW);
  });

  it.each(['clock_nanosleep', 'timerfd_settime', 'timer_settime'])(
    '%s is notified only with TIMER_ABSTIME',
    (name) => {
      expect(verdict(name, [0, 0, 0x1000])).toBe(ALLOW);
      expect(verdict(name, [0, 1, 0x1000])).toBe(NOTIFY);
      expect(verdict(name, [1, 1, 0x1000])).toBe(NOTIFY); // the clock is the handler's business
      expect(verdict(name, [0, 2, 0x1000])).toBe(ALLOW); // TFD_TIMER_CANCEL_ON_SET alone
      expect(verdict(name, [0, 0x1_0000_0000n, 0x1000])).toBe(ALLOW); // int flags
    },
  );

  it('futex: only absolute realtime waits are notified', () => {
    const PRIVATE = 128;
    const REALTIME = 256;
    const notifiedOps = [6, 9 | REALTIME, 11 | REALTIME, 13 | REALTIME];
    for (const op of notifiedOps) {
      expect(verdict('futex', [0x1000, op]), `op ${op}`).toBe(NOTIFY);
      expect(verdict('futex', [0x1000, op | PRIVATE]), `op ${op} private`).toBe(NOTIFY);
    }
    // WAIT, WAKE, FD, REQUEUE, CMP_REQUEUE, WAKE_OP, (LOCK_PI), UNLOCK_PI, TRYLOCK_PI,
    // WAIT_BITSET, WAKE_BITSET, WAIT_REQUEUE_PI, CMP_REQUEUE_PI, LOCK_PI2: without
    // FUTEX_CLOCK_REALTIME (except LOCK_PI) every one passes, private or not.
    for (const cmd of [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13]) {
      for (const flags of [0, PRIVATE]) {
        expect(verdict('futex', [0x1000, cmd | flags]), `op ${cmd | flags}`).toBe(ALLOW);
      }
    }
    // FUTEX_WAIT with FUTEX_CLOCK_REALTIME takes a relative timeout.
    expect(verdict('futex', [0x1000, 0 | REALTIME | PRIVATE])).toBe(ALLOW);
    expect(verdict('futex', [0x1000, 1 | REALTIME])).toBe(ALLOW);
    // The op is an int.
    expect(verdict('futex', [0x1000, 0x1_0000_0000n])).toBe(ALLOW);
    expect(verdict('futex', [0x1000, 0x1_0000_0000n | BigInt(9 | REALTIME)])).toBe(NOTIFY);
  });

  it('futex_waitv is notified only on CLOCK_REALTIME', () => {
    expect(verdict('futex_waitv', [0x1000, 1, 0, 0x2000, 0])).toBe(NOTIFY);
    expect(verdict('futex_waitv', [0x1000, 1, 0, 0x2000, 1])).toBe(ALLOW);
    expect(verdict('futex_waitv', [0x1000, 1, 0, 0x2000, 0x1_0000_0000n])).toBe(NOTIFY);
  });

  it.each(['mq_timedsend', 'mq_timedreceive'])('%s is notified only with a timeout', (name) => {
    expect(verdict(name, [3, 0x1000, 8, 0, 0x2000])).toBe(NOTIFY);
    expect(verdict(name, [3, 0x1000, 8, 0, 0])).toBe(ALLOW);
    expect(verdict(name, [3, 0x1000, 8, 0, 0x1_0000_0000n])).toBe(NOTIFY);
  });

  it('adds nothing for syscalls that are not notified', () => {
    for (const name of notified) {
      expect(unsupervised(name, [0, 1, FORMER_MARKER]), name).toBe(ALLOW);
    }
    const onlyFutex = compileSandboxFilter({ arch, notify: ['futex'] }).instructions;
    expect(runFilter(onlyFutex, call(arch, 'brk', [0]))).toBe(ALLOW);
    expect(runFilter(onlyFutex, call(arch, 'clock_gettime', [0, 0]))).toBe(ALLOW);
    expect(runFilter(onlyFutex, call(arch, 'futex', [0, 9 | 256]))).toBe(NOTIFY);
  });

  it('agrees with the rule data on random calls', () => {
    const rules = sandboxRules({ arch, notify: notified });
    const word = fc.oneof(
      fc.constantFrom(
        0n,
        1n,
        5n,
        6n,
        8n,
        11n,
        0x109n,
        0x189n,
        0x10dn,
        0x18bn,
        0x86n,
        FORMER_MARKER,
      ),
      fc.constantFrom(0x1_0000_0000n, 0xffff_ffffn, 0xffff_ffff_ffff_fffen),
      fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn }),
    );
    const data = fc
      .record({
        name: fc.constantFrom(...notified, 'read', 'getpid'),
        args: fc.array(word, { minLength: 6, maxLength: 6 }),
      })
      .map(({ name, args }) => raw(AUDIT_ARCH[arch], syscallNumber(name, arch), args));
    fc.assert(
      fc.property(data, (input) => {
        expect(runFilter(instructions, input)).toBe(evaluateRules(rules, input));
      }),
      { numRuns: 2000 },
    );
  });
});
