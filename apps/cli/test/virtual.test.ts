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
