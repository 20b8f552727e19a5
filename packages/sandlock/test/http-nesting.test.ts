// A sandbox started inside one with HTTP rules has its connects handed to
// the outer sandbox's proxy, for as long as it runs.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sandbox } from '../src/index.js';
import { eventually, SYSTEM_READ } from './helpers.js';

const CLI = fileURLToPath(new URL('../../../apps/cli/bin/sandlock.cjs', import.meta.url));
const REPOSITORY = fileURLToPath(new URL('../../..', import.meta.url));

/** Who takes the redirected connects of each session (@sandlock/network's redirect.ts). */
const redirects = () =>
  (globalThis as Record<symbol, Map<number, unknown> | undefined>)[
    Symbol.for('sandlock.httpRedirects')
  ];

let server: Server;
let port = 0;
beforeAll(async () => {
  server = createServer((request, response) => response.end(`hello ${request.url}\n`));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => server.close());

it("hands an inner sandbox's connects to the outer proxy until the inner one ends", async () => {
  const read = [...SYSTEM_READ, REPOSITORY, process.execPath].flatMap((path) => ['-r', path]);
  const inner = [process.execPath, CLI, 'run', ...read, '--net-allow', `127.0.0.1:${port}`];
  const outer = Sandbox.fromPolicy({
    fsRead: [...SYSTEM_READ, REPOSITORY, process.execPath],
    fsWrite: ['/dev/null'],
    netAllow: [`127.0.0.1:${port}`],
    httpAllow: ['GET 127.0.0.1/ok'],
  });
  const script = [
    `${inner.join(' ')} -- curl -s -w ' %{http_code}\\n' http://127.0.0.1:${port}/ok`,
    'echo inner-done',
    'read line',
  ].join('\n');
  const sandboxed = await outer.spawn(['/bin/sh', '-c', script], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  sandboxed.stdout!.setEncoding('utf8');
  sandboxed.stdout!.on('data', (chunk: string) => {
    out += chunk;
  });
  try {
    expect(await eventually(() => out.includes('inner-done'), 60_000)).toBe(true);
    expect(out).toBe('hello /ok\n 200\ninner-done\n');
    // The outer one's registration alone is left.
    expect(await eventually(() => redirects()?.size === 1, 30_000)).toBe(true);
  } finally {
    sandboxed.stdin!.end('\n');
    await sandboxed.wait();
  }
  expect(await eventually(() => redirects()?.size === 0, 30_000)).toBe(true);
}, 120_000);
