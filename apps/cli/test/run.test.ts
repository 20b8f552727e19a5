import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandlock as cli, SYSTEM } from './helpers.js';

const sandlock = (args: readonly string[], options?: Parameters<typeof cli>[1]) =>
  cli(['run', ...args], options);

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sandlock-cli-'));
  mkdirSync(join(work, 'ro', 'hidden'), { recursive: true });
  mkdirSync(join(work, 'rw'));
  writeFileSync(join(work, 'ro', 'file.txt'), 'readable\n');
  writeFileSync(join(work, 'ro', 'hidden', 'secret.txt'), 'secret\n');
  writeFileSync(join(work, 'outside.txt'), 'outside\n');
  writeFileSync(join(work, 'ro', 'not-executable'), 'data\n');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('sandlock run: confinement', () => {
  it('denies reads outside the rules', () => {
    const result = sandlock([...SYSTEM, '--', 'cat', join(work, 'outside.txt')]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/Permission denied/);
  });

  it('denies writes under -r and allows them under -w', () => {
    const ro = sandlock([...SYSTEM, '-r', join(work, 'ro'), '-e', `echo x > ${work}/ro/new`]);
    expect(ro.status).not.toBe(0);
    expect(ro.stderr).toMatch(/Permission denied/);
    const rw = sandlock([...SYSTEM, '-w', join(work, 'rw'), '-e', `echo x > ${work}/rw/new`]);
    expect(rw.status).toBe(0);
    expect(readFileSync(join(work, 'rw', 'new'), 'utf8')).toBe('x\n');
  });

  it('hides an --fs-deny subtree inside a readable tree', () => {
    const args = [...SYSTEM, '-r', join(work, 'ro'), '--fs-deny', join(work, 'ro', 'hidden')];
    expect(sandlock([...args, '--', 'cat', join(work, 'ro', 'file.txt')]).stdout).toBe(
      'readable\n',
    );
    const hidden = sandlock([...args, '--', 'cat', join(work, 'ro', 'hidden', 'secret.txt')]);
    expect(hidden.status).toBe(1);
    expect(hidden.stdout).toBe('');
    expect(hidden.stderr).toMatch(/Permission denied/);
  });

  it('keeps processes outside out of reach (signal scoping)', () => {
    const result = sandlock([
      ...SYSTEM,
      '-e',
      `kill -0 ${process.pid} 2>/dev/null || echo blocked`,
    ]);
    expect(result.stdout).toBe('blocked\n');
  });
});

describe('sandlock run: exit codes', () => {
  it('passes the command status through', () => {
    expect(sandlock([...SYSTEM, '--', 'true']).status).toBe(0);
    expect(sandlock([...SYSTEM, '-e', 'exit 42']).status).toBe(42);
  });

  it('reports 128+N for a command killed by signal N', () => {
    expect(sandlock([...SYSTEM, '-e', 'kill -9 $$']).status).toBe(128 + 9);
  });

  it('exits 124 on timeout and kills a setsid grandchild', () => {
    const pidFile = join(work, 'rw', 'grandchild.pid');
    const result = sandlock([
      ...SYSTEM,
      '-w',
      join(work, 'rw'),
      '-w',
      '/dev/null',
      '-t',
      '0.5',
      '-e',
      `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 60' & sleep 60`,
    ]);
    expect(result.status).toBe(124);
    expect(result.stderr).toBe('sandlock: timed out after 0.5s\n');
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    expect(() => process.kill(grandchild, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });

  it('exits 125 when sandlock fails before the command starts', () => {
    const usage = sandlock(['--fs-reed', '/usr', '--', 'true']);
    expect(usage.status).toBe(125);
    expect(usage.stderr).toBe(
      "sandlock run: unknown option '--fs-reed'; did you mean '--fs-read'?\n",
    );
    const policy = sandlock(['-r', 'relative', '--net-bind', '99999', '--', 'true']);
    expect(policy.status).toBe(125);
    expect(policy.stderr).toBe(
      "sandlock: invalid policy (2 problems):\n  -r/--fs-read: expected an absolute path, got 'relative'\n  --net-bind: expected a TCP port from 0 to 65535, got '99999'\n",
    );
    const noCommand = sandlock([...SYSTEM]);
    expect(noCommand.status).toBe(125);
    expect(noCommand.stderr).toMatch(/no command given/);
  });

  it('exits 126 for a command that is not executable and 127 for one not found', () => {
    const notExecutable = sandlock([...SYSTEM, '--', join(work, 'ro', 'not-executable')]);
    expect(notExecutable.status).toBe(126);
    expect(notExecutable.stderr).toMatch(/not executable/);
    const notFound = sandlock([...SYSTEM, '--', 'no-such-command-sandlock']);
    expect(notFound.status).toBe(127);
    expect(notFound.stderr).toBe('sandlock: no-such-command-sandlock: command not found\n');
  });
});

describe('sandlock run: streams and environment', () => {
  it('keeps stdout and stderr separate and complete, and passes stdin through', () => {
    const big = 'x'.repeat(1 << 20);
    const result = sandlock([...SYSTEM, '-e', 'cat; echo done >&2'], { input: big });
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(big);
    expect(result.stderr).toBe('done\n');
  });

  it('--clean-env leaves only what --env sets', () => {
    const result = sandlock(
      [...SYSTEM, '--clean-env', '--env', 'A=1', '--env', 'B=x=y', '--', '/usr/bin/env'],
      {
        env: { ...process.env, LEAK: 'no' },
      },
    );
    // Every sandbox is supervised (fs-meta), so its program is also told the
    // supervisor's socket, for sandboxes started inside it (nesting).
    expect(result.stdout.replace(/^SANDLOCK_SUPERVISOR=\/.*\n/m, '')).toBe('A=1\nB=x=y\n');
  });

  it('--cwd sets the working directory', () => {
    const result = sandlock([...SYSTEM, '--cwd', join(work, 'ro'), '--', 'pwd']);
    expect(result.stdout).toBe(`${join(work, 'ro')}\n`);
  });

  it('--env without = is refused, naming the flag', () => {
    const result = sandlock([...SYSTEM, '--env', 'NOEQUALS', '--', 'true']);
    expect(result.status).toBe(125);
    expect(result.stderr).toBe(
      "sandlock: invalid policy: --env: expected KEY=VALUE, got 'NOEQUALS'\n",
    );
  });
});

describe('sandlock run: machine-readable output', () => {
  const withStatusFd = (args: string[]) => {
    const result = spawnSync(
      '/bin/sh',
      ['-c', `exec "$@" 3>&1 1>/dev/null 2>/dev/null`, 'sh', process.execPath, ...args],
      { encoding: 'utf8' },
    );
    return { status: result.status, line: result.stdout };
  };
  const cli = new URL('../bin/sandlock.cjs', import.meta.url).pathname;

  it('--status-fd writes one JSON line', () => {
    expect(withStatusFd([cli, 'run', '--status-fd', '3', ...SYSTEM, '-e', 'exit 3']).line).toBe(
      '{"exit_code":3}\n',
    );
    expect(withStatusFd([cli, 'run', '--status-fd', '3', ...SYSTEM, '-e', 'kill -9 $$']).line).toBe(
      '{"signal":"SIGKILL"}\n',
    );
    expect(
      withStatusFd([cli, 'run', '--status-fd', '3', '-t', '0.2', ...SYSTEM, '--', 'sleep', '10'])
        .line,
    ).toBe('{"timeout":true}\n');
  });

  it('--json-errors prints errors as JSON', () => {
    const result = sandlock(['--json-errors', '-r', 'relative', '--', 'true']);
    expect(result.status).toBe(125);
    const error = JSON.parse(result.stderr).error;
    expect(error).toMatchObject({ kind: 'policy', exit_code: 125 });
    expect(error.problems).toEqual([
      {
        field: 'fsRead[0]',
        message: "expected an absolute path, got 'relative'",
        origin: { kind: 'flag', flag: '-r/--fs-read', text: 'relative' },
      },
    ]);
  });
});
