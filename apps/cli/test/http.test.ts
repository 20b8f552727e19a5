// --http-allow through the CLI: requests of curl and Python inside a sandbox,
// to an HTTP server on loopback, go through the sandbox's proxy.
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createSecureServer } from 'node:http2';
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
    '--verbose',
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
  // The rule once: the reason names it.
  expect(result.stderr.split('\n').filter((line) => line.startsWith('sandlock: refused'))).toEqual([
    "sandlock: refused: GET 127.0.0.1/admin/x (denied by --http-deny '* 127.0.0.1/admin/**')",
  ]);
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

/** Node fetch: prints "<status> <first line of the body>" per URL. */
const NODE_FETCH = `for (const url of process.argv.slice(1)) { const r = await fetch(url); console.log(r.status, (await r.text()).trim()); }`;

it("holds a sandbox started inside to the outer sandbox's HTTP rules, and to HTTP rules of its own", async () => {
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
    'GET 127.0.0.1/ok',
    '--',
    process.execPath,
    CLI,
    'run',
    ...INNER,
  ];
  const curl = `curl -s -w ' %{http_code}\\n' ${base}/ok; curl -s -w ' %{http_code}\\n' ${base}/no`;
  // Delegated (its address rules need a supervisor): the outer supervisor
  // serves its connects, through the outer's proxy.
  const inner = ['--net-allow', `127.0.0.1:${port}`];
  const viaCurl = await sandlockAsync([...outer, ...inner, '--', 'sh', '-c', curl]);
  const viaNode = await sandlockAsync([
    ...outer,
    ...inner,
    '--',
    process.execPath,
    '--input-type=module',
    '-e',
    NODE_FETCH,
    `${base}/ok`,
    `${base}/no`,
  ]);
  const refusedNo =
    'sandlock: GET 127.0.0.1/no refused: allowed by no --http-allow rule (sandbox level 0; 0 is the outermost)';
  expect(viaCurl.stdout).toBe(['hello /ok', ' 200', refusedNo, ' 403', ''].join('\n'));
  expect(viaNode.stdout).toBe(['200 hello /ok', `403 ${refusedNo}`, ''].join('\n'));
  expect(seen).toEqual([`GET 127.0.0.1:${port} /ok`, `GET 127.0.0.1:${port} /ok`]);
  // Without network rules of its own, its Landlock domain lets it connect
  // nowhere (not delegated: the outer supervisor connects for no process
  // with a Landlock domain of its own), whatever the outer allows.
  const none = await sandlockAsync([...outer, '--', 'sh', '-c', curl]);
  expect(none.stdout).toBe(' 000\n 000\n');
  expect(seen).toHaveLength(2);
  // HTTP rules of its own and no network rule: it reaches what they send to
  // the proxy, held to both levels' rules.
  const own = await sandlockAsync([
    ...outer,
    '--http-allow',
    'GET 127.0.0.1/**',
    '--',
    'sh',
    '-c',
    curl,
  ]);
  expect(own.stdout).toBe(['hello /ok', ' 200', refusedNo, ' 403', ''].join('\n'));
  expect(seen).toEqual([
    `GET 127.0.0.1:${port} /ok`,
    `GET 127.0.0.1:${port} /ok`,
    `GET 127.0.0.1:${port} /ok`,
  ]);
});

it('connects a delegated sandbox inside another to no port its own rules leave out', async () => {
  seen.length = 0;
  // --hostname on both sides: the inner sandbox is delegated with no
  // network rule; the outer reaper, which makes its connects, may reach the
  // server, and must not for it.
  const result = await sandlockAsync([
    'run',
    ...INNER,
    '-w',
    '/dev/null',
    '--hostname',
    'outer',
    '--net-allow',
    `127.0.0.1:${port}`,
    '--',
    process.execPath,
    CLI,
    'run',
    ...INNER,
    '--hostname',
    'inner',
    '--',
    'sh',
    '-c',
    `uname -n; curl -s -w ' %{http_code}\\n' http://127.0.0.1:${port}/inner`,
  ]);
  expect(result.stdout).toBe('inner\n 000\n');
  expect(seen).toEqual([]);
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

it('refuses and reports an HTTP/2 stream whose :authority is not the server name of its connection', async () => {
  const made = makePki(['localhost']);
  const authorities: string[] = [];
  // The proxy speaks HTTP/2 to the client and HTTP/1.1 to the server.
  const h2 = createSecureServer(
    { key: made.key, cert: made.cert, allowHTTP1: true },
    (request, response) => {
      authorities.push(`${request.headers[':authority'] ?? request.headers.host} ${request.url}`);
      response.end(`h2 ${request.url}\n`);
    },
  );
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  const h2Port = (h2.address() as AddressInfo).port;
  // One connection, two streams: the second names another host, which a
  // rule allows, but not the one of the connection's TLS server name.
  const client = [
    "import http2 from 'node:http2';",
    "import { readFileSync } from 'node:fs';",
    `const session = http2.connect('https://localhost:${h2Port}', { ca: readFileSync('/etc/ssl/certs/ca-certificates.crt') });`,
    'const get = (authority, path) => new Promise((resolve, reject) => {',
    "  const stream = session.request({ ':method': 'GET', ':path': path, ':authority': authority });",
    "  let status = 0, body = '';",
    "  stream.on('response', (headers) => (status = headers[':status']));",
    "  stream.setEncoding('utf8');",
    "  stream.on('data', (chunk) => (body += chunk));",
    "  stream.on('end', () => resolve(status + ' ' + body.trim()));",
    "  stream.on('error', reject);",
    '  stream.end();',
    '});',
    `console.log(await get('localhost:${h2Port}', '/first'));`,
    `console.log(await get('127.0.0.1:${h2Port}', '/switched'));`,
    'session.close();',
  ].join('\n');
  try {
    const result = await sandlockAsync(
      [
        'run',
        '--verbose',
        ...SYSTEM,
        '--net-allow',
        `127.0.0.1:${h2Port}`,
        '--http-allow',
        'GET localhost/**',
        '--http-allow',
        'GET 127.0.0.1/**',
        '--',
        process.execPath,
        '--input-type=module',
        '-e',
        client,
      ],
      { NODE_EXTRA_CA_CERTS: made.caPath },
    );
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe('200 h2 /first');
    expect(lines[1]).toMatch(/^403 sandlock: GET 127\.0\.0\.1\/switched refused: .*localhost/);
    expect(authorities).toEqual([`localhost:${h2Port} /first`]);
    const refusals = result.stderr
      .split('\n')
      .filter((line) => line.startsWith('sandlock: refused'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(/^sandlock: refused: GET 127\.0\.0\.1\/switched /);
  } finally {
    h2.close();
    made.remove();
  }
});
