// sandlock run --print-policy and --verbose.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM, sandlock } from './helpers.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sandlock-cli-explain-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('sandlock run --print-policy', () => {
  it('prints the policy and what it becomes here, and runs nothing', () => {
    const marker = join(work, 'ran');
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-w',
      work,
      '-P',
      '4',
      '--print-policy',
      '--',
      '/bin/touch',
      marker,
    ]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(existsSync(marker)).toBe(false);
    const description = JSON.parse(result.stdout);
    const policy = JSON.parse(sandlock(['policy', ...SYSTEM, '-w', work, '-P', '4']).stdout);
    expect(description.policy).toEqual(policy);
    expect(description.seccomp.notified).toContainEqual({
      syscall: 'clone',
      modules: ['process-limit'],
    });
    expect(description.supervisor).toBe(true);
    expect(typeof description.landlock.abi).toBe('number');
    expect(description.seccomp.instructions).toBeGreaterThan(0);
  });

  it('is exit 125 for a bad policy', () => {
    const result = sandlock(['run', '-m', 'lots', '--print-policy']);
    expect(result.status).toBe(125);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('-m/--max-memory');
  });
});

describe('sandlock run --verbose', () => {
  it('prints a line for each refusal, with its rule', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-r',
      '/proc',
      '--verbose',
      '--',
      '/bin/sh',
      '-c',
      'cat /proc/1/status',
    ]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      'sandlock: refused: open /proc/1/status: process 1 is outside the sandbox (proc-pids: processes outside the sandbox are hidden)\n',
    );
  });

  it('prints a refused fork with the process limit', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-P',
      '1',
      '--verbose',
      '--',
      '/bin/sh',
      '-c',
      '/bin/true & wait',
    ]);
    // The shell writes its own complaint ("/bin/sh: 0: ", then "Cannot
    // fork") in two writes to the same stderr: the line may land between.
    expect(result.stderr).toMatch(
      /sandlock: refused: (clone|fork|vfork): a new process \(1 of 1\) \(maxProcesses 1\)\n/,
    );
  });

  it('prints nothing of the kind without --verbose', () => {
    const result = sandlock(['run', ...SYSTEM, '-r', '/proc', '--', '/bin/cat', '/proc/1/status']);
    expect(result.status).toBe(1);
    expect(result.stderr).not.toContain('sandlock: refused');
  });
});
