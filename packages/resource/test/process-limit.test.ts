import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Supervisor } from '@sandlock/dispatch';
import { close, descendantsOf, launch } from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, type Finished, PYTHON } from '../../../tools/test-support/index.js';
import { PROCESS_LIMIT_MODULE, PROCESS_LIMIT_SYSCALLS } from '../src/index.js';
import { parsePolicy, prepareConfinement, SYSTEM_READ } from './helpers.js';

let supervisor: Supervisor;
beforeAll(async () => {
  supervisor = await Supervisor.start({ modules: [{ module: PROCESS_LIMIT_MODULE }] });
});
afterAll(() => supervisor?.close());

interface Limited {
  child: ChildProcess;
  reaperPid: number;
  finished: Promise<Finished>;
}

/**
 * Starts `argv` confined as sandlock confines it, supervised with the process
 * limit; the lead's wiring will make this `Sandbox.builder().maxProcesses(n)`.
 */
async function limited(argv: string[], maxProcesses: number): Promise<Limited> {
  const policy = { maxProcesses };
  const notify = supervisor.notifiedSyscalls({ policy });
  expect(notify).toEqual([...PROCESS_LIMIT_SYSCALLS].sort());
  const confinement = prepareConfinement(parsePolicy({ fsRead: [...SYSTEM_READ, '/dev/null'] }), {
    notify,
  });
  let launched: ReturnType<typeof launch>;
  try {
    launched = launch({
      path: argv[0]!,
      argv,
      env: { PATH: '/usr/bin:/bin' },
      steps: confinement.steps,
      stdio: ['ignore', 'pipe', 'pipe'],
      handshake: true,
    });
  } finally {
    for (const fd of confinement.fds) close(fd);
  }
  const finished = collect(launched.child);
  const report = await launched.ready;
  supervisor.attach(launched.takeListener(), {
    reaperPid: launched.pid,
    programPid: report.pid,
    policy,
  });
  await launched.release();
  return { child: launched.child, reaperPid: launched.pid, finished };
}

/**
 * The most processes seen at once below `reaperPid`, sampled every 2 ms until
 * `done`. A walk takes time while processes come and go, so a sample counts
 * only the processes listed that still exist once the walk is over: those
 * all existed at that instant (a zombie counts: it holds its pid).
 */
function peakProcesses(reaperPid: number, done: Promise<unknown>): Promise<number> {
  let peak = 0;
  let over = false;
  void done.then(() => {
    over = true;
  });
  return new Promise((resolve) => {
    const sample = () => {
      const listed = descendantsOf(reaperPid);
      peak = Math.max(peak, listed.filter((pid) => existsSync(`/proc/${pid}/stat`)).length);
      if (over) resolve(peak);
      else setTimeout(sample, 2);
    };
    sample();
  });
}

describe('process limit on the real kernel (dispatch module)', () => {
  it('refuses the fork over the cap with EAGAIN, and counts the program', async () => {
    const script = [
      'import os, time',
      'kids = []',
      'for i in range(6):',
      '    try:',
      '        pid = os.fork()',
      '    except BlockingIOError as e:',
      '        print("refused", e.errno); continue',
      '    if pid == 0: time.sleep(1); os._exit(0)',
      '    kids.append(pid)',
      'print("forked", len(kids))',
      'for pid in kids: os.waitpid(pid, 0)',
    ].join('\n');
    const run = await limited([PYTHON, '-c', script], 4);
    const result = await run.finished;
    expect(result.stdout).toContain('forked 3');
    expect(result.stdout.match(/refused 11/g)).toHaveLength(3);
    expect(result.code).toBe(0);
  });

  it('does not count threads (clone3 falls back to clone with CLONE_THREAD)', async () => {
    const script = [
      'import threading, os',
      'ts = [threading.Thread(target=lambda: None) for _ in range(100)]',
      'for t in ts: t.start()',
      'for t in ts: t.join()',
      'pid = os.fork()',
      'if pid == 0: os._exit(0)',
      'os.waitpid(pid, 0)',
      'print("ok")',
    ].join('\n');
    const result = await (await limited([PYTHON, '-c', script], 2)).finished;
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('ok\n');
  });

  it('credits exits through pidfds: 200 short-lived children one after the other under a cap of 2', async () => {
    const script = [
      'import os',
      'for i in range(200):',
      '    pid = os.fork()',
      '    if pid == 0: os._exit(0)',
      '    os.waitpid(pid, 0)',
      'print("ok")',
    ].join('\n');
    const result = await (await limited([PYTHON, '-c', script], 2)).finished;
    expect(result.stdout).toBe('ok\n');
  });

  it('credits children reaped without any wait call (SIGCHLD ignored)', async () => {
    const script = [
      'import os, signal, time',
      'signal.signal(signal.SIGCHLD, signal.SIG_IGN)',
      'for i in range(30):',
      '    pid = os.fork()',
      '    if pid == 0: os._exit(0)',
      // Until the kernel has reaped it (its pid is gone), however long that takes.
      '    while True:',
      '        try: os.kill(pid, 0)',
      '        except ProcessLookupError: break',
      '        time.sleep(0.001)',
      'print("ok")',
    ].join('\n');
    const result = await (await limited([PYTHON, '-c', script], 2)).finished;
    expect(result.stdout).toBe('ok\n');
  });

  it('counts zombies until they are reaped', async () => {
    const script = [
      'import os, time',
      'for i in range(3):',
      '    try:',
      '        pid = os.fork()',
      '    except BlockingIOError:',
      '        print("refused"); break',
      '    if pid == 0: os._exit(0)',
      'time.sleep(0.2)',
      'os.waitpid(-1, 0)',
      'pid = os.fork()',
      'if pid == 0: os._exit(0)',
      'print("after wait ok")',
    ].join('\n');
    const result = await (await limited([PYTHON, '-c', script], 3)).finished;
    expect(result.stdout).toBe('refused\nafter wait ok\n');
  });

  it('counts the raw fork syscall', async () => {
    const script = [
      'import ctypes, os, time',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'out = []',
      'for i in range(2):',
      '    pid = libc.syscall(57)  # fork(2) itself, not the libc wrapper (clone)',
      '    if pid == 0:',
      '        time.sleep(1); os._exit(0)',
      '    out.append("child" if pid > 0 else "errno %d" % ctypes.get_errno())',
      'print(out)',
    ].join('\n');
    const result = await (await limited([PYTHON, '-c', script], 2)).finished;
    expect(result.stdout).toBe("['child', 'errno 11']\n");
  });

  it('holds a fork bomb to the cap', async () => {
    const script = [
      'import os, time',
      'end = time.time() + 1.5',
      'while time.time() < end:',
      '    try:',
      '        os.fork()',
      '    except BlockingIOError:',
      '        time.sleep(0.001)',
      'os._exit(0)',
    ].join('\n');
    const run = await limited([PYTHON, '-c', script], 8);
    const peak = await peakProcesses(run.reaperPid, run.finished);
    const result = await run.finished;
    console.log(`fork bomb under a cap of 8: at most ${peak} processes seen`);
    expect(peak).toBeLessThanOrEqual(8);
    expect(peak).toBeGreaterThanOrEqual(6);
    expect(result.code).toBe(0);
  });

  it('holds to the cap processes that fork and die at once (children handed to the reaper)', async () => {
    const script = [
      'import os, time',
      'end = time.time() + 1.0',
      'while time.time() < end:',
      '    try:',
      '        if os.fork() != 0: os._exit(0)',
      '    except BlockingIOError:',
      '        pass',
      'os._exit(0)',
    ].join('\n');
    const run = await limited([PYTHON, '-c', script], 6);
    const peak = await peakProcesses(run.reaperPid, run.finished);
    await run.finished;
    expect(peak).toBeLessThanOrEqual(6);
  });

  it('holds threads forking at once to the cap', async () => {
    const script = [
      'import os, threading, time',
      'end = time.time() + 1.0',
      'def run():',
      '    while time.time() < end:',
      '        try:',
      '            pid = os.fork()',
      '        except BlockingIOError:',
      '            continue',
      '        if pid == 0:',
      '            time.sleep(0.02); os._exit(0)',
      '        os.waitpid(pid, 0)',
      'ts = [threading.Thread(target=run) for _ in range(6)]',
      'for t in ts: t.start()',
      'for t in ts: t.join()',
      'print("ok")',
    ].join('\n');
    const run = await limited([PYTHON, '-c', script], 4);
    const peak = await peakProcesses(run.reaperPid, run.finished);
    const result = await run.finished;
    console.log(`6 threads forking under a cap of 4: at most ${peak} processes seen`);
    expect(result.stdout).toBe('ok\n');
    expect(peak).toBeLessThanOrEqual(4);
  });

  it('a shell sees its fork refused past the cap', async () => {
    const script = 'for i in 1 2 3 4 5 6; do sleep 1 & done; wait; echo done';
    const run = await limited(['/bin/sh', '-c', script], 4);
    const peak = await peakProcesses(run.reaperPid, run.finished);
    const result = await run.finished;
    expect(peak).toBeLessThanOrEqual(4);
    // dash gives up on the script when fork fails ("Cannot fork").
    expect(result.stderr).toMatch(/fork/i);
  });
});
