import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AbortError, type Sandbox } from '../src/index.js';
import { alive, eventually, systemBuilder } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'sandlock-run-options-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const sandbox: Sandbox = systemBuilder().fsWrite(work).build();

describe('run() and spawn(): bounded and predictable', () => {
  it('maxBuffer: past it the sandbox is killed, the output kept up to it, and the result says why', async () => {
    const result = await sandbox.run(['yes'], { maxBuffer: 1 << 20 });
    expect(result.signal).toBe('SIGKILL');
    expect(result.stdout.length).toBe(1 << 20);
    expect(result.killedBy).toEqual({
      reason: 'maxBuffer',
      message: 'stdout went over maxBuffer (1048576 bytes); the sandbox was killed',
    });
  });

  it('encoding gives strings; stdio takes inherit, ignore and descriptors', async () => {
    const text = await sandbox.run(['echo', 'héllo'], { encoding: 'utf8' });
    expect(text.stdout).toBe('héllo\n');
    expect((await sandbox.run(['true'], { stdio: 'ignore' })).exitCode).toBe(0);
    expect((await sandbox.run(['true'], { stdio: 'inherit' })).exitCode).toBe(0);
    const file = join(work, 'out');
    const fd = openSync(file, 'w');
    try {
      const result = await sandbox.run(['echo', 'to a file'], { stdio: ['ignore', fd, 'ignore'] });
      expect(result).toMatchObject({ exitCode: 0, stdout: Buffer.alloc(0) });
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file, 'utf8')).toBe('to a file\n');
    const spawned = await sandbox.spawn(['true'], { stdio: 'inherit' });
    expect((await spawned.wait()).exitCode).toBe(0);
  });

  it('timeouts: validated, and longer than Node timers can wait at once', async () => {
    const long = await sandbox.run(['true'], { timeout: 3e9 });
    expect(long).toMatchObject({ exitCode: 0, timedOut: false });
    for (const timeout of [-1, 0, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(sandbox.run(['true'], { timeout })).rejects.toThrow(
        /^sandlock: run: timeout must be a positive, finite number of milliseconds/,
      );
    }
  });

  it('an AbortSignal: AbortError with the reason as cause, after every process is gone', async () => {
    const before = new AbortController();
    before.abort(new Error('not wanted'));
    const early = await sandbox.run(['true'], { signal: before.signal }).catch((e: unknown) => e);
    expect(early).toBeInstanceOf(AbortError);
    expect((early as AbortError).cause).toBe(before.signal.reason);

    const pidFile = join(work, 'pid');
    const controller = new AbortController();
    const running = sandbox
      .run(['sh', '-c', `sleep 60 & echo $! > ${pidFile}; wait`], { signal: controller.signal })
      .catch((e: unknown) => e);
    const written = () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n');
    expect(await eventually(written, 30_000)).toBe(true);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    controller.abort('enough');
    const error = await running;
    expect(error).toBeInstanceOf(AbortError);
    expect((error as AbortError).cause).toBe('enough');
    expect(alive(pid)).toBe(false);
  });

  it('refuses what is not an argv, an environment or a known option', async () => {
    await expect(sandbox.run('ls' as unknown as string[])).rejects.toThrow(
      "sandlock: run: argv must be an array such as ['ls', '-l'] (a string is not split), got \"ls\"",
    );
    await expect(
      sandbox.run(['true'], { env: { A: 1 } as unknown as Record<string, string> }),
    ).rejects.toThrow('sandlock: run: env must be an object of strings (A is number 1)');
    await expect(
      sandbox.run(['true'], { timout: 5 } as unknown as Record<string, never>),
    ).rejects.toThrow(
      /^sandlock: run: unknown option 'timout' \(known: stdio, env, cwd, onRefusal, name, workdirEnd, extraFilter, user, joinable, terminal, timeout/,
    );
    await expect(sandbox.spawn(['true'], { input: 'x' } as never)).rejects.toThrow(
      /unknown option 'input'/,
    );
    await expect(sandbox.run(['a\0b'])).rejects.toThrow(/argv\[0\] must be a string without NUL/);
  });
});
