// Refusals a module reports (ctx.refused): forwarded to the session's
// listeners, and only while there are some.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFUSAL_BURST, REFUSAL_RATE, type RefusalReport, Supervisor } from '../src/index.js';
import { supervise, testModule } from './support/sandbox.js';

const WORD = 'forbidden';

describe('refusal reports', () => {
  let supervisor: Supervisor;
  beforeAll(async () => {
    supervisor = await Supervisor.start({
      plugins: [{ module: testModule('refuser.ts'), options: { word: WORD } }],
    });
  });
  afterAll(() => supervisor.close());

  it('reports each refusal with its rule, module, syscall and caller', async () => {
    const refusals: RefusalReport[] = [];
    const { session, finished, launched } = await supervise(
      supervisor,
      ['/bin/sh', '-c', `cat /${WORD}-1; cat /${WORD}-2; cat /etc/hostname > /dev/null`],
      { onRefusal: (refusal) => refusals.push(refusal) },
    );
    const result = await finished;
    await session!.closed;
    expect(result.stderr).toContain('Permission denied');
    expect(refusals).toEqual([
      {
        what: `open /${WORD}-1`,
        rule: `refuser: paths with '${WORD}'`,
        module: 'refuser',
        syscall: 'openat',
        pid: expect.any(Number),
        dropped: 0,
      },
      expect.objectContaining({ what: `open /${WORD}-2`, module: 'refuser' }),
    ]);
    expect(refusals[0]!.pid).not.toBe(launched.pid);
    expect(session!.refusalsForwarded).toBe(2);
  });

  it('forwards nothing while nobody listens', async () => {
    const { session, finished } = await supervise(supervisor, [
      '/bin/sh',
      '-c',
      `cat /${WORD}-1; cat /${WORD}-2`,
    ]);
    const result = await finished;
    await session!.closed;
    // The calls were refused, and not one refusal crossed to this thread.
    expect(result.stderr.match(/Permission denied/g)).toHaveLength(2);
    expect(session!.refusalsForwarded).toBe(0);
  });

  it('stops forwarding when the last listener goes', async () => {
    const refusals: RefusalReport[] = [];
    const { session, finished, launched } = await supervise(
      supervisor,
      // The second open waits for its stdin, which this test closes once the
      // first refusal has arrived and its listener is off.
      ['/bin/sh', '-c', `cat /${WORD}-1; read line; cat /${WORD}-2`],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const first = new Promise<void>((resolve) => {
      const off = session!.onRefusal((refusal) => {
        refusals.push(refusal);
        off();
        resolve();
      });
    });
    await first;
    // The worker reads the 'stop' before the program's next open: the
    // control message is posted (and the loop woken) before stdin closes.
    launched.child.stdin!.end('go\n');
    const result = await finished;
    await session!.closed;
    expect(result.stderr.match(/Permission denied/g)).toHaveLength(2);
    expect(refusals.map((refusal) => refusal.what)).toEqual([`open /${WORD}-1`]);
    expect(session!.refusalsForwarded).toBe(1);
  });

  it('bounds what a sandbox that refuses without end can send, and counts the rest', async () => {
    const count = 3000;
    const refusals: RefusalReport[] = [];
    const started = performance.now();
    const { session, finished } = await supervise(
      supervisor,
      [
        '/bin/sh',
        '-c',
        `i=0; while [ $i -lt ${count} ]; do true < /${WORD}; i=$((i+1)); done 2>/dev/null`,
      ],
      { onRefusal: (refusal) => refusals.push(refusal) },
    );
    await finished;
    await session!.closed;
    const seconds = (performance.now() - started) / 1000;
    // Every refusal is reported or counted as dropped (the last count comes
    // with the session's end, as a summary without a module), and no more
    // were reported than the budget allows over the time the sandbox ran.
    const reported = refusals.filter((refusal) => refusal.module !== null).length;
    const dropped = refusals.reduce((sum, refusal) => sum + refusal.dropped, 0);
    expect(reported + dropped).toBe(count);
    expect(reported).toBeLessThanOrEqual(REFUSAL_BURST + Math.ceil(REFUSAL_RATE * seconds) + 1);
  });
});
