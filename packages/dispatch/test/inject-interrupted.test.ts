// Injected descriptors when the supervising process is interrupted: job-control
// stops (SIGSTOP/SIGCONT) and signals to every one of its threads while a
// sandboxed program opens a virtual file thousands of times. With the
// one-step SECCOMP_ADDFD_FLAG_SEND, a stop during the ADDFD wait made the
// child's open return 0 with no descriptor (kernel/seccomp.c).

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../src/index.js';
import { PYTHON, supervise, testModule } from './support/sandbox.js';

const hasPython = spawnSync(PYTHON, ['-c', 'pass']).status === 0;
if (!hasPython)
  console.warn(`skipping the interrupted-injection tests: ${PYTHON} is not installed`);

const OPENS = 3000;
// Opens /virtual/x OPENS times; counts the opens that fail or read anything
// but the injected file's contents.
const OPENER = `
import os
bad = 0
for i in range(${OPENS}):
    try:
        fd = os.open('/virtual/x', os.O_RDONLY)
        if os.read(fd, 100) != b'injected content\\n': bad += 1
        os.close(fd)
    except OSError:
        bad += 1
print(bad)
`;

// Pesters a process until killed: SIGSTOP then SIGCONT, or SIGUSR2 to each of
// its threads (tgkill), every 100 µs or so.
const PESTER = `
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
pid, mode = int(sys.argv[1]), sys.argv[2]
tgkill = {'x86_64': 234, 'aarch64': 131}[os.uname().machine]
while True:
    if mode == 'stop':
        os.kill(pid, signal.SIGSTOP)
        os.kill(pid, signal.SIGCONT)
    else:
        for tid in os.listdir(f'/proc/{pid}/task'):
            if int(tid) != pid:
                libc.syscall(tgkill, pid, int(tid), signal.SIGUSR2)
    time.sleep(0.0001)
`;

let work: string;
let pester: ChildProcess | null = null;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sandlock-inject-'));
  writeFileSync(join(work, 'real.txt'), 'injected content\n');
});
async function stopPester(): Promise<void> {
  const running = pester;
  pester = null;
  if (running === null || running.exitCode !== null || running.signalCode !== null) return;
  const exited = new Promise((resolve) => running.once('exit', resolve));
  running.kill('SIGKILL');
  await exited;
}
afterEach(stopPester);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The signals blocked in each thread of this process (SigBlk of its status). */
function blockedByThread(): bigint[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const status = readFileSync(`/proc/self/task/${tid}/status`, 'latin1');
    return BigInt(`0x${/^SigBlk:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '0'}`);
  });
}

describe.skipIf(!hasPython)('an injected descriptor', () => {
  let supervisor: Supervisor;
  beforeAll(async () => {
    supervisor = await Supervisor.start({
      plugins: [
        {
          module: testModule('behaviours.ts'),
          export: 'injector',
          options: { file: join(work, 'real.txt') },
        },
      ],
    });
  });
  afterAll(() => supervisor.close());

  async function badOpens(mode: 'stop' | 'signal'): Promise<number> {
    pester = spawn(PYTHON, ['-c', PESTER, String(process.pid), mode], { stdio: 'ignore' });
    const { session, finished } = await supervise(supervisor, [PYTHON, '-c', OPENER]);
    const result = await finished;
    await session?.closed;
    await stopPester();
    expect(result.stderr).toBe('');
    return Number(result.stdout.trim());
  }

  it('is installed whole while the supervising process is stopped and continued', async () => {
    expect(await badOpens('stop')).toBe(0);
  });

  it('is installed whole while every thread of the supervising process is signalled', async () => {
    process.on('SIGUSR2', () => {}); // libuv's handler: SA_RESTART
    try {
      expect(await badOpens('signal')).toBe(0);
    } finally {
      process.removeAllListeners('SIGUSR2');
    }
  });

  it('comes from a worker thread that blocks asynchronous signals', () => {
    // 1–31 (SIGHUP, SIGINT, SIGUSR1, SIGCHLD, SIGTSTP…) but the faults,
    // SIGKILL, SIGSTOP and SIGPROF; no real-time signal (glibc's 32 and 33).
    let expected = 0n;
    for (let signal = 1; signal <= 31; signal++) {
      if (![4, 5, 7, 8, 9, 11, 19, 27, 31].includes(signal)) expected |= 1n << BigInt(signal - 1);
    }
    expect(blockedByThread()).toContain(expected);
  });
});
