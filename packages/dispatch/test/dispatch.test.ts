// The receive loop and the dispatch table on the real kernel: each test runs
// Python in a sandbox whose notified calls are answered by test modules.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  close,
  ERRNO,
  F_GETFD,
  hostArch,
  openAt,
  openFlags,
  pidfdOpen,
  syscallNumber,
  trySyscall,
} from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const { O_CLOEXEC } = openFlags(hostArch());

import { type DispatchError, Supervisor } from '../src/index.js';
import { eventually, PYTHON, running, supervise, testModule } from './support/sandbox.js';

const hasPython = spawnSync(PYTHON, ['-c', 'pass']).status === 0;
if (!hasPython) console.warn(`skipping the dispatch kernel tests: ${PYTHON} is not installed`);

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sandlock-dispatch-'));
  writeFileSync(join(work, 'real.txt'), 'injected content\n');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function python(supervisor: Supervisor, code: string, policy?: unknown) {
  const { session, finished } = await supervise(supervisor, [PYTHON, '-c', code], { policy });
  const result = await finished;
  await session?.closed;
  return { ...result, session };
}

describe.skipIf(!hasPython)('the dispatch chain', () => {
  let supervisor: Supervisor;
  beforeAll(async () => {
    const scripted = testModule('scripted.ts');
    supervisor = await Supervisor.start({
      modules: [
        { module: scripted, export: 'first', options: { answers: {} } },
        {
          module: scripted,
          export: 'second',
          options: { answers: { getuid: { kind: 'value', value: 4242n } } },
        },
      ],
      plugins: [
        {
          module: scripted,
          export: 'third',
          options: {
            answers: {
              getuid: { kind: 'value', value: 7n },
              getppid: { kind: 'errno', errno: 13 },
            },
          },
        },
      ],
    });
  });
  afterAll(() => supervisor.close());

  it('takes the first answer that is not continue, in registration order', async () => {
    const result = await python(supervisor, 'import os; print(os.getuid())');
    expect(result.stdout).toBe('4242\n');
  });

  it('lets the call run when every handler continues', async () => {
    const result = await python(supervisor, 'import os; print(os.getgid())');
    expect(result.stdout).toBe(`${process.getgid!()}\n`);
  });

  it('fails the call with the errno of an errno answer', async () => {
    const code = `import ctypes; libc = ctypes.CDLL(None, use_errno=True); print(libc.syscall(${syscallNumber('getppid')}), ctypes.get_errno())`;
    const result = await python(supervisor, code);
    expect(result.stdout).toBe('-1 13\n');
  });

  it('builds each chain from the modules enabled for the policy', async () => {
    expect(supervisor.notifiedSyscalls({ policy: {} })).toEqual(['getgid', 'getppid', 'getuid']);
    expect(supervisor.notifiedSyscalls({ policy: { off: ['third'] } })).toEqual([
      'getgid',
      'getuid',
    ]);
    expect(supervisor.notifiedSyscalls({ policy: { off: ['first', 'second', 'third'] } })).toEqual(
      [],
    );
    const result = await python(supervisor, 'import os; print(os.getuid())', { off: ['second'] });
    expect(result.stdout).toBe('7\n');
  });

  it('enables sync wake-up by value and closes the session with the sandbox', async () => {
    const fdsBefore = readdirSync('/proc/self/fd').length;
    const result = await python(supervisor, 'import os; print(os.getuid())');
    expect(result.session?.syncWakeUp).toBe(true);
    expect(readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(fdsBefore);
  });
});

describe.skipIf(!hasPython)('answers and context helpers', () => {
  let supervisor: Supervisor;
  const errors: DispatchError[] = [];
  const log = () => join(work, 'paths.log');
  beforeAll(async () => {
    const behaviours = testModule('behaviours.ts');
    supervisor = await Supervisor.start({
      plugins: [
        {
          module: behaviours,
          export: 'injector',
          options: { file: join(work, 'real.txt') },
        },
        { module: behaviours, export: 'randomWriter' },
        { module: behaviours, export: 'failing' },
        { module: behaviours, export: 'pathLogger', options: { log: log() } },
      ],
      onError: (error) => errors.push(error),
    });
  });
  afterAll(() => supervisor.close());

  it('injects an fd (ADDFD, then its number as the answer) in place of an open', async () => {
    const result = await python(
      supervisor,
      "import os\nfd = os.open('/virtual/x', os.O_RDONLY)\nprint(fd > 2, os.read(fd, 100).decode(), end='')",
    );
    expect(result.stdout).toBe('True injected content\n');
  });

  it('injects a close-on-exec fd', async () => {
    const other = await Supervisor.start({
      plugins: [
        {
          module: testModule('behaviours.ts'),
          export: 'injector',
          options: { file: join(work, 'real.txt'), cloexec: true },
        },
      ],
    });
    try {
      const result = await python(
        other,
        "import os\nfd = os.open('/virtual/x', os.O_RDONLY)\nprint(os.get_inheritable(fd), os.read(fd, 100).decode(), end='')",
      );
      expect(result.stdout).toBe('False injected content\n');
    } finally {
      await other.close();
    }
  });

  it('fails the syscall when the injection fails, never runs the original call', async () => {
    // At RLIMIT_NOFILE the kernel refuses ADDFD with EMFILE. Had the loop
    // fallen back to CONTINUE, the real open of /virtual/x would say ENOENT.
    const code = [
      'import os, resource',
      'resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))',
      'fds = []',
      'try:',
      "  while True: fds.append(os.open('/dev/null', os.O_RDONLY))",
      'except OSError as e: print("filled", e.errno)',
      'os.close(fds.pop())',
      "fds.append(os.open('/dev/null', os.O_RDONLY))",
      'try:',
      "  os.open('/virtual/x', os.O_RDONLY)",
      'except OSError as e: print("virtual", e.errno)',
    ].join('\n');
    const result = await python(supervisor, code);
    expect(result.stdout).toBe('filled 24\nvirtual 24\n');
  });

  it('writes into the caller and returns a value', async () => {
    const result = await python(supervisor, 'import os; print(os.getrandom(8).hex())');
    expect(result.stdout).toBe('4242424242424242\n');
  });

  it('resolves relative paths against dirfd and the cwd', async () => {
    const code = [
      'import os',
      `os.chdir(${JSON.stringify(work)})`,
      "open('real.txt').close()",
      "d = os.open('/usr', os.O_RDONLY | os.O_DIRECTORY)",
      "os.close(os.open('bin/../lib', os.O_RDONLY, dir_fd=d))",
    ].join('\n');
    const result = await python(supervisor, code);
    expect(result.stderr).toBe('');
    const paths = readFileSync(log(), 'utf8').split('\n');
    expect(paths).toContain(join(work, 'real.txt'));
    expect(paths).toContain('/usr/lib');
  });

  it('fails closed when a handler throws or returns no answer, and reports it', async () => {
    errors.length = 0;
    const code = [
      'import ctypes, os',
      'libc = ctypes.CDLL(None, use_errno=True)',
      `print(libc.syscall(${syscallNumber('getppid')}), ctypes.get_errno())`,
      `print(libc.syscall(${syscallNumber('getpgrp')}), ctypes.get_errno())`,
      'try:',
      '  os.getsid(0)',
      'except OSError as e: print("getsid", e.errno)',
    ].join('\n');
    const result = await python(supervisor, code);
    expect(result.stdout).toBe('-1 1\n-1 1\ngetsid 18\n');
    expect(errors.map((error) => [error.module, error.syscall])).toEqual([
      ['failing', 'getppid'],
      ['failing', 'getpgrp'],
    ]);
    expect(errors[0]!.message).toBe('boom');
  });

  it('kills the whole sandbox on a kill answer', async () => {
    errors.length = 0;
    const reasons: string[] = [];
    const started = performance.now();
    const { launched, session, finished } = await supervise(
      supervisor,
      ['/bin/sh', '-c', `sleep 30 & echo $! ; ${PYTHON} -c 'import os; os.umask(0)'; wait`],
      { onKill: (reason) => reasons.push(reason) },
    );
    const result = await finished;
    await session?.closed;
    const sleeper = Number(result.stdout.trim());
    // Shown when an expectation fails: what the run did, not a bound on it.
    const diagnostics = () =>
      JSON.stringify({
        ...result,
        reasons,
        errors: errors.map(({ message, module, syscall }) => ({ message, module, syscall })),
        killReason: session?.killReason,
        reaperPid: launched.pid,
        sleeper,
        sleeperRunning: running(sleeper),
        seconds: Math.round(performance.now() - started) / 1000,
      });
    expect(result.signal ?? result.code, diagnostics()).toBeTruthy();
    expect(running(sleeper), diagnostics()).toBe(false);
    expect(reasons, diagnostics()).toEqual(["module 'failing' (umask): umask is not allowed here"]);
    expect(session?.killReason, diagnostics()).toBe(reasons[0]);
    // sh's getppid at its start meets the failing module's throwing handler.
    expect(
      errors.filter((error) => error.syscall !== 'getppid'),
      diagnostics(),
    ).toEqual([]);
  });

  it("kills through a new pidfd of the reaper when the session's pidfd names another process, and says so", async () => {
    errors.length = 0;
    const bystander = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const { session, launched, finished } = await supervise(
        supervisor,
        ['/bin/sh', '-c', `read go; ${PYTHON} -c 'import os; os.umask(0)'; sleep 30`],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      // A number closed and reused behind the session's back: it names the bystander now.
      const other = pidfdOpen(bystander.pid!);
      expect(trySyscall('dup3', other, session!.reaperPidfd, O_CLOEXEC)).toBe(session!.reaperPidfd);
      close(other);
      launched.child.stdin!.end('go\n');
      const result = await finished;
      await session?.closed;
      const messages = errors.map((error) => error.message);
      const diagnostics = JSON.stringify({ ...result, messages, bystander: bystander.pid });
      expect(result.signal, diagnostics).toBe('SIGKILL');
      expect(running(bystander.pid!), diagnostics).toBe(true);
      expect(messages, diagnostics).toContainEqual(
        expect.stringContaining(`names pid ${bystander.pid}, not the reaper`),
      );
    } finally {
      bystander.kill('SIGKILL');
    }
  });

  it('kills the caller of a kill answer when the reaper is gone, and says so', async () => {
    errors.length = 0;
    const marker = join(work, 'survived');
    const code = [
      'import os, sys',
      'print(os.getpid(), flush=True)',
      'sys.stdin.read()',
      'try: os.umask(0)',
      'except OSError: pass',
      `open(${JSON.stringify(marker)}, 'w').close()`,
    ].join('\n');
    // sh forks Python (`; :`): its PR_SET_PDEATHSIG does not follow Python.
    const { launched, finished } = await supervise(
      supervisor,
      ['/bin/sh', '-c', `${PYTHON} -c "$1"; :`, 'sh', code],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = '';
    launched.child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    expect(await eventually(() => stdout.includes('\n')), 'Python started').toBe(true);
    const caller = Number(stdout.trim());
    const reaperGone = new Promise((resolve) => launched.child.once('exit', resolve));
    launched.child.kill('SIGKILL');
    await reaperGone; // reaped by Node: its pidfd names no process now
    launched.child.stdin!.end();
    const result = await finished;
    const messages = errors.map((error) => error.message);
    const diagnostics = JSON.stringify({ ...result, messages, caller });
    expect(await eventually(() => !running(caller)), diagnostics).toBe(true);
    expect(existsSync(marker), diagnostics).toBe(false);
    expect(messages, diagnostics).toContainEqual(
      expect.stringContaining('the sandbox was not killed: the reaper has exited'),
    );
  });
});

describe.skipIf(!hasPython)('descriptors across threads', () => {
  it('a worker that exits leaves alone a number its fs opened and close(2) closed', async () => {
    const supervisor = await Supervisor.start({
      plugins: [{ module: testModule('behaviours.ts'), export: 'fsOpener' }],
    });
    let held = -1;
    try {
      const result = await python(supervisor, 'import os; print(os.getuid())');
      const number = Number(result.stdout.trim());
      expect(number, result.stderr).toBeGreaterThan(2);
      // Free again (the worker closed it): this thread makes it a descriptor of its own.
      expect(trySyscall('fcntl', number, F_GETFD, 0), `fd ${number} is free`).toBe(-ERRNO.EBADF);
      const own = openAt('/dev/null', openFlags(hostArch()).O_RDONLY);
      held = trySyscall('dup3', own, number, O_CLOEXEC);
      close(own);
      expect(held).toBe(number);
    } finally {
      await supervisor.close();
    }
    // Node's worker, tracking what its fs opened, would have closed it at exit.
    expect(trySyscall('fcntl', held, F_GETFD, 0)).toBeGreaterThanOrEqual(0);
    close(held);
  }, 180_000); // a worker started and stopped: tens of seconds on a loaded machine
});

describe.skipIf(!hasPython)('several sandboxes at once', () => {
  it('spreads them over the workers and answers all of them', async () => {
    const supervisor = await Supervisor.start({
      plugins: [{ module: testModule('path-guard.ts'), options: { word: 'forbidden' } }],
      workers: 2,
    });
    try {
      const code = [
        'import os',
        'for _ in range(2000):',
        "    os.close(os.open('/dev/null', os.O_RDONLY))",
        'try:',
        "    os.open('/tmp/forbidden', os.O_RDONLY)",
        'except PermissionError:',
        "    print('refused')",
      ].join('\n');
      const runs = await Promise.all(
        [1, 2, 3, 4].map(() => supervise(supervisor, [PYTHON, '-c', code])),
      );
      const results = await Promise.all(runs.map((run) => run.finished));
      await Promise.all(runs.map((run) => run.session?.closed));
      expect(results.map((result) => [result.code, result.stdout])).toEqual(
        Array(4).fill([0, 'refused\n']),
      );
    } finally {
      await supervisor.close();
    }
  });
});
