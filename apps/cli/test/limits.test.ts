import { describe, expect, it } from 'vitest';
import { FORK_SIX, SYSTEM, sandlock } from './helpers.js';

const PYTHON = '/usr/bin/python3';

describe('sandlock run: resource limits', () => {
  it('-P caps concurrent processes: forks past the cap fail with EAGAIN', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-P',
      '3',
      '--',
      PYTHON,
      '-c',
      [
        FORK_SIX,
        // Exits are credited: after the wait, forks work again.
        'pid = os.fork()',
        'if pid == 0: os._exit(0)',
        'os.waitpid(pid, 0)',
        'print("fork after exits ok")',
      ].join('\n'),
    ]);
    expect(result.stderr).toBe('');
    // The program itself is one of the three.
    expect(result.stdout).toBe('2 4\nfork after exits ok\n');
    expect(result.status).toBe(0);
  });

  it('-P does not count threads', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-P',
      '2',
      '--',
      PYTHON,
      '-c',
      'import threading\nts=[threading.Thread(target=lambda: None) for _ in range(20)]\n[t.start() for t in ts]\n[t.join() for t in ts]\nprint("20 threads")',
    ]);
    expect(result.stdout).toBe('20 threads\n');
    expect(result.status).toBe(0);
  });

  it('-m kills a sandbox that touches more memory, exit 137 with a message', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-m',
      '256M',
      '--',
      PYTHON,
      '-c',
      'b = bytearray(1 << 30)\nprint("survived")',
    ]);
    expect(result.status).toBe(137);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(
      /^sandlock: killed: memory use [\d.]+ MiB went over the limit of 256 MiB \(maxMemory\)\n$/,
    );
  });

  it('-m leaves a runtime with large reservations alone', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-m',
      '512M',
      '--',
      process.execPath,
      '-e',
      'const a = []; for (let i = 0; i < 50; i++) a.push(Buffer.alloc(1 << 20, 1)); console.log("ok")',
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('ok\n');
  });

  it('-c throttles a busy loop: stops and continues it', () => {
    // The throttle holds a sandbox to its share by SIGSTOP and SIGCONT; a busy
    // loop counts the SIGCONTs it gets, and ends after two (or after 30 s
    // without: a hang). How close the share comes is `pnpm bench throttle`.
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-c',
      '30',
      '--',
      PYTHON,
      '-c',
      [
        'import signal, time',
        'continued = 0',
        'def on_continue(*_):',
        '    global continued',
        '    continued += 1',
        'signal.signal(signal.SIGCONT, on_continue)',
        'deadline = time.monotonic() + 30',
        'while continued < 2 and time.monotonic() < deadline: pass',
        'print(continued)',
      ].join('\n'),
    ]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(Number(result.stdout.trim())).toBeGreaterThanOrEqual(2);
  });

  it('rejects bad limits naming the field', () => {
    const result = sandlock(['run', ...SYSTEM, '-m', 'lots', '-P', '0', '--', 'true']);
    expect(result.status).toBe(125);
    expect(result.stderr).toBe(
      "sandlock: invalid policy (2 problems):\n  -m/--max-memory: expected a size like 64M or 2G, got 'lots'\n  -P/--max-processes: expected a number of processes from 1 to 4194304, got '0'\n",
    );
  });
});
