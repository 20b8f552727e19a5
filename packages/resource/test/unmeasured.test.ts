// The limits fail closed when this process cannot read the sandbox's /proc
// files (finding 3 of the outside review: a sandbox that ran the supervising
// process out of descriptors switched its limits off). Here this process is
// run out of descriptors itself (tools/test-support/descriptors.ts), as the
// attack did, while a sandbox tries to get past its limit.
import { syscallNumber } from '@sandlock/sys';
import { describe, expect, it } from 'vitest';
import { withoutDescriptors } from '../../../tools/test-support/descriptors.js';
import { PYTHON } from '../../../tools/test-support/index.js';
import { ProcessCounter, type ProcessProbe, UNMEASURED_KILL_MS } from '../src/index.js';
import { type SandboxProcess, systemBuilder } from './helpers.js';

/** The first line the program writes (it says it is ready). */
function firstLine(sandboxed: SandboxProcess): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      const end = text.indexOf('\n');
      if (end < 0) return;
      sandboxed.stdout!.off('data', onData);
      resolve(text.slice(0, end));
    };
    sandboxed.stdout!.on('data', onData);
  });
}

/** The rest of the program's output, from now on. */
function restOf(sandboxed: SandboxProcess): () => string {
  const chunks: Buffer[] = [];
  sandboxed.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk));
  return () => Buffer.concat(chunks).toString();
}

/** Waits for the sandbox to end, or gives up after `ms` (a hang, not a timing). */
async function endOf(sandboxed: SandboxProcess, ms = 30_000) {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  try {
    return await Promise.race([sandboxed.wait(), hang]);
  } finally {
    clearTimeout(timer);
  }
}

const GROW = [
  'import sys',
  'print("ready", flush=True)',
  'sys.stdin.readline()',
  'print("running", flush=True)',
  'b = []',
  'for i in range(1024): b.append(bytearray(1 << 20))',
  'print("finished", flush=True)',
].join('\n');

describe('limits when this process cannot read /proc (EMFILE)', () => {
  it('holds a sandbox it cannot measure stopped, then kills it, saying why', async () => {
    const sandboxed = await systemBuilder().maxMemory('64M').build().spawn([PYTHON, '-c', GROW]);
    expect(await firstLine(sandboxed)).toBe('ready');
    const output = restOf(sandboxed);
    const status = await withoutDescriptors(() => {
      sandboxed.stdin!.write('go\n');
      return endOf(sandboxed);
    });
    if (status === null) await sandboxed.kill();
    expect(status).not.toBeNull();
    expect(status!.signal).toBe('SIGKILL');
    expect(status!.killedBy).toMatchObject({ reason: 'unmeasured' });
    expect(status!.killedBy!.message).toMatch(
      /^the sandbox could not be measured for \d+\.\d s \(\/proc\/\d+\/[\w/]+: EMFILE\), so maxMemory could not be enforced$/,
    );
    expect(output()).not.toContain('finished');
  });

  it('keeps the limit armed through a shortage: continues the sandbox, then kills it over the limit', async () => {
    const sandboxed = await systemBuilder().maxMemory('64M').build().spawn([PYTHON, '-c', GROW]);
    expect(await firstLine(sandboxed)).toBe('ready');
    const output = restOf(sandboxed);
    // A few checks fail (each retried after 20 ms), well under the bound.
    await withoutDescriptors(() => new Promise((resolve) => setTimeout(resolve, 200)));
    sandboxed.stdin!.write('go\n');
    const status = await endOf(sandboxed);
    expect(status).not.toBeNull();
    expect(output()).toContain('running');
    expect(output()).not.toContain('finished');
    expect(status!.killedBy).toMatchObject({ reason: 'memory', limit: 64 * 1024 * 1024 });
  });

  it('refuses every fork it cannot count, then kills the sandbox, saying why', async () => {
    const script = [
      'import os, sys, time',
      'print("ready", flush=True)',
      'sys.stdin.readline()',
      'end = time.time() + 20',
      'while time.time() < end:',
      '    try:',
      '        pid = os.fork()',
      '    except BlockingIOError:',
      '        time.sleep(0.02)',
      '        continue',
      '    if pid == 0:',
      '        time.sleep(1)',
      '        os._exit(0)',
      '    print("forked", flush=True)',
    ].join('\n');
    const sandboxed = await systemBuilder().maxProcesses(3).build().spawn([PYTHON, '-c', script]);
    expect(await firstLine(sandboxed)).toBe('ready');
    const output = restOf(sandboxed);
    const status = await withoutDescriptors(() => {
      sandboxed.stdin!.write('go\n');
      return endOf(sandboxed);
    });
    if (status === null) await sandboxed.kill();
    expect(status).not.toBeNull();
    expect(output()).toBe('');
    expect(status!.killedBy?.reason).toBe('supervisor');
    expect(status!.killedBy!.message).toMatch(
      /^module 'process-limit' \(clone\): the sandbox's processes could not be counted for \d+\.\d s \(.*EMFILE.*\), so maxProcesses could not be enforced$/,
    );
  });
});

describe('ProcessCounter when the kernel cannot be read', () => {
  const FORK = syscallNumber('fork');

  /** A kernel whose /proc reads fail with EMFILE while `failing` is set. */
  function shortOfDescriptors() {
    const state = { failing: false };
    const fail = () => {
      if (state.failing) throw Object.assign(new Error('EMFILE'), { code: 'EMFILE' });
    };
    const probe: ProcessProbe = {
      threads: (pid) => {
        fail();
        return [pid];
      },
      children: () => {
        fail();
        return [];
      },
      inSyscall: () => false,
      open: (pid) => {
        fail();
        return pid;
      },
      reaped: () => false,
      close: () => {},
    };
    return { state, probe };
  }

  it('refuses, then says kill once the failures have lasted the bound, and recovers', () => {
    const { state, probe } = shortOfDescriptors();
    const counter = new ProcessCounter(1, 10, probe, 0);
    expect(counter.decide(2, FORK, 0n)).toBe('allow');
    state.failing = true;
    // unmeasuredKill 0: the first failure is already past the bound.
    expect(counter.decide(3, FORK, 0n)).toBe('kill');
    expect(counter.failure?.code).toBe('EMFILE');
    state.failing = false;
    expect(counter.decide(4, FORK, 0n)).toBe('allow');
    expect(counter.failure).toBeNull();
  });

  it('refuses while within the bound', () => {
    const { state, probe } = shortOfDescriptors();
    const counter = new ProcessCounter(1, 10, probe);
    expect(counter.unmeasuredKill).toBe(UNMEASURED_KILL_MS);
    state.failing = true;
    expect(counter.decide(2, FORK, 0n)).toBe('deny');
    expect(counter.decide(2, FORK, 0n)).toBe('deny');
    expect(counter.denied).toBe(2);
  });
});
