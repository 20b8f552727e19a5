// A sandbox started inside one with HTTP rules has its connects handed to
// the outer sandbox's proxy, for as long as it runs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Denial } from '@sandlock/http';
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

const READ = [...SYSTEM_READ, REPOSITORY, process.execPath];
let scripts = '';
/** A script fetching each path it is given from the server: body, then ` STATUS`. */
let fetchScript = '';
beforeAll(() => {
  scripts = mkdtempSync(join(tmpdir(), 'sandlock-http-nesting-'));
  fetchScript = join(scripts, 'fetch.sh');
  writeFileSync(
    fetchScript,
    `for path in "$@"; do curl -s -w ' %{http_code}\\n' "http://127.0.0.1:${port}$path"; done\n`,
  );
});
afterAll(() => rmSync(scripts, { recursive: true, force: true }));

/** `sandlock run` of the repository's CLI with the reads a nested launcher needs, then `flags`. */
const sandlockRun = (...flags: string[]) =>
  [
    process.execPath,
    CLI,
    'run',
    ...[...READ, scripts].flatMap((path) => ['-r', path]),
    ...flags,
  ].join(' ');
const fetching = (...paths: string[]) => `sh ${fetchScript} ${paths.join(' ')}`;

/** Runs `script` in a sandbox of `policy`; its output and the refusals its host program was told of. */
async function inOuter(
  policy: Record<string, unknown>,
  script: string,
): Promise<{ stdout: string; stderr: string; denials: Denial[] }> {
  const outer = Sandbox.fromPolicy({
    fsRead: [...READ, scripts],
    fsWrite: ['/dev/null'],
    netAllow: [`127.0.0.1:${port}`],
    ...policy,
  });
  const sandboxed = await outer.spawn(['/bin/sh', '-c', script]);
  const denials: Denial[] = [];
  sandboxed.on('denied', (denial) => denials.push(denial));
  let stdout = '';
  let stderr = '';
  sandboxed.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  sandboxed.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  await sandboxed.wait();
  return { stdout, stderr, denials };
}

const refused = (path: string, reason: string) => [
  `sandlock: GET 127.0.0.1${path} refused: ${reason}`,
  ' 403',
];

it("an inner sandbox's own HTTP rules narrow the outer's: a request passes both", async () => {
  const { stdout, stderr, denials } = await inOuter(
    { httpAllow: ['GET 127.0.0.1/**'] },
    `${sandlockRun(`--net-allow 127.0.0.1:${port}`, '--http-deny', "'GET 127.0.0.1/secret'")} -- ${fetching('/ok', '/secret')}`,
  );
  expect({ stdout: stdout.split('\n'), stderr }).toEqual({
    stdout: [
      'hello /ok',
      ' 200',
      ...refused(
        '/secret',
        "denied by --http-deny 'GET 127.0.0.1/secret' (sandbox level 1; 0 is the outermost)",
      ),
      '',
    ],
    stderr: '',
  });
  expect(denials.map(({ level, rule, path }) => ({ level, rule, path }))).toEqual([
    { level: 1, rule: "--http-deny 'GET 127.0.0.1/secret'", path: '/secret' },
  ]);
}, 120_000);

it('an inner sandbox cannot widen what the outer allows', async () => {
  const { stdout, denials } = await inOuter(
    { httpAllow: ['GET 127.0.0.1/ok'] },
    `${sandlockRun(`--net-allow 127.0.0.1:${port}`, '--http-allow', "'* 127.0.0.1/**'")} -- ${fetching('/ok', '/wider')}`,
  );
  expect(stdout.split('\n')).toEqual([
    'hello /ok',
    ' 200',
    ...refused('/wider', 'allowed by no --http-allow rule (sandbox level 0; 0 is the outermost)'),
    '',
  ]);
  expect(denials.map(({ level, path }) => ({ level, path }))).toEqual([
    { level: 0, path: '/wider' },
  ]);
}, 120_000);

it('three levels: each level denies its own, the outermost host program hears of all', async () => {
  const inner = `${sandlockRun(`--net-allow 127.0.0.1:${port}`, '--http-deny', '"GET 127.0.0.1/in"')} -- ${fetching('/ok', '/mid', '/in')}`;
  const { stdout, stderr, denials } = await inOuter(
    { httpAllow: ['GET 127.0.0.1/**'] },
    `${sandlockRun(`--net-allow 127.0.0.1:${port}`, '--http-deny', '"GET 127.0.0.1/mid"')} -- sh -c '${inner}'`,
  );
  expect({ stdout: stdout.split('\n'), stderr }).toEqual({
    stdout: [
      'hello /ok',
      ' 200',
      ...refused(
        '/mid',
        "denied by --http-deny 'GET 127.0.0.1/mid' (sandbox level 1; 0 is the outermost)",
      ),
      ...refused(
        '/in',
        "denied by --http-deny 'GET 127.0.0.1/in' (sandbox level 2; 0 is the outermost)",
      ),
      '',
    ],
    stderr: '',
  });
  expect(denials.map(({ level, path }) => ({ level, path }))).toEqual([
    { level: 1, path: '/mid' },
    { level: 2, path: '/in' },
  ]);
}, 180_000);

it('an inner sandbox with HTTP rules inside one without a proxy is refused, saying why', async () => {
  const { stdout, stderr } = await inOuter(
    {},
    `${sandlockRun(`--net-allow 127.0.0.1:${port}`, '--http-deny', "'GET 127.0.0.1/secret'")} -- true; echo "exit $?"`,
  );
  expect(stdout).toBe('exit 125\n');
  expect(stderr).toContain(
    'its HTTP rules, credentials or wildcard network rules need the HTTP proxy of the sandbox around it, which has none',
  );
}, 120_000);
