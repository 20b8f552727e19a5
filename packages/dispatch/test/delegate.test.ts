import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DelegationError, Supervisor } from '../src/index.js';
import { eventually, PYTHON, supervise, testModule } from './support/sandbox.js';

let supervisor: Supervisor;
let dir: string;
beforeAll(async () => {
  supervisor = await Supervisor.start({
    modules: [
      { module: testModule('policy-answer.ts'), export: 'policyAnswer' },
      { module: testModule('policy-answer.ts'), export: 'needsGetpgrp' },
    ],
    plugins: [{ module: testModule('policy-answer.ts'), export: 'pluginAnswer' }],
  });
  dir = mkdtempSync(join(tmpdir(), 'sandlock-delegate-'));
});
afterAll(async () => {
  await supervisor?.close();
  rmSync(dir, { recursive: true, force: true });
});

// The outer program forks R, a stand-in for an inner sandbox's reaper, which
// waits for the test to delegate its subtree, then forks the inner program C.
// Each prints what getppid() answered it.
const TREE = `
import os, sys, time
go = sys.argv[1]
r = os.fork()
if r == 0:
    while not os.path.exists(go): time.sleep(0.005)
    c = os.fork()
    if c == 0:
        print('inner', os.getppid(), flush=True)
        os._exit(0)
    os.waitpid(c, 0)
    print('reaper', os.getppid() == int(sys.argv[2]) or os.getppid(), flush=True)
    os._exit(0)
print('R', r, flush=True)
os.waitpid(r, 0)
print('outer', os.getppid(), flush=True)
`;

async function started(name: string, policy: unknown) {
  const go = join(dir, name);
  const supervised = await supervise(supervisor, [PYTHON, '-c', TREE, go, '0'], {
    policy,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const session = supervised.session!;
  let stdout = '';
  supervised.launched.child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  expect(await eventually(() => /^R \d+\n/.test(stdout))).toBe(true);
  const reaperPid = Number(/^R (\d+)/.exec(stdout)![1]);
  return { ...supervised, session, reaperPid, go: () => writeFileSync(go, '') };
}

describe('a delegated subtree', () => {
  it('answers the inner calls from the inner policy, the reaper and outer ones from the outer', async () => {
    const outer = await started('second', { plugin: 7 });
    const inner = supervisor.delegate(outer.session, {
      reaperPid: outer.reaperPid,
      policy: { ppid: 4242, plugin: 9 },
    });
    expect(inner.parent).toBe(outer.session);
    outer.go();
    const finished = await outer.finished;
    // The plugin does not serve the delegated subtree: its 9 is never seen.
    expect(finished.stdout.split('\n').slice(1)).toEqual(['inner 4242', 'reaper 7', 'outer 7', '']);
    await inner.closed;
    expect(inner.ended).toBe(true);
  });

  it('refuses a policy whose modules need calls the outer filter does not notify', async () => {
    const outer = await started('third', {});
    expect(() =>
      supervisor.delegate(outer.session, { reaperPid: outer.reaperPid, policy: { pgrp: true } }),
    ).toThrow(
      "sandlock: the outer sandbox's filter does not notify getpgrp, which needs-getpgrp needs",
    );
    expect(() =>
      supervisor.delegate(outer.session, { reaperPid: outer.reaperPid, policy: { pgrp: true } }),
    ).toThrow(DelegationError);
    outer.go();
    await outer.finished;
    expect(existsSync(join(dir, 'third'))).toBe(true);
  });
});
