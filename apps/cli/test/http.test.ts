// --http-allow through the CLI: requests of curl and Python inside a sandbox,
// to an HTTP server on loopback, go through the sandbox's proxy.
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makePki } from '../../../packages/http/test/helpers.js';
import { CLI, type CliResult, INNER, SYSTEM } from './helpers.js';

const run = promisify(execFile);

/** The CLI run without blocking this process's event loop (the server answers meanwhile). */
async function sandlockAsync(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, ...env },
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

it('intercepts HTTPS with a CA trusted inside, adds the credential, and keeps it out of the environment', async () => {
  // A name, not 127.0.0.1: clients send no server name (SNI) for an IP
  // address, and the proxy refuses a ClientHello without one.
  const made = makePki(['localhost']);
  const authorized: string[] = [];
  const tlsServer = createHttpsServer({ key: made.key, cert: made.cert }, (request, response) => {
    authorized.push(`${request.url} ${request.headers.authorization ?? 'none'}`);
    response.end(`secure ${request.url}\n`);
  });
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
  const tlsPort = (tlsServer.address() as AddressInfo).port;
  try {
    const base = `https://localhost:${tlsPort}`;
    const result = await sandlockAsync(
      [
        'run',
        ...SYSTEM,
        '--net-allow',
        `127.0.0.1:${tlsPort}`,
        '--http-allow',
        'GET localhost/allowed/*',
        '--credential',
        'TOKEN=env:SANDLOCK_TEST_TOKEN',
        '--http-auth',
        'GET localhost/allowed/* bearer TOKEN',
        '--',
        'sh',
        '-c',
        [
          'env | grep -c s3cret-token',
          `curl -s -w ' %{http_code}\\n' ${base}/allowed/curl`,
          `python3 -c 'import urllib.request; print(urllib.request.urlopen("${base}/allowed/python").read().decode().strip())'`,
          `curl -s -w ' %{http_code}\\n' ${base}/secret`,
        ].join('; '),
      ],
      { NODE_EXTRA_CA_CERTS: made.caPath, SANDLOCK_TEST_TOKEN: 's3cret-token' },
    );
    expect(result.stdout).toBe(
      [
        '0',
        'secure /allowed/curl',
        ' 200',
        'secure /allowed/python',
        'sandlock: GET localhost/secret refused: allowed by no --http-allow rule',
        ' 403',
        '',
      ].join('\n'),
    );
    expect(authorized).toEqual([
      '/allowed/curl Bearer s3cret-token',
      '/allowed/python Bearer s3cret-token',
    ]);
  } finally {
    tlsServer.close();
    made.remove();
  }
});

it("lets a sandbox started inside no way around the outer sandbox's HTTP rules, and refuses HTTP rules of its own", async () => {
  seen.length = 0;
  const base = `http://127.0.0.1:${port}`;
  const outer = [
    'run',
    ...INNER,
    '-w',
    '/dev/null',
    '--net-allow',
    `127.0.0.1:${port}`,
    '--http-allow',
    'GET 127.0.0.1/allowed/*',
    '--',
    process.execPath,
    CLI,
    'run',
    ...INNER,
  ];
  const curl = `curl -s -w ' %{http_code}\\n' ${base}/allowed/inner; curl -s -w ' %{http_code}\\n' ${base}/secret`;
  const inside = await sandlockAsync([...outer, '--', 'sh', '-c', curl]);
  // The outer supervisor connects for no process with a Landlock domain of
  // its own (the inner sandbox's): refused, never around the outer's proxy.
  // (Its proxy would take them: nesting.ts hands it the inner's connects.)
  expect(inside.stdout).toBe(' 000\n 000\n');
  expect(seen).toEqual([]);
  const own = await sandlockAsync([...outer, '--http-allow', 'GET 127.0.0.1/**', '--', 'true']);
  expect(own.stderr).toContain(
    'sandlock: httpAllow, httpDeny, httpAuth, credentials and wildcard network rules (*.NAME) are not enforced in a sandbox started inside a supervised one',
  );
  expect(own.status).not.toBe(0);
});

it('forwards to the real port of a port of the sandbox’s own port space (--port-remap)', async () => {
  seen.length = 0;
  // The sandbox serves on `port`, which the test's server holds on the
  // host: the sandbox's server gets another real port, and its requests to
  // `port` through the proxy must reach it, not the host's server.
  const server = [
    'import http.server as h',
    'class H(h.BaseHTTPRequestHandler):',
    '    def do_GET(s):',
    '        s.send_response(200); s.end_headers(); s.wfile.write(b"inside " + s.path.encode() + b"\\n")',
    '    def log_message(*a): pass',
    `h.HTTPServer(("127.0.0.1", ${port}), H).serve_forever()`,
  ].join('\n');
  const result = await sandlockAsync([
    'run',
    ...SYSTEM,
    '--port-remap',
    '--net-allow-bind',
    String(port),
    '--net-allow',
    `127.0.0.1:${port}`,
    '--http-allow',
    'GET 127.0.0.1/allowed/*',
    '--',
    'sh',
    '-c',
    [
      `python3 -c '${server}' &`,
      // Until the sandbox's server has bound, `port` is the host's.
      `for i in $(seq 200); do curl -s http://127.0.0.1:${port}/allowed/wait | grep -q inside && break; sleep 0.1; done`,
      `curl -s -w ' %{http_code}\\n' http://127.0.0.1:${port}/allowed/x`,
      `curl -s -w ' %{http_code}\\n' http://127.0.0.1:${port}/secret`,
      'kill $!',
    ].join('\n'),
  ]);
  expect(result.stdout).toBe(
    [
      'inside /allowed/x',
      ' 200',
      'sandlock: GET 127.0.0.1/secret refused: allowed by no --http-allow rule',
      ' 403',
      '',
    ].join('\n'),
  );
  expect(seen.filter((request) => !request.endsWith('/allowed/wait'))).toEqual([]);
});
