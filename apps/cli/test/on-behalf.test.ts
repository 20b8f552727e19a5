// What the supervisor does on a sandbox's behalf never exceeds the
// sandbox's own authority: the attacks of an outside review, mounted through
// the CLI against the real kernel.
import { describe, expect, it } from 'vitest';
import { CLI, INNER, SYSTEM, sandlock } from './helpers.js';

/** Set in the supervising CLI's environment only: a sandbox must never read it. */
const MARK = 'SANDLOCK_TEST_MARK=host-secret-5f1d';
const env = { ...process.env, SANDLOCK_TEST_MARK: 'host-secret-5f1d' };
const PROC = [...SYSTEM, '-r', '/proc', '-w', '/dev/null'];

function shell(script: string, flags: readonly string[] = PROC) {
  return sandlock(['run', '--clean-env', ...flags, '--', '/bin/sh', '-c', script], { env });
}

describe('/proc opened on behalf, through missing components and ..', () => {
  it("never reads the supervisor's environment, memory map or memory", () => {
    for (const path of [
      '/proc/nope/../self/environ',
      '/nonexistent/../proc/self/environ',
      '/nonexistent/../proc/self/maps',
      '/proc/nope/../self/mem',
      '/proc/self/../nope/../self/environ',
    ]) {
      const result = shell(`tr '\\0' '\\n' < ${path}; echo "exit $?"`);
      expect(result.stdout).not.toContain(MARK);
      expect([path, result.stdout]).toEqual([path, 'exit 2\n']);
      expect(result.stderr).toMatch(/No such file/);
    }
  });

  it('reads its own /proc/self files, which name the caller', () => {
    const result = shell(
      'echo $$; sed -n "s/^Pid:\\t//p" /proc/self/status; tr "\\0" "\\n" < /proc/self/environ | grep -c SANDLOCK_TEST_MARK',
    );
    const [shellPid, catPid, marks] = result.stdout.trim().split('\n');
    expect(Number(catPid)).toBeGreaterThan(0);
    expect(catPid).not.toBe(shellPid); // sed's own process
    expect(marks).toBe('0');
  });

  it('hides pid 1 and the supervising process however the path reaches them', () => {
    const node = process.pid; // the CLI's parent is this test: outside too
    for (const path of [
      '/nonexistent/../proc/1/cmdline',
      '/proc/nope/../1/environ',
      `/proc/self/../${node}/status`,
      '/proc/thread-self/../../1/status',
    ]) {
      const result = shell(`cat ${path} >/dev/null; echo "exit $?"`);
      expect([path, result.stdout]).toEqual([path, 'exit 1\n']);
    }
  });
});

describe('a Landlock domain made inside a /proc-readable sandbox', () => {
  const nested = (inner: readonly string[], script: string) =>
    sandlock(
      [
        'run',
        ...INNER,
        '-r',
        '/proc',
        '-w',
        '/dev/null',
        '--',
        process.execPath,
        CLI,
        'run',
        ...INNER,
        ...inner,
        '--',
        '/usr/bin/python3',
        '-c',
        script,
      ],
      { env },
    );
  const PROBE = [
    'import os',
    'def attempt(path):',
    '    try:',
    '        open(path, "rb").read(); return "read"',
    '    except OSError as e: return e.strerror',
    'print(attempt("/proc/self/status"))',
    'print(attempt("/proc/%d/environ" % os.getppid()))',
    'print(attempt("/proc/%d/stat" % os.getppid()))',
    'try: os.listdir("/proc"); print("listed")',
    'except OSError as e: print(e.strerror)',
  ].join('\n');

  it('is served nothing its own domain refuses (a plain jail: no supervisor of its own)', () => {
    const result = nested([], PROBE);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      'Permission denied\nPermission denied\nPermission denied\nPermission denied\n',
    );
  });

  it('is served nothing its own domain refuses (a nested sandbox the outer supervisor serves)', () => {
    const result = nested(['--hostname', 'inner'], PROBE);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      'Permission denied\nPermission denied\nPermission denied\nPermission denied\n',
    );
  });
});
