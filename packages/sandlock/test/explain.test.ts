// sandbox.describe() and the 'refusal' events of a SandboxProcess, on the real kernel.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectLandlock } from '@sandlock/landlock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox, SandboxRefusal } from '../src/index.js';
import { systemBuilder } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const hasPython = spawnSync(PYTHON, ['-c', 'pass']).status === 0;
if (!hasPython) console.warn(`skipping the memory refusal test: ${PYTHON} is not installed`);
const root = process.getuid?.() === 0;
if (!root) console.warn('skipping the metadata refusal test: fs-meta mediates only for root');

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sandlock-explain-'));
  writeFileSync(join(work, 'outside.txt'), 'x');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function openFds(): string[] {
  return readdirSync('/proc/self/fd').sort();
}

describe('sandbox.describe()', () => {
  it('says what a supervised policy becomes on this kernel', async () => {
    const sandbox = systemBuilder().fsRead('/proc').fsWrite(work).maxProcesses(5).build();
    const description = await sandbox.describe();
    expect(description.policy).toEqual(sandbox.policy);
    const support = detectLandlock();
    expect(description.landlock.abi).toBe(support.abi);
    if (support.available) {
      expect(description.landlock.status).toBe('full');
      expect(description.landlock.handled.fs).toContain('read_file');
      expect(description.landlock.handled.scopes).toContain('signal');
      expect(description.landlock.rules.paths).toBeGreaterThan(0);
    }
    expect(description.landlock.refused).toBeNull();
    expect(description.seccomp.instructions).toBeGreaterThan(10);
    expect(description.seccomp.denied).toContainEqual({ syscall: 'mount', errno: 1 });
    expect(description.seccomp.restricted).toContain('clone');
    const notified = new Map(description.seccomp.notified.map((n) => [n.syscall, n.modules]));
    expect(notified.get('clone')).toContain('process-limit');
    expect(notified.get('openat')?.[0]).toBe('proc-pids');
    expect(description.modules).toEqual(expect.arrayContaining(['proc-pids', 'process-limit']));
    expect(description).toMatchObject({
      supervisor: true,
      delegated: false,
      reaperBroker: true,
      hidesProcesses: true,
      mediatesMetadata: root,
    });
    // The JSON the CLI prints.
    expect(JSON.parse(JSON.stringify(description)).policy).toEqual(sandbox.policy);
  });

  it('says when nothing is supervised', async () => {
    const description = await systemBuilder().build().describe();
    expect(description.seccomp.notified).toEqual([]);
    expect(description).toMatchObject({
      supervisor: false,
      modules: [],
      reaperBroker: false,
      hidesProcesses: false,
      mediatesMetadata: false,
    });
  });

  it('starts nothing and leaves nothing open', async () => {
    const sandbox = systemBuilder().fsRead('/proc').maxProcesses(5).build();
    await sandbox.describe(); // the supervisor's modules load once per process
    const before = openFds();
    for (let i = 0; i < 5; i++) await sandbox.describe();
    expect(openFds()).toEqual(before);
  });
});

/** Runs `argv` and collects its refusals (listened to from the start). */
async function refusalsOf(sandbox: Sandbox, argv: string[]) {
  const refusals: SandboxRefusal[] = [];
  const result = await sandbox.run(argv, {
    encoding: 'utf8',
    onRefusal: (refusal) => refusals.push(refusal),
  });
  return { result, refusals };
}

describe("a SandboxProcess's 'refusal' events", () => {
  it('reports a hidden /proc entry and a /proc listing with hidden processes', async () => {
    const sandbox = systemBuilder().fsRead('/proc').build();
    const { result, refusals } = await refusalsOf(sandbox, [
      '/bin/sh',
      '-c',
      'cat /proc/1/status; ls /proc > /dev/null',
    ]);
    expect(result.stderr).toContain('No such file or directory');
    const rule = 'proc-pids: processes outside the sandbox are hidden';
    expect(refusals).toContainEqual({
      what: 'open /proc/1/status: process 1 is outside the sandbox',
      rule,
      module: 'proc-pids',
      syscall: 'openat',
      pid: expect.any(Number),
      dropped: 0,
    });
    expect(refusals).toContainEqual(
      expect.objectContaining({
        what: expect.stringMatching(/^list \/proc: \d+ process(es)? outside the sandbox left out$/),
        rule,
        syscall: 'getdents64',
      }),
    );
  });

  it('reports a fork over maxProcesses', async () => {
    const sandbox = systemBuilder().maxProcesses(1).build();
    const { result, refusals } = await refusalsOf(sandbox, ['/bin/sh', '-c', '/bin/true & wait']);
    expect(result.stderr).toMatch(/fork/i);
    expect(refusals).toContainEqual(
      expect.objectContaining({
        what: expect.stringMatching(/^(clone|fork|vfork): a new process \(1 of 1\)$/),
        rule: 'maxProcesses 1',
        module: 'process-limit',
      }),
    );
  });

  it.skipIf(!root)('reports a metadata change outside fsWrite', async () => {
    const writable = mkdtempSync(join(work, 'w-'));
    const sandbox = systemBuilder().fsRead(work).fsWrite(writable).build();
    const outside = join(work, 'outside.txt');
    const { result, refusals } = await refusalsOf(sandbox, ['/bin/chmod', '666', outside]);
    expect(result.exitCode).not.toBe(0);
    expect(refusals).toContainEqual(
      expect.objectContaining({
        what: `fchmodat ${outside}`,
        rule: 'fsWrite: not in a writable tree',
        module: 'fs-meta',
      }),
    );
  });

  it.skipIf(!hasPython)('reports a kill over maxMemory', async () => {
    const sandbox = systemBuilder().maxMemory('64M').build();
    const { result, refusals } = await refusalsOf(sandbox, [
      PYTHON,
      '-c',
      'b = bytearray(1 << 30)\nprint("survived")',
    ]);
    expect(result.killedBy?.reason).toBe('memory');
    expect(refusals).toEqual([
      {
        what: expect.stringMatching(/^the whole sandbox \(killed\): memory use [\d.]+ MiB$/),
        rule: 'maxMemory 64 MiB',
        module: null,
        syscall: null,
        pid: null,
        dropped: 0,
      },
    ]);
  });

  it('listens only while a listener is on', async () => {
    const sandbox = systemBuilder().fsRead('/proc').build();
    const sandboxed = await sandbox.spawn(['/bin/sh', '-c', 'cat /proc/1/status'], {
      stdio: 'ignore',
    });
    await sandboxed.wait();
    // Nobody listened: the worker forwarded nothing to the session.
    const session = (
      sandboxed as unknown as { watchers: { session: { refusalsForwarded: number } } }
    ).watchers.session;
    expect(session.refusalsForwarded).toBe(0);
  });
});
