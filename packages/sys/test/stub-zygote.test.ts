// The sandbox's zygote (launch()'s `zygote`, joinSandbox), run for real: a
// program joined to a running sandbox is in the sandbox's own Landlock
// domain (it may signal the sandbox's program inside a signal scope, which a
// second sandbox with the same rules may not) and under its seccomp filter;
// its exit status comes from its pidfd (PIDFD_INFO_EXIT, Linux 6.15).

import { closeSync, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { brokerSocketPair } from '../src/broker.js';
import { close, pidfdOpen, trySyscall } from '../src/libc.js';
import { pidfdInfo } from '../src/pidfd-info.js';
import { LaunchError, type Launched, launch } from '../src/stub/launch.js';
import { joinSandbox } from '../src/stub/zygote.js';
import { syscallNumber } from '../src/syscalls/index.js';

const LANDLOCK_SCOPE_SIGNAL = 2n;

/** A Landlock ruleset handling nothing but signal scoping: its fd, or -errno. */
function scopeOnlyRuleset(): number {
  const attr = Buffer.alloc(24); // handled_access_fs, handled_access_net, scoped
  attr.writeBigUInt64LE(LANDLOCK_SCOPE_SIGNAL, 16);
  return trySyscall('landlock_create_ruleset', attr, attr.length, 0);
}

/** A seccomp filter (classic BPF) refusing uname(2) with EPERM, allowing the rest. */
function refuseUname(): Buffer {
  const program = Buffer.alloc(4 * 8);
  const put = (index: number, code: number, jt: number, jf: number, k: number) => {
    program.writeUInt16LE(code, index * 8);
    program.writeUInt8(jt, index * 8 + 2);
    program.writeUInt8(jf, index * 8 + 3);
    program.writeUInt32LE(k >>> 0, index * 8 + 4);
  };
  put(0, 0x20, 0, 0, 0); // ld [0]: the syscall number
  put(1, 0x15, 0, 1, syscallNumber('uname')); // jeq uname
  put(2, 0x06, 0, 0, 0x00050001); // ret SECCOMP_RET_ERRNO | EPERM
  put(3, 0x06, 0, 0, 0x7fff0000); // ret SECCOMP_RET_ALLOW
  return program;
}

function scopeProblem(): string | undefined {
  const fd = scopeOnlyRuleset();
  if (fd < 0) return `landlock_create_ruleset with LANDLOCK_SCOPE_SIGNAL failed: errno ${-fd}`;
  closeSync(fd);
  const probe = pidfdOpen(process.pid);
  try {
    pidfdInfo(probe, true);
  } catch (error) {
    return `no PIDFD_GET_INFO: ${(error as Error).message}`;
  } finally {
    close(probe);
  }
  return undefined;
}

const devNull = openSync('/dev/null', 'r+');
const started: Launched[] = [];
afterAll(() => {
  for (const one of started) one.child.kill('SIGKILL');
  closeSync(devNull);
});

interface Sandbox {
  launched: Launched;
  zygote: number;
  /** The program's pid. */
  pid: number;
}

async function sandbox(withZygote: boolean): Promise<Sandbox> {
  const ruleset = scopeOnlyRuleset();
  const pair = brokerSocketPair();
  try {
    const launched = launch({
      path: '/bin/sleep',
      argv: ['sleep', '60'],
      env: {},
      stdio: [devNull, devNull, devNull],
      steps: [
        { kind: 'setsid' },
        { kind: 'noNewPrivs' },
        { kind: 'landlockRestrictSelf', rulesetFd: ruleset },
        { kind: 'seccompFilter', program: refuseUname(), flags: 0 },
      ],
      ...(withZygote ? { zygote: { socketFd: pair.reaper } } : {}),
    });
    started.push(launched);
    const report = await launched.ready;
    await launched.release();
    return { launched, zygote: pair.supervisor, pid: report.pid };
  } finally {
    close(ruleset);
    close(pair.reaper);
  }
}

/** The wait status of the process behind `pidfd`, once reaped (polled; only a hang meets the deadline). */
async function waitStatus(pidfd: number): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const info = pidfdInfo(pidfd, true);
    if (info?.waitStatus !== null && info?.waitStatus !== undefined) return info.waitStatus;
    if (Date.now() > deadline) throw new Error('the joined process did not end');
    await sleep(20);
  }
}

function shell(script: string) {
  return {
    path: '/bin/sh',
    argv: ['sh', '-c', script],
    env: ['PATH=/usr/bin:/bin'],
    stdio: [devNull, devNull, devNull] as const,
  };
}

const problem = scopeProblem();
if (problem !== undefined) console.warn(`stub-zygote: skipping: ${problem}`);

describe.skipIf(problem !== undefined)('the sandbox zygote', () => {
  it("runs a program in the sandbox's own Landlock domain and seccomp filter", async () => {
    const first = await sandbox(true);
    // Signal scope: kill -0 of the sandbox's program works from its own
    // domain only; uname is refused by the sandbox's filter.
    const joined = await joinSandbox(first.zygote, shell(`kill -0 ${first.pid} && ! uname`));
    try {
      expect(await waitStatus(joined.pidfd)).toBe(0);
    } finally {
      close(joined.pidfd);
    }
    // The control: a second sandbox with the same rules is another domain.
    const second = await sandbox(true);
    const outsider = await joinSandbox(second.zygote, shell(`kill -0 ${first.pid}`));
    try {
      expect(await waitStatus(outsider.pidfd)).not.toBe(0);
    } finally {
      close(outsider.pidfd);
    }
    for (const one of [first, second]) {
      one.launched.child.kill('SIGKILL');
      close(one.zygote);
    }
  });

  it('passes the exit status, argv, env, cwd and stdio', async () => {
    const box = await sandbox(true);
    const pipe = Buffer.alloc(8);
    expect(trySyscall('pipe2', pipe, 0o2000000)).toBe(0);
    const [readEnd, writeEnd] = [pipe.readInt32LE(0), pipe.readInt32LE(4)];
    const joined = await joinSandbox(box.zygote, {
      ...shell('echo "$1 $GREETING $(pwd)"; exit 7'),
      argv: ['sh', '-c', 'echo "$1 $GREETING $(pwd)"; exit 7', 'sh', 'hello'],
      env: ['GREETING=there', 'PATH=/usr/bin:/bin'],
      cwd: '/tmp',
      stdio: [devNull, writeEnd, devNull],
    });
    close(writeEnd);
    try {
      expect(await waitStatus(joined.pidfd)).toBe(7 << 8);
      const output = Buffer.alloc(100);
      const length = trySyscall('read', readEnd, output, output.length);
      expect(output.subarray(0, length).toString()).toBe('hello there /tmp\n');
    } finally {
      close(joined.pidfd);
      close(readEnd);
    }
    box.launched.child.kill('SIGKILL');
    close(box.zygote);
  });

  it('names the step that failed, and fails once the sandbox has ended', async () => {
    const box = await sandbox(true);
    await expect(
      joinSandbox(box.zygote, { ...shell('true'), path: '/nonexistent/program' }),
    ).rejects.toThrow(/execve \/nonexistent\/program failed: ENOENT/);
    await expect(
      joinSandbox(box.zygote, { ...shell('true'), cwd: '/nonexistent' }),
    ).rejects.toThrow(/chdir \/nonexistent failed: ENOENT/);
    process.kill(box.pid, 'SIGKILL');
    await box.launched.closed;
    await expect(joinSandbox(box.zygote, shell('true'))).rejects.toThrow(LaunchError);
    close(box.zygote);
  });

  it('fails without a zygote', async () => {
    const box = await sandbox(false);
    await expect(joinSandbox(box.zygote, shell('true'))).rejects.toThrow(/zygote/);
    box.launched.child.kill('SIGKILL');
    close(box.zygote);
  });
});
