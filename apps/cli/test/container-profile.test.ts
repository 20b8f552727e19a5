// sandlock under what a container's default seccomp profile refuses (Docker's
// and containerd's without CAP_SYS_PTRACE: pidfd_getfd; Docker 20.10 and
// containerd 1.6: process_vm_readv/writev too), reproduced without a
// container: the CLI runs under a filter that answers those calls EPERM.
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allow, compileRuleSet, errno, RuleSetBuilder, seccompFilterStep } from '@sandlock/seccomp';
import { ERRNO, hostArch, launch } from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, type CliResult, SYSTEM } from './helpers.js';

const PROFILE_REFUSES = ['pidfd_getfd', 'process_vm_readv', 'process_vm_writev'];

/** Runs the sandlock CLI under a filter refusing what a default container profile refuses. */
async function contained(args: readonly string[]): Promise<CliResult> {
  const rules = new RuleSetBuilder(hostArch(), allow);
  for (const name of PROFILE_REFUSES) rules.add(name, { action: errno(ERRNO.EPERM) });
  const started = launch({
    path: process.execPath,
    argv: [process.execPath, CLI, ...args],
    env: process.env as Record<string, string>,
    stdio: ['ignore', 'pipe', 'pipe'],
    handshake: false,
    steps: [{ kind: 'noNewPrivs' }, seccompFilterStep(compileRuleSet(rules.build()))],
  });
  let stdout = '';
  let stderr = '';
  started.child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  started.child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const status = new Promise<number | null>((resolve) =>
    started.child.once('exit', (code) => resolve(code)),
  );
  await started.closed;
  return { status: await status, stdout, stderr };
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sandlock-contained-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('sandlock under a default container seccomp profile', () => {
  it('check: says what is refused and what goes without it', async () => {
    const result = await contained(['check']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^pidfd_getfd\s+missing .*EPERM.*workdir \(copy-on-write\)/m);
    expect(result.stdout).toMatch(
      /^process_vm_readv\/writev\s+missing .*\/proc\/PID\/mem is used instead/m,
    );
    expect(result.stdout).toMatch(/^seccomp listener handed to the supervisor\s+OK .*SCM_RIGHTS/m);
    expect(result.stdout).toContain('Sandlock can run here.');
  }, 60_000);

  it('a supervised sandbox: virtual /proc files, paths read and results written through /proc/PID/mem', async () => {
    // A path longer than the first 256-byte read, across pages of the caller.
    const longPath = `/proc/self/${'./'.repeat(300)}status`;
    const result = await contained([
      'run',
      ...SYSTEM,
      '-r',
      '/proc',
      '--hostname',
      'boxed',
      '-e',
      `cat /proc/sys/kernel/hostname; uname -n; head -1 ${longPath}; ls /usr >/dev/null && echo listed`,
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('boxed\nboxed\nName:\thead\nlisted\n');
    expect(result.status).toBe(0);
  }, 60_000);

  it("listing /proc shows the sandbox's processes only, across reads of a small buffer", async () => {
    // getdents64 with room for one or two records a call: the offset the
    // module keeps must carry from one call to the next.
    const program = [
      'import ctypes, os',
      'libc = ctypes.CDLL(None, use_errno=True)',
      `NR = ${process.arch === 'arm64' ? 61 : 217}`,
      "fd = os.open('/proc', os.O_RDONLY | os.O_DIRECTORY)",
      'buf = ctypes.create_string_buffer(64)',
      'names, calls = [], 0',
      'while True:',
      '    n = libc.syscall(NR, fd, buf, 64)',
      "    if n < 0: raise OSError(ctypes.get_errno(), 'getdents64')",
      '    if n == 0: break',
      '    calls += 1',
      '    at = 0',
      '    while at < n:',
      "        reclen = int.from_bytes(buf.raw[at + 16:at + 18], 'little')",
      "        names.append(buf.raw[at + 19:at + reclen].split(b'\\0')[0].decode())",
      '        at += reclen',
      'pids = [int(x) for x in names if x.isdigit()]',
      "print(calls > 10, len(names) == len(set(names)), 'self' in names, pids == [os.getpid()])",
      'os.lseek(fd, 0, os.SEEK_SET)',
      "print(sorted(os.listdir(fd)) == sorted(n for n in names if n not in ('.', '..')))",
    ].join('\n');
    const result = await contained([
      'run',
      ...SYSTEM,
      '-r',
      '/proc',
      '--',
      '/usr/bin/python3',
      '-c',
      program,
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('True True True True\nTrue\n');
  }, 60_000);

  it('a supervised sandbox without address rules makes no Unix socket (nothing would check it)', async () => {
    const result = await contained([
      'run',
      ...SYSTEM,
      '-r',
      '/proc',
      '--',
      '/usr/bin/python3',
      '-c',
      [
        'import socket',
        'socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()',
        'try:',
        '    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
        'except PermissionError:',
        '    print("unix refused")',
      ].join('\n'),
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('unix refused\n');
  }, 60_000);

  it.runIf(process.getuid?.() === 0)(
    'root writing: chmod and fchmod made on its behalf, an O_PATH descriptor refused (EBADF)',
    async () => {
      const file = join(dir, 'meta');
      writeFileSync(file, 'x');
      chmodSync(file, 0o644);
      const result = await contained([
        'run',
        ...SYSTEM,
        '-w',
        dir,
        '--',
        '/usr/bin/python3',
        '-c',
        [
          'import os, sys',
          `path = ${JSON.stringify(file)}`,
          'os.chmod(path, 0o600)',
          'fd = os.open(path, os.O_RDONLY)',
          'os.fchmod(fd, 0o640)',
          'p = os.open(path, os.O_PATH)',
          'try:',
          '    os.fchmod(p, 0o777)',
          'except OSError as e:',
          '    print(e.errno == 9)',
          'print(oct(os.stat(path).st_mode & 0o777))',
        ].join('\n'),
      ]);
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe('True\n0o640\n');
      expect(statSync(file).mode & 0o777).toBe(0o640);
    },
    60_000,
  );

  it.each([
    [['--net-allow', 'tcp://127.0.0.1:1'], 'network address rules'],
    [['--workdir', '<dir>'], 'workdir (copy-on-write)'],
    [['--deterministic-dirs', '-r', '/proc'], 'deterministicDirs'],
    [['-m', '256M'], 'maxMemory'],
  ])(
    '%j does not start, naming pidfd_getfd',
    async (flags, feature) => {
      const args = flags.map((flag) => (flag === '<dir>' ? dir : flag));
      const result = await contained(['run', ...SYSTEM, ...args, '--', '/bin/echo', 'ran']);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('refuses pidfd_getfd');
      expect(result.stderr).toContain(feature);
      expect(result.stderr).toContain('CAP_SYS_PTRACE');
      expect(result.status).toBe(125);
    },
    60_000,
  );
});
