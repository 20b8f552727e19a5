// What happens to supervised sandboxes when the supervising Node process
// ends. The reaper does the killing (see @sandlock/sys, forkReaper); these
// tests check that the supervisor neither prevents it nor hangs the exit.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectLandlock } from '@sandlock/landlock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, running } from './support/sandbox.js';

// The reaper reaches a setsid'd process with kill(-1) inside a Landlock
// domain scoped for signals (ABI 6); without it, only its process group.
const scoped = detectLandlock().abi >= 6;
if (!scoped) {
  console.warn('skipping the kill tests: Landlock signal scoping (ABI 6) is unavailable here');
}

const register = fileURLToPath(new URL('../src/dev/register.mjs', import.meta.url));
const script = fileURLToPath(new URL('./support/supervised-child.ts', import.meta.url));

let work: string;
const strays: number[] = [];
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sandlock-lifecycle-'));
});
afterAll(() => {
  for (const pid of strays) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  rmSync(work, { recursive: true, force: true });
});

function start(
  mode: string,
  file: string,
): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', register, script, mode, file], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))),
  );
  return { child, exited };
}

async function pidsFrom(file: string): Promise<number[]> {
  expect(
    // Starting Node with a TypeScript loader takes long on a loaded machine: this only catches a hang.
    await eventually(() => existsSync(file) && readFileSync(file, 'utf8') !== '', 90_000),
  ).toBe(true);
  const pids = JSON.parse(readFileSync(file, 'utf8')) as number[];
  strays.push(...pids);
  return pids;
}

describe('when the supervising process ends', () => {
  it.skipIf(!scoped)(
    'SIGKILL of the Node process leaves no sandboxed process behind',
    async () => {
      const file = join(work, 'hold.json');
      const { child, exited } = start('hold', file);
      const pids = await pidsFrom(file);
      expect(pids).toHaveLength(2);
      expect(pids.every(running)).toBe(true);
      child.kill('SIGKILL');
      await exited;
      // The kernel ends them (the reaper's parent-death signal): the deadline only catches a hang.
      expect(await eventually(() => !pids.some(running), 30_000)).toBe(true);
    },
    150_000,
  );

  it.skipIf(!scoped)(
    'process.exit() returns at once and the sandbox goes with it',
    async () => {
      const file = join(work, 'exit.json');
      const { exited } = start('exit', file);
      const pids = await pidsFrom(file);
      const code = await Promise.race([
        exited,
        new Promise((resolve) => setTimeout(() => resolve('hung'), 30_000)),
      ]);
      expect(code).toBe(0);
      expect(await eventually(() => !pids.some(running), 30_000)).toBe(true);
    },
    150_000,
  );

  it('a process whose sandboxes have ended exits by itself (idle workers do not hold it)', async () => {
    const file = join(work, 'natural.txt');
    const { child, exited } = start('natural', file);
    // Its work done (a loaded machine may take long to start it), it must then exit.
    const done = () => existsSync(file) && readFileSync(file, 'utf8') === 'done';
    expect(await eventually(done, 90_000)).toBe(true);
    const code = await Promise.race([
      exited,
      new Promise((resolve) => setTimeout(() => resolve('hung'), 30_000)),
    ]);
    if (code === 'hung') child.kill('SIGKILL');
    expect(code).toBe(0);
  }, 150_000);
});
