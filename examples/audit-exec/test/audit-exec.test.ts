import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Supervisor } from '@sandlock/dispatch';
import { compileSandboxFilter, seccompFilterStep } from '@sandlock/seccomp';
import { launch } from '@sandlock/sys';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ExecRecord } from '../src/index.js';

let work: string;
let supervisor: Supervisor;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sandlock-audit-'));
  supervisor = await Supervisor.start({
    plugins: [
      {
        module: new URL('../src/index.ts', import.meta.url),
        options: { log: join(work, 'exec.log') },
      },
    ],
  });
});
afterAll(async () => {
  await supervisor.close();
  rmSync(work, { recursive: true, force: true });
});

it('records the path and argv of every exec of a real program', async () => {
  const notify = supervisor.notifiedSyscalls();
  expect(notify).toEqual(['execve', 'execveat']);
  const launched = launch({
    path: '/bin/sh',
    argv: ['sh', '-c', 'cd /usr && bin/env printf "%s|" "two words" "" ü; /bin/true'],
    env: { PATH: '/usr/bin:/bin' },
    steps: [
      { kind: 'noNewPrivs' },
      seccompFilterStep(compileSandboxFilter({ notify }), { listener: true }),
    ],
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: Buffer[] = [];
  launched.child.stdout!.on('data', (chunk: Buffer) => output.push(chunk));
  const exited = new Promise((resolve) => launched.child.on('close', resolve));
  const report = await launched.ready;
  const session = supervisor.attach(launched.takeListener(), {
    reaperPid: launched.pid,
    programPid: report.pid,
  });
  await launched.release();
  expect(await exited).toBe(0);
  await session.closed;
  expect(Buffer.concat(output).toString()).toBe('two words||ü|');

  const records = readFileSync(join(work, 'exec.log'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ExecRecord);
  // The stub's own execve of /bin/sh happens after the filter is on: it is the first record.
  expect(records.map((r) => [r.path, r.resolved, r.argv])).toEqual([
    [
      '/bin/sh',
      '/bin/sh',
      ['sh', '-c', 'cd /usr && bin/env printf "%s|" "two words" "" ü; /bin/true'],
    ],
    ['bin/env', '/usr/bin/env', ['bin/env', 'printf', '%s|', 'two words', '', 'ü']],
    // env looks printf up in PATH: the first directory that has it wins.
    ['/usr/bin/printf', '/usr/bin/printf', ['printf', '%s|', 'two words', '', 'ü']],
    ['/bin/true', '/bin/true', ['/bin/true']],
  ]);
  expect(records.every((r) => r.syscall === 'execve' && !r.truncated)).toBe(true);
});
