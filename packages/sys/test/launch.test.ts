import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collect } from '../../../tools/test-support/index.js';
import {
  AUDIT_ARCH,
  CAP_SETPCAP,
  close,
  hostArch,
  ioctl,
  LaunchError,
  launch,
  resetStubExecutable,
  resolveExecutable,
  SECCOMP_FILTER_FLAG_NEW_LISTENER,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
  SECCOMP_IOCTL_NOTIF_RECV,
  SECCOMP_IOCTL_NOTIF_SEND,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_USER_NOTIF,
  syscallNumber,
} from '../src/index.js';
import { launchAndWait } from './helpers.js';

const arch = hostArch();
const ENV = { PATH: '/usr/bin:/bin' };

/** A tiny seccomp program: notify `nr`, allow everything else, kill other arches. */
function notifyOnly(nr: number): Buffer {
  const insns: [number, number, number, number][] = [
    [0x20, 0, 0, 4], // ld arch
    [0x15, 1, 0, AUDIT_ARCH[arch]], // jeq arch
    [0x06, 0, 0, SECCOMP_RET_KILL_PROCESS],
    [0x20, 0, 0, 0], // ld nr
    [0x15, 0, 1, nr],
    [0x06, 0, 0, SECCOMP_RET_USER_NOTIF],
    [0x06, 0, 0, SECCOMP_RET_ALLOW],
  ];
  const program = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, jt, jf, k], i) => {
    program.writeUInt16LE(code, i * 8);
    program.writeUInt8(jt, i * 8 + 2);
    program.writeUInt8(jf, i * 8 + 3);
    program.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return program;
}

describe('launch through the exec stub', () => {
  it('passes argv and env through exactly', async () => {
    const argv = ['/usr/bin/printf', '%s\\n', '', 'plain', 'ü ∑ 日本', 'a b', '-', '--x=1'];
    const env = ['EMPTY=', 'UTF=žluťoučký', 'WITH_EQUALS=a=b=c'];
    const result = await launchAndWait({
      path: argv[0]!,
      argv,
      env,
      steps: [{ kind: 'noNewPrivs' }],
    });
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toBe('\nplain\nü ∑ 日本\na b\n-\n--x=1\n');

    const envResult = await launchAndWait({ path: '/usr/bin/env', argv: ['env'], env });
    expect(envResult.stdout.toString()).toBe(`${env.join('\n')}\n`);
  });

  it('passes 256 KiB of arguments', async () => {
    const args = Array.from({ length: 256 }, (_, i) => `${i}:${'x'.repeat(1020)}`);
    const result = await launchAndWait({
      path: '/bin/sh',
      argv: ['sh', '-c', 'for a in "$@"; do printf "%s\\n" "$a"; done', 'sh', ...args],
      env: ENV,
    });
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toBe(`${args.join('\n')}\n`);
  });

  it('drops every capability, for good even when root execs', async () => {
    const status = readFileSync('/proc/self/status', 'latin1');
    const effective = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '0'}`);
    const bounding = (effective & (1n << BigInt(CAP_SETPCAP))) !== 0n;
    if (!bounding) console.warn('launch: no CAP_SETPCAP here: the bounding set is not checked');
    const lastCap = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'latin1'));
    const result = await launchAndWait({
      path: '/bin/sh',
      // The shell execs grep: an exec by uid 0 gets no capability back.
      argv: ['sh', '-c', 'exec grep ^Cap /proc/self/status'],
      env: ENV,
      steps: [{ kind: 'noNewPrivs' }, { kind: 'dropCapabilities', bounding, lastCap }],
    });
    expect(result.code).toBe(0);
    const sets = Object.fromEntries(
      result.stdout
        .toString()
        .trim()
        .split('\n')
        .map((line) => line.split(/:\s*/)),
    );
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapAmb']) {
      expect(sets[set], set).toBe('0000000000000000');
    }
    if (bounding) expect(sets.CapBnd).toBe('0000000000000000');
  });

  it('leaks no file descriptor above 2 into the target', async () => {
    const result = await launchAndWait({
      path: '/bin/ls',
      argv: ['ls', '/proc/self/fd'],
      env: ENV,
      steps: [{ kind: 'noNewPrivs' }],
    });
    // ls itself opens one fd (3) to read the directory.
    expect(result.stdout.toString().trim().split('\n').sort()).toEqual(['0', '1', '2', '3']);
  });

  it('names a failing step and its errno', async () => {
    const launched = launch({
      path: '/bin/true',
      argv: ['true'],
      env: ENV,
      steps: [{ kind: 'landlockRestrictSelf', rulesetFd: 0 }],
    });
    const exited = collect(launched.child);
    const error = await launched.ready.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LaunchError);
    expect((error as LaunchError).step).toBe('landlock_restrict_self');
    // fd 0 is not a Landlock ruleset, and without no_new_privs the kernel says EPERM first.
    expect((error as LaunchError).message).toMatch(
      /^sandlock: landlock_restrict_self failed: (EPERM|EBADFD|EBADF)/,
    );
    await expect(launched.release()).rejects.toBe(error);
    expect((await exited).code).toBe(127);
  });

  it('reports a chdir failure with the path', async () => {
    const launched = launch({
      path: '/bin/true',
      argv: ['true'],
      env: ENV,
      steps: [{ kind: 'chdir', path: '/nonexistent/dir' }],
    });
    await expect(launched.release()).rejects.toThrow(
      'sandlock: chdir /nonexistent/dir failed: ENOENT (No such file or directory)',
    );
  });

  it('gives ENOENT naming the path of a target that does not exist', async () => {
    const launched = launch({ path: '/nonexistent/program', argv: ['program'], env: ENV });
    const exited = collect(launched.child);
    const error = (await launched.release().catch((e: unknown) => e)) as LaunchError;
    expect(error).toBeInstanceOf(LaunchError);
    expect(error.code).toBe('ENOENT');
    expect(error.message).toBe(
      'sandlock: execve /nonexistent/program failed: ENOENT (No such file or directory)',
    );
    expect((await exited).code).toBe(127);
  });

  it('resolves commands like execvp', () => {
    expect(resolveExecutable('sh', '/nonexistent:/usr/bin:/bin')).toMatch(/\/sh$/);
    expect(resolveExecutable('no-such-command-here', '/usr/bin:/bin')).toBeUndefined();
    expect(resolveExecutable('./x', '/usr/bin')).toBe('./x');
  });

  it('hands the seccomp listener to the parent and confines the target', async () => {
    const uname = syscallNumber('uname', arch);
    const launched = launch({
      path: '/bin/sh',
      argv: ['sh', '-c', 'grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status; uname -s'],
      env: ENV,
      steps: [
        { kind: 'noNewPrivs' },
        {
          kind: 'seccompFilter',
          program: notifyOnly(uname),
          flags: SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
          listener: true,
        },
      ],
    });
    const finished = collect(launched.child);
    const report = await launched.ready;
    expect(report.listenerFd).toBeGreaterThan(2);
    const listener = launched.takeListener();
    try {
      await launched.release();
      // The child blocks in uname until we answer: receive (blocking) and refuse it.
      const notification = Buffer.alloc(80);
      ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, notification);
      expect(notification.readUInt32LE(8)).toBeGreaterThan(0); // pid of the shell's uname child
      expect(notification.readInt32LE(16)).toBe(uname);
      expect(notification.readUInt32LE(20)).toBe(AUDIT_ARCH[arch]);
      const response = Buffer.alloc(24);
      notification.copy(response, 0, 0, 8); // id
      response.writeInt32LE(-1, 16); // error = -EPERM
      ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, response);
    } finally {
      close(listener);
    }
    const result = await finished;
    expect(result.stdout.toString()).toBe('NoNewPrivs:\t1\nSeccomp:\t2\n');
    expect(result.stderr.toString()).toMatch(/Operation not permitted/);
    expect(result.code).not.toBe(0);
  });

  it('sends the listener over a socket (SCM_RIGHTS) where pidfd_getfd is refused', async () => {
    const uname = syscallNumber('uname', arch);
    const launched = launch({
      path: '/bin/sh',
      argv: ['sh', '-c', 'uname -s'],
      env: ENV,
      listenerTransfer: 'socket',
      steps: [
        { kind: 'noNewPrivs' },
        {
          kind: 'seccompFilter',
          program: notifyOnly(uname),
          flags: SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
          listener: true,
        },
      ],
    });
    const finished = collect(launched.child);
    await launched.ready;
    const listener = launched.takeListener();
    try {
      // Only one was sent.
      expect(() => launched.takeListener()).toThrow(/EAGAIN|no seccomp listener/);
      await launched.release();
      const notification = Buffer.alloc(80);
      ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, notification);
      expect(notification.readInt32LE(16)).toBe(uname);
      const response = Buffer.alloc(24);
      notification.copy(response, 0, 0, 8);
      response.writeInt32LE(-1, 16);
      ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, response);
    } finally {
      close(listener);
    }
    const result = await finished;
    expect(result.stderr.toString()).toMatch(/Operation not permitted/);
    expect(result.code).not.toBe(0);
  });

  it('falls back to a cached stub file when exec from a memfd is refused', async () => {
    const runtime = mkdtempSync(join(tmpdir(), 'sandlock-runtime-'));
    const saved = { stub: process.env.SANDLOCK_STUB, runtime: process.env.XDG_RUNTIME_DIR };
    process.env.SANDLOCK_STUB = 'file';
    process.env.XDG_RUNTIME_DIR = runtime;
    resetStubExecutable(arch);
    try {
      const result = await launchAndWait({
        path: '/bin/echo',
        argv: ['echo', 'from a file'],
        env: ENV,
      });
      expect(result.stdout.toString()).toBe('from a file\n');
      const [stub, ...others] = readdirSync(join(runtime, 'sandlock'));
      expect(others).toEqual([]);
      expect(stub).toMatch(new RegExp(`^exec-stub-${arch}-[0-9a-f]{16}$`));
      expect(statSync(join(runtime, 'sandlock', stub!)).mode & 0o777).toBe(0o500);
    } finally {
      restoreEnv('SANDLOCK_STUB', saved.stub);
      restoreEnv('XDG_RUNTIME_DIR', saved.runtime);
      resetStubExecutable(arch);
      rmSync(runtime, { recursive: true, force: true });
    }
  });
});

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
