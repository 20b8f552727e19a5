// --http-allow through the CLI: requests of curl and Python inside a sandbox,
// to an HTTP server on loopback, go through the sandbox's proxy.
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, type CliResult, SYSTEM } from './helpers.js';

const run = promisify(execFile);

/** The CLI run without blocking this process's event loop (the server answers meanwhile). */
async function sandlockAsync(args: readonly string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { status: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return {
      status: typeof failed.code === 'number' ? failed.code : null,
      stdout: failed.stdout ?? '',
      stderr: failed.stderr ?? '',
    };
  }
}

const seen: string[] = [];
let server: Server;
let port = 0;

beforeAll(async () => {
  server = createServer((request, response) => {
    seen.push(`${request.method} ${request.headers.host} ${request.url}`);
    response.end(`hello ${request.url}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => server.close());

/** Python urllib: prints "<status> <first line of the body>" per request. */
const FETCH = [
  'import sys, urllib.request, urllib.error',
  'for spec in sys.argv[1:]:',
  '    method, url, host = spec.split(" ")',
  '    request = urllib.request.Request(url, method=method, data=b"x" if method == "POST" else None)',
  '    if host != "-": request.add_header("Host", host)',
  '    try:',
  '        with urllib.request.urlopen(request) as r: print(r.status, r.read().decode().strip())',
  '    except urllib.error.HTTPError as e: print(e.code, e.read().decode().strip())',
].join('\n');

it('lets through only what --http-allow allows, and says why the rest is refused', async () => {
  const base = `http://127.0.0.1:${port}`;
  const result = await sandlockAsync([
    'run',
    '--verbose',
    ...SYSTEM,
    '--net-allow',
    `127.0.0.1:${port}`,
    '--http-allow',
    'GET 127.0.0.1/allowed/*',
    '--',
    'python3',
    '-c',
    FETCH,
    `GET ${base}/allowed/a -`,
    `GET ${base}/secret -`,
    `POST ${base}/allowed/a -`,
    `GET ${base}/allowed/a example.com`,
    `GET ${base}/allowed/%2e%2e/secret -`,
  ]);
  expect(result.stdout).toBe(
    [
      '200 hello /allowed/a',
      '403 sandlock: GET 127.0.0.1/secret refused: allowed by no --http-allow rule',
      '403 sandlock: POST 127.0.0.1/allowed/a refused: allowed by no --http-allow rule',
      '403 sandlock: GET example.com/allowed/a refused: example.com does not name the address dialled (127.0.0.1)',
      '403 sandlock: GET 127.0.0.1/allowed/%2e%2e/secret refused: allowed by no --http-allow rule',
      '',
    ].join('\n'),
  );
  expect(result.status).toBe(0);
  // The server saw the allowed request alone, with the Host it was sent.
  expect(seen).toEqual([`GET 127.0.0.1:${port} /allowed/a`]);
  const refusals = result.stderr.split('\n').filter((line) => line.startsWith('sandlock: refused'));
  expect(refusals).toHaveLength(4);
  expect(refusals[0]).toBe(
    'sandlock: refused: GET 127.0.0.1/secret (allowed by no --http-allow rule)',
  );
});

it('names the rule that refused a request, and refuses curl a denied path', async () => {
  seen.length = 0;
  const result = await sandlockAsync([
    'run',
    ...SYSTEM,
    '--net-allow',
    `127.0.0.1:${port}`,
    '--http-allow',
    'GET 127.0.0.1/**',
    '--http-deny',
    '* 127.0.0.1/admin/**',
    '--',
    'sh',
    '-c',
    `curl -s -w ' %{http_code}\\n' http://127.0.0.1:${port}/admin/x; curl -s -w ' %{http_code}\\n' http://127.0.0.1:${port}/ok`,
  ]);
  expect(result.stdout).toBe(
    [
      "sandlock: GET 127.0.0.1/admin/x refused: denied by --http-deny '* 127.0.0.1/admin/**'",
      ' 403',
      'hello /ok',
      ' 200',
      '',
    ].join('\n'),
  );
  expect(seen).toEqual([`GET 127.0.0.1:${port} /ok`]);
});

it('refuses credentials and a CA of the policy, which are not wired yet', async () => {
  const result = await sandlockAsync([
    'run',
    ...SYSTEM,
    '--credential',
    'TOKEN=env:HOME',
    '--',
    'true',
  ]);
  expect(result.status).toBe(125);
  expect(result.stderr).toContain('credentials: not enforced yet');
});
