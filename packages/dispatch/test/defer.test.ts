// Deferred answers: a slow main-thread handler must not stall the loop.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../src/index.js';
import { PYTHON, supervise, testModule } from './support/sandbox.js';

const hasPython = spawnSync(PYTHON, ['-c', 'pass']).status === 0;
if (!hasPython) console.warn(`skipping the deferred-answer tests: ${PYTHON} is not installed`);

/** The longest a connect is held: only reached if what should release it hangs. */
const DELAY_MS = 30_000;

describe.skipIf(!hasPython)('deferred answers', () => {
  let supervisor: Supervisor;
  let server: Server;
  let port = 0;
  // The connect is held until gate/release exists; gate/pending says it is held.
  const gate = mkdtempSync(join(tmpdir(), 'sandlock-defer-'));
  const pending = join(gate, 'pending');
  const release = join(gate, 'release');
  beforeAll(async () => {
    supervisor = await Supervisor.start({
      plugins: [{ module: testModule('slow-connect.ts'), options: { delayMs: DELAY_MS, gate } }],
    });
    server = createServer((socket) => {
      socket.on('error', () => {});
      socket.end('hello from the server\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await supervisor.close();
    await new Promise((resolve) => server.close(resolve));
    rmSync(gate, { recursive: true, force: true });
  });

  it('connects on behalf of the caller from the main thread', async () => {
    writeFileSync(release, '');
    const code = [
      'import socket',
      's = socket.socket()',
      `s.connect(('127.0.0.1', ${port}))`,
      "print(s.recv(100).decode(), end='')",
    ].join('\n');
    const { session, finished } = await supervise(supervisor, [PYTHON, '-c', code]);
    const result = await finished;
    await session?.closed;
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('hello from the server\n');
  });

  it('keeps answering other processes while a deferred answer is pending', async () => {
    // One process's connect is held until the other, started once the
    // connect is pending, has done 10,000 intercepted opens and released it:
    // if the loop stalled while the answer is pending, neither would end
    // before DELAY_MS, and the opens would finish after the connect.
    rmSync(pending, { force: true });
    rmSync(release, { force: true });
    const connector = [
      'import socket, time',
      's = socket.socket()',
      "print('connecting', time.time(), flush=True)",
      `s.connect(('127.0.0.1', ${port}))`,
      "print('connected', time.time(), flush=True)",
    ].join('\n');
    const opener = [
      'import os, time',
      `while not os.path.exists(${JSON.stringify(pending)}): time.sleep(0.01)`,
      'start = time.time()',
      'for _ in range(10000):',
      "    os.close(os.open('/dev/null', os.O_RDONLY))",
      "print('opened', start, time.time(), flush=True)",
      `open(${JSON.stringify(release)}, 'w').close()`,
    ].join('\n');
    const script = `${PYTHON} -c "$1" & ${PYTHON} -c "$2"; wait`;
    const { session, finished } = await supervise(supervisor, [
      '/bin/sh',
      '-c',
      script,
      'sh',
      connector,
      opener,
    ]);
    const result = await finished;
    await session?.closed;
    expect(result.stderr).toBe('');
    const times = Object.fromEntries(
      result.stdout
        .trim()
        .split('\n')
        .map((line) => {
          const [what, ...values] = line.split(' ');
          return [what!, values.map(Number)];
        }),
    );
    const [connecting] = times.connecting!;
    const [connected] = times.connected!;
    const [openStart, openEnd] = times.opened!;
    // The opens ran while the connect was pending, and finished before it.
    expect(openStart!).toBeGreaterThan(connecting!);
    expect(openEnd!).toBeLessThan(connected!);
    console.log(
      `10,000 intercepted opens took ${((openEnd! - openStart!) * 1000).toFixed(0)} ms while a connect waited`,
    );
  });
});
