import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SYSTEM, sandlock } from './helpers.js';

const PYTHON = '/usr/bin/python3';

describe('sandlock run: what the sandbox sees', () => {
  it('--hostname: uname, /etc/hostname and Python agree', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '--hostname',
      'sandbox-box',
      '-e',
      `uname -n; cat /etc/hostname; ${PYTHON} -c 'import socket; print(socket.gethostname())'`,
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('sandbox-box\nsandbox-box\nsandbox-box\n');
  });

  it('--name sets the host name unless --hostname is given', () => {
    expect(sandlock(['run', ...SYSTEM, '--name', 'job-7', '--', 'uname', '-n']).stdout).toBe(
      'job-7\n',
    );
    expect(
      sandlock(['run', ...SYSTEM, '--name', 'job-7', '--hostname', 'other', '--', 'uname', '-n'])
        .stdout,
    ).toBe('other\n');
  });

  it('--num-cpus: nproc, Python and Node report the same count', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '--num-cpus',
      '3',
      '-e',
      `nproc; ${PYTHON} -c 'import os; print(os.cpu_count())'; ${process.execPath} -e 'console.log(require("os").cpus().length)'`,
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('3\n3\n3\n');
  });
});

describe('sandlock run: memory the sandbox sees', () => {
  it('-m makes /proc/meminfo report the limit', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-m',
      '300M',
      '--',
      '/usr/bin/python3',
      '-c',
      "print([l for l in open('/proc/meminfo') if l.startswith('MemTotal:')][0].split()[1])",
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`${300 * 1024}\n`);
  });
});

describe('sandlock run: deterministic directory order', () => {
  it('--deterministic-dirs lists directories sorted by name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sandlock-dirs-'));
    for (const name of ['delta', 'alpha', 'charlie', 'bravo', 'echo'])
      writeFileSync(join(dir, name), '');
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-r',
      dir,
      '--deterministic-dirs',
      '--',
      'ls',
      '-f',
      dir,
    ]);
    rmSync(dir, { recursive: true, force: true });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('.\n..\nalpha\nbravo\ncharlie\ndelta\necho\n');
  });
});

describe('sandlock run: the processes the sandbox sees', () => {
  it('-r /proc: only its own processes are listed and openable', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-r',
      '/proc',
      '-w',
      '/dev/null',
      '-e',
      `ls /proc | grep -c '^[0-9]'; cat /proc/1/status 2>&1 >/dev/null | sed 's/^cat: //'; cat /proc/${process.pid}/cmdline 2>&1 >/dev/null | sed 's/^cat: //'; grep -c . /proc/self/status >/dev/null && echo self ok; ps -e --no-headers | wc -l`,
    ]);
    expect(result.stderr).toBe('');
    const [listed, one, runner, self, ps] = result.stdout.trim().split('\n');
    // sh, ls and grep; then sh, ps and wc.
    expect(Number(listed)).toBe(3);
    expect(one).toBe('/proc/1/status: No such file or directory');
    expect(runner).toBe(`/proc/${process.pid}/cmdline: No such file or directory`);
    expect(self).toBe('self ok');
    expect(Number(ps)).toBe(3);
  });

  it('-r /proc: host-sensitive files are refused', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-r',
      '/proc',
      '-w',
      '/dev/null',
      '-e',
      'head -c1 /proc/kallsyms 2>&1 >/dev/null | sed "s/^head: //"',
    ]);
    expect(result.stdout).toBe("cannot open '/proc/kallsyms' for reading: Permission denied\n");
  });

  it('--hostname: /etc/hosts names the virtual host', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '--hostname',
      'sandbox-box',
      '-e',
      `getent hosts sandbox-box; ${PYTHON} -c 'import socket; print(socket.gethostbyname(socket.gethostname()))'`,
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^127\.0\.1\.1\s+sandbox-box\n127\.0\.1\.1\n$/);
  });
});
