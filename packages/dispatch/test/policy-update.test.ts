// Session.updatePolicy: the worker's handlers see the new policy fields from
// the next call on (a running sandbox's limits changed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../src/index.js';
import { supervise, testModule } from './support/sandbox.js';

describe('Session.updatePolicy', () => {
  let supervisor: Supervisor;
  beforeAll(async () => {
    supervisor = await Supervisor.start({ plugins: [{ module: testModule('policy-word.ts') }] });
  });
  afterAll(() => supervisor.close());

  it('reaches the handlers once it resolves, on both threads', async () => {
    const { session, finished, launched } = await supervise(
      supervisor,
      // The second pair of opens waits for stdin, which the test closes after the update.
      ['/bin/sh', '-c', 'cat /first; cat /second; read line; cat /first; cat /second'],
      { policy: { word: 'first', other: 1 }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let before = '';
    await new Promise<void>((resolve) => {
      launched.child.stderr!.on('data', (chunk: Buffer) => {
        before += chunk.toString();
        if (before.includes('/second')) resolve();
      });
    });
    await session!.updatePolicy({ word: 'second' });
    expect(session!.policy).toEqual({ word: 'second', other: 1 });
    launched.child.stdin!.end('go\n');
    const result = await finished;
    await session!.closed;
    const lines = result.stderr.trim().split('\n');
    // Before the update /first is refused, after it /second; the other is not there.
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/\/first: Permission denied/);
    expect(lines[1]).toMatch(/\/second: No such file or directory/);
    expect(lines[2]).toMatch(/\/first: No such file or directory/);
    expect(lines[3]).toMatch(/\/second: Permission denied/);
    // Once the session has ended an update has nothing to wait for.
    await session!.updatePolicy({ word: 'third' });
  });
});
