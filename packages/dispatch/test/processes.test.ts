// Process tracking: listing a sandbox's processes from its reaper, and the
// start/exit events modules get in the worker.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { descendantsOf } from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../src/index.js';
import { eventually, supervise, testModule } from './support/sandbox.js';

let work: string;
let supervisor: Supervisor;
const log = () => join(work, 'events.log');
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sandlock-processes-'));
  supervisor = await Supervisor.start({
    plugins: [{ module: testModule('process-log.ts'), options: { log: log() } }],
  });
});
afterAll(async () => {
  await supervisor.close();
  rmSync(work, { recursive: true, force: true });
});

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

describe('process tracking', () => {
  it('lists every process of the sandbox, including ones that left its session', async () => {
    const { launched, session, finished } = await supervise(
      supervisor,
      ['/bin/sh', '-c', 'setsid sleep 2 & sleep 2 & read line'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const sleeping = () => session!.processes().filter((pid) => comm(pid) === 'sleep');
    expect(await eventually(() => sleeping().length === 2)).toBe(true);
    const listed = session!.processes();
    expect(listed[0]).toBe(session!.programPid);
    expect(listed).not.toContain(launched.pid);
    expect(descendantsOf(launched.pid, 'scan').sort()).toEqual([...listed].sort());
    launched.child.stdin!.end('\n');
    session!.kill('test over');
    await finished;
    await session!.closed;
    expect(session!.processes()).toEqual([]);
  });

  it('tells modules when processes start and exit, through their pidfds', async () => {
    writeFileSync(log(), '');
    const { session, finished } = await supervise(supervisor, [
      '/bin/sh',
      '-c',
      'sleep 0.2 & sleep 0.3 & wait; echo $$',
    ]);
    const result = await finished;
    await session!.closed;
    const shell = Number(result.stdout.trim());
    const lines = readFileSync(log(), 'utf8').trim().split('\n');
    expect(lines[0]).toBe(`session-start ${session!.programPid}`);
    expect(lines.at(-1)).toBe('session-end');
    const started = lines
      .filter((line) => line.startsWith('start '))
      .map((l) => Number(l.split(' ')[1]));
    const exited = lines
      .filter((line) => line.startsWith('exit '))
      .map((l) => Number(l.split(' ')[1]));
    expect(started[0]).toBe(shell);
    expect(started).toHaveLength(3);
    expect([...exited].sort()).toEqual([...started].sort());
    // The two sleeps exit first, the shell last.
    expect(exited.at(-1)).toBe(shell);
    expect(lines.filter((line) => line.startsWith('exit ')).at(-1)).toBe(`exit ${shell} live 0`);
  });
});
