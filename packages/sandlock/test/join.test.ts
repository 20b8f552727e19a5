import { closeSync, openSync, readFileSync } from 'node:fs';
import { trySyscall } from '@sandlock/sys';
import { afterAll, describe, expect, it } from 'vitest';
import type { SandboxProcess } from '../src/index.js';
import { systemBuilder } from './helpers.js';

// SandboxProcess.join: a program started in a running sandbox by its zygote.

const devNull = openSync('/dev/null', 'r+');
const running: SandboxProcess[] = [];
afterAll(async () => {
  for (const sandboxed of running) await sandboxed.kill('SIGKILL').catch(() => {});
  closeSync(devNull);
});

/** A pipe: what the joined program writes to `write` is read back by `read()`. */
function pipe(): { write: number; read(): string } {
  const fds = Buffer.alloc(8);
  expect(trySyscall('pipe2', fds, 0o2000000)).toBe(0);
  const [readEnd, writeEnd] = [fds.readInt32LE(0), fds.readInt32LE(4)];
  return {
    write: writeEnd,
    read() {
      closeSync(writeEnd);
      try {
        return readFileSync(readEnd, 'utf8');
      } finally {
        closeSync(readEnd);
      }
    },
  };
}

function shell(script: string, stdout: number) {
  return {
    path: '/bin/sh',
    argv: ['sh', '-c', script],
    env: ['PATH=/usr/bin:/bin'],
    stdio: [devNull, stdout, devNull] as const,
  };
}

describe('SandboxProcess.join', () => {
  it('runs a program in the running sandbox, counted with its processes (not the zygote)', async () => {
    // The program and the joined shell: a fork of the shell is the third.
    const sandbox = systemBuilder().maxProcesses(2).build();
    const sandboxed = await sandbox.spawn(['sleep', '60'], { stdio: 'ignore', joinable: true });
    running.push(sandboxed);
    const out = pipe();
    const joined = await sandboxed.join(shell('/bin/true && echo forked', out.write));
    expect((await joined.wait()).exitCode).not.toBe(0);
    expect(out.read()).toBe('');

    const roomier = systemBuilder().maxProcesses(3).build();
    const other = await roomier.spawn(['sleep', '60'], { stdio: 'ignore', joinable: true });
    running.push(other);
    const out2 = pipe();
    const forked = await other.join(shell('/bin/true && echo forked; exit 3', out2.write));
    expect(await forked.wait()).toEqual({ exitCode: 3, signal: null });
    expect(out2.read()).toBe('forked\n');
  });

  it('leaves the whole of maxProcesses to the program: the zygote is not counted', async () => {
    // Three processes of the program's own (the shell and two sleeps); a fourth is refused.
    const refused: string[] = [];
    const sandboxed = await systemBuilder()
      .maxProcesses(3)
      .build()
      .spawn(
        [
          '/bin/sh',
          '-c',
          'sleep 60 & a=$!; sleep 60 & b=$!; trap "kill $a $b" EXIT; echo three; /bin/true; echo four',
        ],
        {
          stdio: ['ignore', 'pipe', 'ignore'],
          joinable: true,
          onRefusal: (refusal) => refused.push(refusal.what),
        },
      );
    running.push(sandboxed);
    let out = '';
    sandboxed.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    await sandboxed.wait();
    expect(out).toBe('three\n');
    expect(refused).toEqual([expect.stringMatching(/a new process \(3 of 3\)$/)]);
  });

  it('reaches the joined program with kill(), and the sandbox kill reaches it too', async () => {
    const sandboxed = await systemBuilder()
      .build()
      .spawn(['sleep', '60'], { stdio: 'ignore', joinable: true });
    running.push(sandboxed);
    const first = await sandboxed.join(shell('sleep 60', devNull));
    first.kill('SIGTERM');
    expect(await first.wait()).toEqual({ exitCode: null, signal: 'SIGTERM' });
    const second = await sandboxed.join(shell('sleep 60', devNull));
    await sandboxed.kill('SIGKILL');
    expect(await second.wait()).toEqual({ exitCode: null, signal: 'SIGKILL' });
    await sandboxed.wait();
    await expect(sandboxed.join(shell('true', devNull))).rejects.toThrow(/cannot join/);
  });

  it('refuses a sandbox not spawned joinable', async () => {
    const sandboxed = await systemBuilder().build().spawn(['sleep', '60'], { stdio: 'ignore' });
    running.push(sandboxed);
    await expect(sandboxed.join(shell('true', devNull))).rejects.toThrow(/not spawned joinable/);
  });
});
