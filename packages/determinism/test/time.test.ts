// The time module against the real kernel: programs run confined and supervised
// with timeStart 2000-01-01T00:00:00Z and must see that date, ticking, while
// monotonic clocks, sleeps and timers keep real durations.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Supervisor } from '@sandlock/dispatch';
import { hostArch } from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionPolicy } from '../../../tools/test-support/supervised.js';
import { RANDOM_MODULE, TIME_MODULE } from '../src/index.js';
import { parseVdsoSymbols } from '../src/vdso-elf.js';
import { readVdsoImage } from '../src/vdso-inspect.js';
import { planVdsoPatch, vdsoLayout } from '../src/vdso-patch.js';
import { trampolineCode } from '../src/vdso-trampolines.js';
import { DEFAULT_READ, type Finished, PYTHON, type RunOptions, run } from './helpers.js';

const START_MS = Date.UTC(2000, 0, 1);
const START = START_MS / 1000;
const timed = {
  policy: { timeStart: START_MS },
  env: { PATH: '/usr/bin:/bin', LANG: 'C', TZ: 'UTC' },
};
const arch = hostArch();
const x86 = arch === 'x86_64';

let supervisor: Supervisor;
const errors: unknown[] = [];
beforeAll(async () => {
  supervisor = await Supervisor.start({
    modules: [{ module: TIME_MODULE }],
    onError: (error) => errors.push(error),
  });
});
afterAll(async () => {
  await supervisor?.close();
  expect(errors).toEqual([]);
});

async function ok(
  argv: readonly string[],
  options: Pick<RunOptions, 'policy' | 'env'> = timed,
  fsRead?: readonly string[],
) {
  const result: Finished = await run(supervisor, argv, { ...options, fsRead });
  if (result.code !== 0) {
    throw new Error(`${argv.join(' ')} exited ${result.code ?? result.signal}: ${result.stderr}`);
  }
  return result.stdout;
}
const py = (...lines: string[]) => [PYTHON, '-c', lines.join('\n')];
const numbers = (text: string) => text.trim().split(/\s+/).map(Number);
/**
 * Seconds a test's sandbox may have run: generous, so that a loaded machine cannot reach it,
 * while a clock left unshifted or shifted twice is off by years.
 */
const SLACK = 600;
/** Seconds since START, less than SLACK: the sandbox started the clock at START. */
function expectVirtualNow(seconds: number) {
  expect(seconds).toBeGreaterThanOrEqual(START);
  expect(seconds).toBeLessThan(START + SLACK);
}
const monotonicNow = () => Number(process.hrtime.bigint()) / 1e9;
/** Whether this machine's __vdso_clock_gettime takes the detour (else every clock read is a syscall). */
function detourable(): boolean {
  const layout = vdsoLayout(process.pid)!;
  return planVdsoPatch(
    parseVdsoSymbols(layout.image),
    { arch, offsetSeconds: 0n, getrandom: false },
    layout,
  ).some((write) => write.kind === 'clockGettimeDetour');
}

// ctypes prelude for the libc calls Python does not wrap.
const CTYPES = [
  'import ctypes, ctypes.util, os, time',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'class timespec(ctypes.Structure):',
  '    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]',
  'class itimerspec(ctypes.Structure):',
  '    _fields_ = [("interval", timespec), ("value", timespec)]',
  'class timeval(ctypes.Structure):',
  '    _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long)]',
  'def now(clock):',
  '    ts = timespec()',
  '    assert libc.clock_gettime(clock, ctypes.byref(ts)) == 0',
  '    return ts.sec + ts.nsec / 1e9',
  'def at(seconds):',
  '    return timespec(int(seconds), int((seconds % 1) * 1e9))',
];

describe('module', () => {
  it('is on with timeStart or randomSeed, off otherwise', () => {
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({}) })).toEqual([]);
    expect(
      supervisor.notifiedSyscalls({ policy: sessionPolicy({ timeStart: null, randomSeed: null }) }),
    ).toEqual([]);
    const on = supervisor.notifiedSyscalls({ policy: sessionPolicy({ timeStart: START_MS }) });
    for (const name of ['clock_gettime', 'gettimeofday', 'clock_nanosleep', 'futex', 'brk']) {
      expect(on).toContain(name);
    }
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({ randomSeed: 1n }) })).toEqual(on);
  });
});

describe.runIf(x86)('wall clock through the vDSO', () => {
  it('date +%Y prints 2000', async () => {
    expect(await ok(['/bin/date', '+%Y'])).toBe('2000\n');
  });

  it('Python time.time() and datetime.now() start at timeStart and tick', async () => {
    const out = await ok(
      py(
        'import time, datetime',
        'outer = time.monotonic()',
        'a = time.time()',
        'inner = time.monotonic()',
        'time.sleep(0.3)',
        'inner = time.monotonic() - inner',
        'b = time.time()',
        'outer = time.monotonic() - outer',
        'print(a, b, inner, outer, datetime.datetime.now().year, datetime.datetime.now(datetime.timezone.utc).year)',
      ),
    );
    const [a, b, inner, outer, year, utcYear] = numbers(out);
    expectVirtualNow(a!);
    // It ticks as CLOCK_MONOTONIC does: between the monotonic spans read inside and around
    // the two reads (however long a loaded machine made them), less NTP's slewing.
    expect(inner).toBeGreaterThanOrEqual(0.3);
    expect(b! - a!).toBeGreaterThanOrEqual(inner! - 0.001);
    expect(b! - a!).toBeLessThanOrEqual(outer! + 0.001);
    expect(year).toBe(2000);
    expect(utcYear).toBe(2000);
  });

  it('every realtime clock is shifted; time() and gettimeofday() too, with tz NULL or not', async () => {
    const out = await ok(
      py(
        ...CTYPES,
        'tv = timeval()',
        'assert libc.gettimeofday(ctypes.byref(tv), None) == 0',
        'tz = (ctypes.c_int * 2)(7, 7)',
        'tv2 = timeval()',
        'assert libc.gettimeofday(ctypes.byref(tv2), ctypes.byref(tz)) == 0',
        'assert libc.gettimeofday(None, ctypes.byref(tz)) == 0',
        'libc.time.restype = ctypes.c_long',
        't = ctypes.c_long(0)',
        'r = libc.time(ctypes.byref(t))',
        'print(now(0), now(5), now(8) if libc.clock_gettime(8, ctypes.byref(timespec())) == 0 else now(0), now(11), tv.sec, tv2.sec, r, t.value, libc.time(None), tz[0] + tz[1] < 14)',
      ),
    );
    const values = numbers(out.replace('True', '1').replace('False', '0'));
    for (const value of values.slice(0, 3)) expectVirtualNow(value);
    // CLOCK_TAI: realtime + the kernel's TAI offset (0 unless NTP set it, 37 s today).
    expect(values[3]! - START).toBeLessThan(SLACK + 37);
    expect(values[3]!).toBeGreaterThanOrEqual(START);
    for (const value of values.slice(4, 9)) expectVirtualNow(value);
    // tz is the kernel's (zero unless set), never the shifted seconds (sandlock 0.6 wrote there).
    expect(values[9]).toBe(1);
  });

  it('errors of the vDSO calls are returned untouched', async () => {
    // An unknown clock: the kernel's code (detour) or the syscall (trampoline) says EINVAL.
    const out = await ok(
      py(
        ...CTYPES,
        'r1 = libc.clock_gettime(12345, ctypes.byref(timespec())); e1 = ctypes.get_errno()',
        'print(r1, e1)',
      ),
    );
    expect(numbers(out)).toEqual([-1, 22]);
  });

  it('a bad pointer to gettimeofday or time faults as without a sandbox, or fails EFAULT', async () => {
    // glibc's gettimeofday and time are IFUNCs that resolve to the vDSO function itself. Over
    // the detour they write through the pointer as the kernel's vDSO code does (SIGSEGV); where
    // the vDSO makes the syscall instead, the caller sees the raw -EFAULT.
    for (const call of [
      'libc.gettimeofday(ctypes.c_void_p(8), None)',
      'libc.time(ctypes.c_void_p(8))',
    ]) {
      const argv = py(
        'import ctypes',
        'libc = ctypes.CDLL(None)',
        'libc.time.restype = ctypes.c_long',
        `print(${call})`,
      );
      const confined = await run(supervisor, argv, timed);
      if (detourable()) {
        const bare = spawnSync(argv[0]!, argv.slice(1));
        expect(bare.signal, call).toBe('SIGSEGV');
        expect(confined.signal, call).toBe('SIGSEGV');
      } else {
        expect(confined.stdout.trim(), call).toBe('-14');
      }
    }
  });

  it('monotonic clocks are not shifted', async () => {
    const before = monotonicNow();
    const out = await ok(
      py(...CTYPES, 'print(time.monotonic(), now(1), now(4), now(6), now(7) > 0)'),
    );
    const after = monotonicNow();
    const [monotonic, raw, , coarse] = numbers(out.replace('True', '1'));
    for (const value of [monotonic!, coarse!]) {
      expect(value).toBeGreaterThanOrEqual(before - 0.05);
      expect(value).toBeLessThanOrEqual(after + 0.05);
    }
    // CLOCK_MONOTONIC_RAW runs without NTP slewing: close, not equal (500 ppm at most).
    const slew = 5e-4 * after + 0.05;
    expect(raw!).toBeGreaterThanOrEqual(before - slew);
    expect(raw!).toBeLessThanOrEqual(after + slew);
  });

  it('Node Date.now()', async () => {
    const out = await ok([
      '/usr/bin/node',
      '-e',
      'console.log(Date.now() / 1000, new Date().getUTCFullYear())',
    ]);
    const [now, year] = numbers(out);
    expectVirtualNow(now!);
    expect(year).toBe(2000);
  });

  describe('a static Go program', () => {
    let dir: string | undefined;
    let binary: string | undefined;
    let skip: string | undefined;
    beforeAll(() => {
      const go = ['/usr/bin/go', '/usr/local/go/bin/go'].find((path) => existsSync(path));
      if (!go) {
        skip = 'go is not installed';
        return;
      }
      dir = mkdtempSync(join(tmpdir(), 'sandlock-time-go-'));
      writeFileSync(join(dir, 'go.mod'), 'module timenow\n\ngo 1.19\n');
      writeFileSync(
        join(dir, 'main.go'),
        'package main\n\nimport (\n\t"fmt"\n\t"time"\n)\n\nfunc main() {\n\tfmt.Println(time.Now().Unix(), time.Now().Year())\n}\n',
      );
      const build = spawnSync(go, ['build', '-o', 'timenow', '.'], {
        cwd: dir,
        env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' },
        encoding: 'utf8',
      });
      if (build.status !== 0) skip = `go build failed: ${build.stderr}`;
      else binary = join(dir, 'timenow');
    });
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('prints a time in 2000', async (context) => {
      if (skip) {
        console.warn(`time: skipping the Go test: ${skip}`);
        context.skip();
      }
      const out = await ok([binary!], timed, [...DEFAULT_READ, dir!]);
      const [now, year] = numbers(out);
      expectVirtualNow(now!);
      expect(year).toBe(2000);
    });
  });

  describe('a static glibc program', () => {
    let dir: string | undefined;
    let skip: string | undefined;
    beforeAll(() => {
      if (!existsSync('/usr/bin/gcc')) {
        skip = 'gcc is not installed';
        return;
      }
      dir = mkdtempSync(join(tmpdir(), 'sandlock-time-static-'));
      writeFileSync(
        join(dir, 'now.c'),
        [
          '#include <stdio.h>',
          '#include <sys/time.h>',
          '#include <time.h>',
          'int main(void) {',
          '  struct timespec ts; struct timeval tv;',
          '  clock_gettime(CLOCK_REALTIME, &ts); gettimeofday(&tv, NULL);',
          '  printf("%ld %ld %ld\\n", (long)ts.tv_sec, (long)tv.tv_sec, (long)time(NULL));',
          '  return 0;',
          '}',
          '',
        ].join('\n'),
      );
      const build = spawnSync('/usr/bin/gcc', ['-static', '-O1', '-o', 'now', 'now.c'], {
        cwd: dir,
        encoding: 'utf8',
      });
      if (build.status !== 0) skip = `gcc -static failed (no libc.a?): ${build.stderr}`;
    });
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('reads 2000 through the vDSO (patched at its first brk(0))', async (context) => {
      if (skip) {
        console.warn(`time: skipping the static glibc test: ${skip}`);
        context.skip();
      }
      const out = await ok([join(dir!, 'now')], timed, [...DEFAULT_READ, dir!]);
      for (const value of numbers(out)) expectVirtualNow(value);
    });
  });

  it('a forked child and an exec’d grandchild are shifted', async () => {
    const out = await ok([
      '/bin/bash',
      '-c',
      `date +%Y; ${PYTHON} -c 'import os, time
pid = os.fork()
if pid == 0:
    print("child", int(time.time()), flush=True); os._exit(0)
os.waitpid(pid, 0)
print("parent", int(time.time()))'; /bin/sh -c 'date +%s'`,
    ]);
    const lines = out.trim().split('\n');
    expect(lines[0]).toBe('2000');
    const child = lines.find((line) => line.startsWith('child'));
    const parent = lines.find((line) => line.startsWith('parent'));
    expectVirtualNow(Number(child?.split(' ')[1]));
    expectVirtualNow(Number(parent?.split(' ')[1]));
    expectVirtualNow(Number(lines.at(-1)));
  });

  it('an exec from a second thread and a posix_spawn (vfork) child are shifted', async () => {
    // After a non-leader thread's execve the process continues under the leader's pid, not
    // the caller's tid; posix_spawn runs the child on the parent's memory until it execs.
    const out = await ok(
      py(
        'import os, threading, sys',
        'pid = os.posix_spawn("/bin/date", ["date", "+spawn %s"], {})',
        'os.waitpid(pid, 0)',
        'sys.stdout.flush()',
        'threading.Thread(target=lambda: os.execv("/bin/date", ["date", "+thread %s"])).start()',
        'threading.Event().wait(10)',
      ),
    );
    const seconds = (label: string) =>
      Number(
        out
          .split('\n')
          .find((line) => line.startsWith(label))
          ?.split(' ')[1],
      );
    expectVirtualNow(seconds('spawn'));
    expectVirtualNow(seconds('thread'));
  });

  it('a JVM', async (context) => {
    const java = '/usr/bin/java';
    if (!existsSync(java)) {
      console.warn('time: skipping the JVM test: no /usr/bin/java');
      context.skip();
    }
    const dir = mkdtempSync(join(tmpdir(), 'sandlock-time-java-'));
    try {
      writeFileSync(
        join(dir, 'Now.java'),
        'public class Now { public static void main(String[] a) { System.out.println(System.currentTimeMillis() / 1000 + " " + java.time.Year.now(java.time.ZoneOffset.UTC)); } }\n',
      );
      const out = await ok([java, '-Xshare:off', join(dir, 'Now.java')], timed, [
        ...DEFAULT_READ,
        dir,
      ]);
      const [now, year] = numbers(out);
      expectVirtualNow(now!);
      expect(year).toBe(2000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('raw syscalls reach the supervisor and are answered shifted', () => {
  it.runIf(x86)('clock_gettime, gettimeofday and time by number', async () => {
    const before = monotonicNow();
    const out = await ok(
      py(
        ...CTYPES,
        'libc.syscall.restype = ctypes.c_long',
        'ts = timespec(); assert libc.syscall(228, 0, ctypes.byref(ts)) == 0',
        'mono = timespec(); assert libc.syscall(228, 1, ctypes.byref(mono)) == 0',
        'tv = timeval(); assert libc.syscall(96, ctypes.byref(tv), None) == 0',
        'tz = (ctypes.c_int * 2)(7, 7); assert libc.syscall(96, None, ctypes.byref(tz)) == 0',
        't = ctypes.c_long(0); r = libc.syscall(201, ctypes.byref(t))',
        'bad = libc.syscall(228, 0, ctypes.c_void_p(8)); e = ctypes.get_errno()',
        'print(ts.sec, tv.sec, r, t.value, libc.syscall(201, None), mono.sec, bad, e, tz[0] + tz[1] < 14)',
      ),
    );
    const values = numbers(out.replace('True', '1'));
    for (const value of values.slice(0, 5)) expectVirtualNow(value);
    // CLOCK_MONOTONIC unshifted, whole seconds: read between before and now.
    expect(values[5]!).toBeGreaterThanOrEqual(Math.floor(before));
    expect(values[5]!).toBeLessThanOrEqual(monotonicNow());
    expect(values.slice(6)).toEqual([-1, 14, 1]);
  });

  it.runIf(x86)('whatever the other registers hold', async () => {
    // Any value the module's vDSO code could put in a spare argument register, a program can
    // put there too: this one was the marker the filter used to let through unseen, unshifted.
    const out = await ok(
      py(
        ...CTYPES,
        'libc.syscall.restype = ctypes.c_long',
        'M = 0x534c4b54',
        'ts = timespec(); assert libc.syscall(228, 0, ctypes.byref(ts), M) == 0',
        'tv = timeval(); assert libc.syscall(96, ctypes.byref(tv), None, M) == 0',
        'print(ts.sec, tv.sec, libc.syscall(201, None, M), libc.syscall(201, None, 0, M))',
      ),
    );
    for (const value of numbers(out)) expectVirtualNow(value);
  });
});

describe.runIf(x86)('sleeps and timers keep real durations', () => {
  // A deadline left unshifted, or shifted twice, is years away in the past (the call
  // returns at once: the lower bounds) or in the future (it sleeps for years: the upper
  // bound, or the test's timeout). The upper bound is generous: a loaded machine only makes
  // a sleep end later.
  const LATE = 30;
  /** Runs Python lines that print one elapsed time (monotonic seconds). */
  async function elapsed(...lines: string[]): Promise<number> {
    const out = await ok(
      py(...CTYPES, 'start = time.monotonic()', ...lines, 'print(time.monotonic() - start)'),
    );
    return numbers(out)[0]!;
  }

  it('sleep 1 takes a second', async () => {
    const start = monotonicNow();
    await ok(['/bin/sleep', '1']);
    const took = monotonicNow() - start;
    expect(took).toBeGreaterThanOrEqual(0.95);
    expect(took).toBeLessThan(LATE);
  });

  it('Python time.sleep(0.2)', async () => {
    const took = await elapsed('time.sleep(0.2)');
    expect(took).toBeGreaterThanOrEqual(0.19);
    expect(took).toBeLessThan(LATE);
  });

  it.each([
    ['CLOCK_REALTIME', 0],
    ['CLOCK_MONOTONIC', 1],
  ])('clock_nanosleep(TIMER_ABSTIME) on %s until now + 0.3 s', async (_name, clock) => {
    const took = await elapsed(
      `ts = at(now(${clock}) + 0.3)`,
      `r = libc.clock_nanosleep(${clock}, 1, ctypes.byref(ts), None)`,
      'assert r == 0, r',
    );
    expect(took).toBeGreaterThanOrEqual(0.28);
    expect(took).toBeLessThan(LATE);
  });

  it('an absolute realtime deadline re-submitted in a loop stays right', async () => {
    // The same struct, advanced by 0.1 s each round: the second and later rounds see a value
    // the module already shifted plus 0.1 s, which must not be shifted again.
    const took = await elapsed(
      'ts = at(now(0))',
      'for i in range(3):',
      '    ts.nsec += 100_000_000',
      '    if ts.nsec >= 1_000_000_000: ts.sec += 1; ts.nsec -= 1_000_000_000',
      '    assert libc.clock_nanosleep(0, 1, ctypes.byref(ts), None) == 0',
    );
    expect(took).toBeGreaterThanOrEqual(0.28);
    expect(took).toBeLessThan(LATE);
  });

  it.each([
    ['CLOCK_REALTIME', 0],
    ['CLOCK_MONOTONIC', 1],
  ])('timerfd with TFD_TIMER_ABSTIME on %s fires in 0.3 s', async (_name, clock) => {
    const took = await elapsed(
      `fd = libc.timerfd_create(${clock}, 0)`,
      'assert fd >= 0',
      `spec = itimerspec(timespec(0, 0), at(now(${clock}) + 0.3))`,
      'assert libc.timerfd_settime(fd, 1, ctypes.byref(spec), None) == 0, ctypes.get_errno()',
      'os.read(fd, 8)',
    );
    expect(took).toBeGreaterThanOrEqual(0.28);
    expect(took).toBeLessThan(LATE);
  });

  it.each([
    ['CLOCK_REALTIME', 0],
    ['CLOCK_MONOTONIC', 1],
  ])('timer_settime(TIMER_ABSTIME) on %s fires in 0.3 s', async (_name, clock) => {
    const took = await elapsed(
      'import signal',
      'fired = []',
      'signal.signal(signal.SIGUSR1, lambda *a: fired.append(time.monotonic()))',
      'class sigevent(ctypes.Structure):',
      '    _fields_ = [("value", ctypes.c_long), ("signo", ctypes.c_int), ("notify", ctypes.c_int), ("pad", ctypes.c_byte * 48)]',
      'ev = sigevent(0, signal.SIGUSR1, 0)',
      'tid = ctypes.c_void_p()',
      `assert libc.timer_create(${clock}, ctypes.byref(ev), ctypes.byref(tid)) == 0`,
      `spec = itimerspec(timespec(0, 0), at(now(${clock}) + 0.3))`,
      'assert libc.timer_settime(tid, 1, ctypes.byref(spec), None) == 0',
      'while not fired: time.sleep(0.01)',
    );
    expect(took).toBeGreaterThanOrEqual(0.28);
    expect(took).toBeLessThan(LATE);
  });

  it('sem_timedwait (futex WAIT_BITSET | CLOCK_REALTIME) in a second thread times out after 0.3 s', async () => {
    // The waiter is not the thread group leader: the supervisor reads /proc/<tid>.
    const took = await elapsed(
      'import threading',
      'sem = ctypes.create_string_buffer(64)',
      'assert libc.sem_init(sem, 0, 0) == 0',
      'result = []',
      'def wait():',
      '    ts = at(now(0) + 0.3)',
      '    result.append((libc.sem_timedwait(sem, ctypes.byref(ts)), ctypes.get_errno()))',
      'thread = threading.Thread(target=wait); thread.start(); thread.join()',
      'assert result == [(-1, 110)], result',
    );
    expect(took).toBeGreaterThanOrEqual(0.28);
    expect(took).toBeLessThan(LATE);
  });

  it.each([
    ['CLOCK_REALTIME', 0],
    ['CLOCK_MONOTONIC', 1],
  ])('futex_waitv on %s times out after 0.3 s', async (_name, clock) => {
    const took = await elapsed(
      'word = ctypes.c_uint32(0)',
      'class waitv(ctypes.Structure):',
      '    _fields_ = [("val", ctypes.c_uint64), ("uaddr", ctypes.c_uint64), ("flags", ctypes.c_uint32), ("reserved", ctypes.c_uint32)]',
      'w = waitv(0, ctypes.addressof(word), 2 | 128, 0)', // FUTEX2_SIZE_U32 | FUTEX2_PRIVATE
      `ts = at(now(${clock}) + 0.3)`,
      'libc.syscall.restype = ctypes.c_long',
      `r = libc.syscall(449, ctypes.byref(w), 1, 0, ctypes.byref(ts), ${clock}); e = ctypes.get_errno()`,
      'assert r == -1 and e == 110, (r, e)',
    );
    expect(took).toBeGreaterThanOrEqual(0.28);
    expect(took).toBeLessThan(LATE);
  });

  it('pthread_mutex_timedlock on a PI mutex (FUTEX_LOCK_PI) times out after 0.3 s', async () => {
    const took = await elapsed(
      'import threading',
      'attr = ctypes.create_string_buffer(64); mutex = ctypes.create_string_buffer(64)',
      'assert libc.pthread_mutexattr_init(attr) == 0',
      'assert libc.pthread_mutexattr_setprotocol(attr, 1) == 0', // PTHREAD_PRIO_INHERIT
      'assert libc.pthread_mutex_init(mutex, attr) == 0',
      'locked = threading.Event()',
      'def hold():',
      '    libc.pthread_mutex_lock(mutex); locked.set(); threading.Event().wait()',
      'threading.Thread(target=hold, daemon=True).start()',
      'locked.wait()',
      'start = time.monotonic()',
      'ts = at(now(0) + 0.3)',
      'assert libc.pthread_mutex_timedlock(mutex, ctypes.byref(ts)) == 110',
    );
    expect(took).toBeGreaterThanOrEqual(0.28);
    expect(took).toBeLessThan(LATE);
  });
});

describe.runIf(x86)('randomSeed alone', () => {
  /** The vDSO functions of this machine, and how a sandboxed Python reads their first bytes. */
  function ownSymbols() {
    const image = readVdsoImage(process.pid)!;
    return { image, symbols: parseVdsoSymbols(image) };
  }
  const readBytes = (offsets: Record<string, number>, length: number) =>
    py(
      'import ctypes',
      'getauxval = ctypes.CDLL(None).getauxval',
      'getauxval.restype = ctypes.c_ulong',
      'getauxval.argtypes = [ctypes.c_ulong]',
      'base = getauxval(33)',
      ...Object.entries(offsets).map(
        ([name, offset]) => `print("${name}", ctypes.string_at(base + ${offset}, ${length}).hex())`,
      ),
    );

  it('patches __vdso_getrandom to -ENOSYS and leaves the clocks alone', async (context) => {
    const { image, symbols } = ownSymbols();
    const getrandom = symbols.get('__vdso_getrandom');
    if (!getrandom) {
      console.warn('time: this kernel has no __vdso_getrandom (Linux 6.11+); skipped');
      context.skip();
    }
    const clock = symbols.get('__vdso_clock_gettime')!;
    const code = trampolineCode('x86_64', 'getrandom');
    const seeded = { policy: { randomSeed: 5n }, env: timed.env };
    const out = await ok(
      readBytes({ getrandom: getrandom!.offset, clock: clock.offset }, code.length),
      seeded,
    );
    expect(out).toContain(`getrandom ${code.toString('hex')}\n`);
    const pristine = image.subarray(clock.offset, clock.offset + code.length).toString('hex');
    expect(out).toContain(`clock ${pristine}\n`);
    // And the time is real.
    const year = await ok(['/bin/date', '+%Y'], seeded);
    expect(Number(year)).toBe(new Date().getUTCFullYear());
  });

  it('timeStart alone leaves getrandom alone', async (context) => {
    const { image, symbols } = ownSymbols();
    const getrandom = symbols.get('__vdso_getrandom');
    if (!getrandom) {
      console.warn('time: this kernel has no __vdso_getrandom (Linux 6.11+); skipped');
      context.skip();
    }
    const out = await ok(readBytes({ getrandom: getrandom!.offset }, 8));
    const pristine = image.subarray(getrandom!.offset, getrandom!.offset + 8).toString('hex');
    expect(out).toBe(`getrandom ${pristine}\n`);
  });
});

describe.runIf(x86)('with the random module', () => {
  it('both policies at once: shifted time, seeded bytes', async () => {
    const both = await Supervisor.start({
      modules: [{ module: TIME_MODULE }, { module: RANDOM_MODULE }],
    });
    try {
      const argv = py('import os, time', 'print(int(time.time()), os.urandom(8).hex())');
      const options = { policy: { timeStart: START_MS, randomSeed: 3n }, env: timed.env };
      const first = await run(both, argv, options);
      const second = await run(both, argv, options);
      expect(first.code, first.stderr).toBe(0);
      const [seconds, bytes] = first.stdout.trim().split(' ');
      expectVirtualNow(Number(seconds));
      expect(second.stdout.trim().split(' ')[1]).toBe(bytes);
    } finally {
      await both.close();
    }
  });
});
