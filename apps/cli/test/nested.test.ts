import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLI, FORK_SIX, INNER, sandlock } from './helpers.js';

/** `sandlock run OUTER… -- sandlock run INNER…`, both with what Node needs to read. */
function nested(outer: readonly string[], inner: readonly string[]) {
  return sandlock([
    'run',
    ...INNER,
    '-w',
    '/dev/null',
    ...outer,
    '--',
    process.execPath,
    CLI,
    'run',
    ...INNER,
    ...inner,
  ]);
}

describe('a sandbox inside a sandbox', () => {
  it('enforces its own limit inside a sandbox that reads /proc (and so is supervised)', () => {
    expect(existsSync(CLI)).toBe(true);
    const result = nested(['-r', '/proc'], ['-P', '3', '--', '/usr/bin/python3', '-c', FORK_SIX]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('2 4\n');
    expect(result.status).toBe(0);
  });

  it('refuses a limit it cannot see, instead of enforcing nothing', () => {
    const result = nested([], ['-P', '3', '--', 'true']);
    expect(result.status).toBe(125);
    expect(result.stderr).toBe(
      'sandlock: maxProcesses needs /proc, which this process cannot read (EACCES); inside another sandbox, grant it /proc\n',
    );
  });

  it("has its limit enforced by the outer sandbox's supervisor when that one is supervised", () => {
    // -P 50 gives the outer sandbox a supervisor: the kernel allows one
    // listener per filter chain, so the outer supervisor takes -P 3 on.
    const result = nested(
      ['-r', '/proc', '-P', '50'],
      ['-P', '3', '--', '/usr/bin/python3', '-c', FORK_SIX],
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('2 4\n');
    expect(result.status).toBe(0);
  });

  it('sees its own host name, CPU count and processes through the outer supervisor', () => {
    const result = nested(
      ['-r', '/proc'],
      [
        '-r',
        '/proc',
        '--hostname',
        'inner',
        '--num-cpus',
        '1',
        '-e',
        'uname -n; cat /etc/hostname; nproc; ls /proc | grep -c "^[0-9]"',
      ],
    );
    expect(result.stderr).toBe('');
    // sh, ls and grep: the outer sandlock and its Node are hidden from the inner sandbox.
    expect(result.stdout).toBe('inner\ninner\n1\n3\n');
    expect(result.status).toBe(0);
  });

  it('gets nothing on its behalf that the outer sandbox does not grant', () => {
    // The outer sandbox intercepts opens (its host name) but cannot read
    // /proc. The inner one asks for /proc: the outer supervisor, which would
    // open /proc files on its behalf outside both sandboxes, sees its policy
    // narrowed to the outer one's, so Landlock's refusal stands.
    const result = nested(
      ['--hostname', 'outer'],
      ['-r', '/proc', '-e', 'uname -n; head -1 /proc/self/status 2>&1 | sed "s/^head: //"'],
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      "outer\ncannot open '/proc/self/status' for reading: Permission denied\n",
    );
  });

  it('nests three deep: each level adds its policy, the innermost first', () => {
    const result = nested(
      ['-r', '/proc', '-P', '50'],
      [
        '-w',
        '/dev/null',
        '-r',
        '/proc',
        '--hostname',
        'middle',
        '--',
        process.execPath,
        CLI,
        'run',
        ...INNER,
        '-r',
        '/proc',
        '-P',
        '3',
        '--',
        '/usr/bin/python3',
        '-c',
        `import os; print(os.uname().nodename)\n${FORK_SIX}`,
      ],
    );
    expect(result.stderr).toBe('');
    // The middle sandbox's host name reaches the inner one; the inner limit holds.
    expect(result.stdout).toBe('middle\n2 4\n');
    expect(result.status).toBe(0);
  });

  it('refuses a policy the outer supervisor cannot see the calls of, naming them', () => {
    const result = nested(['-P', '50'], ['--hostname', 'box', '--', 'uname', '-n']);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      "sandlock: the supervisor of the sandbox around this process cannot take this sandbox's policy on: the outer sandbox's filter does not notify open, openat, openat2, which hostname needs\n",
    );
    expect(result.status).toBe(125);
  });

  it('does not take a socket that is not its supervisor for one', () => {
    const result = sandlock([
      'run',
      ...INNER,
      '-r',
      '/proc',
      '-P',
      '50',
      '-e',
      `SANDLOCK_SUPERVISOR=/nonexistent/socket ${process.execPath} ${CLI} run ${INNER.join(' ')} -P 3 -- true`,
    ]);
    expect(result.status).toBe(125);
    expect(result.stderr).toMatch(
      /^sandlock: the supervisor of the sandbox around this process cannot take this sandbox's policy on: SANDLOCK_SUPERVISOR=\/nonexistent\/socket: connect ENOENT/,
    );
  });
});
