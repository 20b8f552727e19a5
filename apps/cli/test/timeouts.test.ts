import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CLI, sandlock } from './helpers.js';

describe('sandlock run: durations, --kill-after and --status-fd', () => {
  it('takes timeout(1) durations and refuses what is not a positive one, before running', () => {
    for (const bad of ['-1', 'NaN', '0', '1x', '']) {
      const result = sandlock(['run', '--system', '-t', bad, '--', 'touch', '/tmp/never']);
      expect(result.status, bad).toBe(125);
      expect(result.stderr).toMatch(/-t\/--timeout expects a positive duration/);
    }
    // Longer than Node's timers can wait at once: the command runs to its end.
    for (const long of ['3000000', '40d', '1.5h']) {
      expect(sandlock(['run', '--system', '-t', long, '--', 'true']).status, long).toBe(0);
    }
    const expired = sandlock(['run', '--system', '-t', '0.2s', '--', 'sleep', '30']);
    expect(expired).toMatchObject({ status: 124, stderr: 'sandlock: timed out after 0.2s\n' });
  });

  it('--kill-after: a program that ignores SIGTERM is killed after the grace period', () => {
    const ignoring = ['sh', '-c', 'trap "" TERM; echo ready; sleep 30 & wait; sleep 30'];
    const result = sandlock(['run', '--system', '-t', '0.2', '-k', '0.2', '--', ...ignoring]);
    expect(result.status).toBe(124);
    expect(result.stdout).toBe('ready\n');
  });

  it('--kill-after: a SIGTERM to sandlock is forwarded, then SIGKILL follows', async () => {
    const child = spawn(
      process.execPath,
      [
        CLI,
        'run',
        '--system',
        '-k',
        '0.2',
        '--',
        'sh',
        '-c',
        'trap "" TERM; echo ready; sleep 30 & wait; sleep 30',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const [first] = await once(child.stdout!, 'data');
    expect(String(first)).toBe('ready\n');
    child.kill('SIGTERM');
    const [code, signal] = await once(child, 'exit');
    // The program ended by SIGKILL: 128 + 9.
    expect({ code, signal }).toEqual({ code: 137, signal: null });
  });

  it("--status-fd refuses Node's own descriptors and closed ones, before anything runs", () => {
    for (const fd of ['3', '4', '5', '99', 'x']) {
      const result = sandlock(['run', '--system', '--status-fd', fd, '--', 'touch', '/tmp/never']);
      expect(result.status, fd).toBe(125);
      expect(result.stderr).toMatch(/--status-fd/);
    }
  });

  it("--status-fd whose reader is gone: a warning, and the exit status stays the command's", async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'run', '--system', '--status-fd', '3', '--', 'sh', '-c', 'sleep 0.3; exit 3'],
      {
        stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      },
    );
    // Close our end of the status pipe: the write after the run gets EPIPE.
    (child.stdio[3] as NodeJS.ReadableStream & { destroy(): void }).destroy();
    let stderr = '';
    child.stderr!.on('data', (chunk) => {
      stderr += chunk;
    });
    const [code] = await once(child, 'exit');
    expect(code).toBe(3);
    expect(stderr).toMatch(/^sandlock: warning: cannot write the status to descriptor 3: /);
  });
});
