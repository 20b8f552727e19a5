import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caBundle } from '../src/index.js';
import {
  type EchoServer,
  echoServer2,
  levelOf,
  makePki,
  netView,
  type ProxyListener,
  proxyListener,
  type TestPki,
} from './helpers.js';

const run = promisify(execFile);
const SECRET = 's3cr3t-token-4711';

let pki: TestPki;
let server: EchoServer; // 127.0.0.1: allowed.test, other.test, splice.test
let elsewhere: EchoServer; // 127.0.0.2: evil.test
let proxy: ProxyListener; // dialled 127.0.0.1
let toElsewhere: ProxyListener; // dialled 127.0.0.2
let bundlePath: string;
const lookup = {
  'allowed.test': ['127.0.0.1'],
  'other.test': ['127.0.0.1'],
  'splice.test': ['127.0.0.1'],
  'evil.test': ['127.0.0.2'],
};

beforeAll(async () => {
  pki = makePki(['allowed.test', 'other.test', 'splice.test', 'evil.test', '127.0.0.1']);
  server = await echoServer2('127.0.0.1', pki);
  elsewhere = await echoServer2('127.0.0.2', pki);
  const policy = {
    httpAllow: ['GET allowed.test/public/**', '* splice.test', 'GET other.test/**'],
    httpAuth: ['GET allowed.test/public/auth/** bearer TOKEN'],
    net: netView(['allowed.test', 'other.test', 'splice.test', 'evil.test'], lookup),
    lookup,
    secrets: { TOKEN: SECRET },
    upstreamCa: pki.caPem,
  };
  // The listeners take the servers' port numbers on another loopback
  // address: clients keep the real port in their URLs, as after a redirect.
  proxy = await proxyListener(
    policy,
    { address: '127.0.0.1', port: server.port },
    { address: '127.0.0.3', port: server.port },
  );
  toElsewhere = await proxyListener(
    policy,
    { address: '127.0.0.2', port: elsewhere.port },
    { address: '127.0.0.4', port: elsewhere.port },
  );
  // What the sandbox would read as its bundle: the "system" bundle (here the
  // test CA, for spliced connections) followed by the proxy's CA.
  const bundle = caBundle(await proxy.proxy.caCertificate(), () => pki.caPem);
  bundlePath = join(pki.dir, 'bundle.pem');
  writeFileSync(bundlePath, bundle.files.get(bundle.primary)!);
});

afterAll(async () => {
  await Promise.all([proxy?.close(), toElsewhere?.close(), server?.close(), elsewhere?.close()]);
  pki?.remove();
});

const port = () => server.port;

async function curl(name: string, path: string, ...extra: string[]) {
  const { stdout } = await run('curl', [
    '-s',
    '-o',
    '-',
    '-w',
    '\n%{http_version} %{http_code}',
    '--cacert',
    bundlePath,
    '--connect-to',
    `${name}:${port()}:127.0.0.3:${port()}`,
    ...extra,
    `https://${name}:${port()}${path}`,
  ]);
  const lines = stdout.split('\n');
  const [version, status] = lines.at(-1)!.split(' ');
  return { status: Number(status), body: lines.slice(0, -1).join('\n'), version };
}

/** The issuer of the certificate a TLS client sees through the proxy for `servername` (null: refused). */
function issuerSeen(
  servername: string | undefined,
  via = { host: '127.0.0.3', port: port() },
): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      ...via,
      ...(servername ? { servername } : {}),
      rejectUnauthorized: false,
    });
    socket.once('secureConnect', () => {
      resolve(String(socket.getPeerCertificate().issuer.CN ?? ''));
      socket.destroy();
    });
    socket.once('error', () => resolve(null));
    socket.once('close', () => resolve(null));
  });
}

const received = (path: string) => server.received.filter((r) => r.url === path);

describe('HTTPS through the proxy', () => {
  it('intercepts a host with method and path rules: allowed requests reach the server, others get 403', async () => {
    const ok = await curl('allowed.test', '/public/x');
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ method: 'GET', url: '/public/x' });
    const denied = await curl('allowed.test', '/private');
    expect(denied).toMatchObject({
      status: 403,
      body: 'sandlock: GET allowed.test/private refused: allowed by no --http-allow rule\n',
    });
    const post = await curl('allowed.test', '/public/x', '-X', 'POST', '-d', 'data');
    expect(post.status).toBe(403);
    expect(received('/private')).toEqual([]);
    expect(server.received.filter((r) => r.method === 'POST')).toEqual([]);
    expect(await issuerSeen('allowed.test')).toBe('Sandlock sandbox CA');
  });

  it('splices a host only whole-host rules name: the client sees the server itself', async () => {
    expect(await issuerSeen('splice.test')).toBe('sandlock test CA');
    const ok = await curl('splice.test', '/anything', '-X', 'DELETE');
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ method: 'DELETE', url: '/anything' });
  });

  it('refuses at the ClientHello: a name no rule allows, a name of another address, no name', async () => {
    const before = proxy.denials.length;
    expect(await issuerSeen('unlisted.test')).toBeNull();
    expect(await issuerSeen(undefined)).toBeNull();
    // allowed.test is allowed, but it is not what 127.0.0.2 is.
    expect(
      await issuerSeen('allowed.test', { host: '127.0.0.4', port: elsewhere.port }),
    ).toBeNull();
    expect(proxy.denials.slice(before).map((d) => [d.host, d.reason])).toEqual([
      ['unlisted.test', 'unlisted.test does not name the address dialled (127.0.0.1)'],
      [
        '127.0.0.1',
        'TLS without a server name (SNI) to 127.0.0.1: no --http-allow rule is about 127.0.0.1',
      ],
    ]);
    expect(toElsewhere.denials.at(-1)).toMatchObject({
      host: 'allowed.test',
      reason: 'allowed.test does not name the address dialled (127.0.0.2)',
      method: null,
    });
    expect(elsewhere.received).toEqual([]);
  });

  it('without a server name, takes the dialled address as the name: allowed by address rules', async () => {
    // An address rule allows 127.0.0.1, an HTTP rule names it with a path:
    // intercepted with a leaf for the address, upstream verified for it.
    const byAddress = await proxyListener(
      {
        httpAllow: ['GET 127.0.0.1/public/**'],
        net: netView(['127.0.0.1'], {}),
        lookup: {},
        upstreamCa: pki.caPem,
      },
      { address: '127.0.0.1', port: server.port },
      { address: '127.0.0.5', port: server.port },
    );
    // Only a name rule allows 127.0.0.1's name, no HTTP rule is about the address.
    const byName = await proxyListener(
      {
        httpAllow: ['GET allowed.test/**'],
        net: netView(['allowed.test'], lookup),
        lookup,
        upstreamCa: pki.caPem,
      },
      { address: '127.0.0.1', port: server.port },
      { address: '127.0.0.6', port: server.port },
    );
    try {
      const bundle = join(pki.dir, 'by-address.pem');
      writeFileSync(bundle, await byAddress.proxy.caCertificate());
      const get = async (via: string, path: string) => {
        const { stdout } = await run('curl', [
          '-s',
          '-w',
          ' %{http_code}',
          '--cacert',
          bundle,
          '--connect-to',
          `127.0.0.1:${port()}:${via}:${port()}`,
          `https://127.0.0.1:${port()}${path}`,
        ]).catch((error: { stdout: string; code: number }) => ({
          stdout: `exit ${error.code}`,
        }));
        return stdout;
      };
      expect(await get('127.0.0.5', '/public/ip')).toMatch(/"url":"\/public\/ip".* 200$/);
      expect(await get('127.0.0.5', '/private/ip')).toBe(
        'sandlock: GET 127.0.0.1/private/ip refused: allowed by no --http-allow rule\n 403',
      );
      expect(await get('127.0.0.6', '/public/ip')).toMatch(/^exit /);
      expect(byName.denials.map((d) => d.reason)).toEqual([
        'TLS without a server name (SNI) to 127.0.0.1: no --http-allow rule is about 127.0.0.1',
      ]);
      expect(received('/public/ip')).toHaveLength(1);
      expect(received('/private/ip')).toEqual([]);
    } finally {
      await Promise.all([byAddress.close(), byName.close()]);
    }
  });

  it('refuses a Host that is not the TLS server name', async () => {
    const mismatch = await curl('allowed.test', '/public/x', '-H', `Host: other.test:${port()}`);
    expect(mismatch.status).toBe(403);
    expect(mismatch.body).toContain('the Host other.test is not the TLS server name allowed.test');
  });

  it('adds the credential after the check, replacing what the client sent; the client never sent it', async () => {
    const before = server.received.length;
    const ok = await curl(
      'allowed.test',
      '/public/auth/me',
      '-H',
      'Authorization: Bearer fake',
      '-i',
    );
    expect(ok.status).toBe(200);
    const sent = server.received.slice(before).find((r) => r.url === '/public/auth/me')!;
    expect(sent.headers.authorization).toBe(`Bearer ${SECRET}`);
    // A response header echoing it is redacted; a body echoing it is the server's
    // answer and passes (docs/design.md: what "never sees" means).
    expect(ok.body).toMatch(/x-echo-authorization: Bearer \[sandlock: credential\]/i);
    // Not added where no --http-auth rule matches, nor to refused requests.
    await curl('allowed.test', '/public/plain');
    expect(received('/public/plain')[0]!.headers.authorization).toBeUndefined();
    await curl('allowed.test', '/public/auth/x', '-X', 'POST');
    expect(received('/public/auth/x')).toEqual([]);
  });

  it("a nested sandbox's requests get its own credentials, never those of the sandbox around it", async () => {
    const inner = levelOf({
      httpAllow: ['GET allowed.test/**'],
      httpAuth: ['GET allowed.test/public/inner/** bearer INNER'],
      secrets: { INNER: 'inner-token' },
      lookup,
    });
    const nested = await proxyListener(
      {
        httpAllow: ['GET allowed.test/public/**'],
        httpAuth: ['GET allowed.test/public/** bearer TOKEN'],
        net: netView(['allowed.test'], lookup),
        lookup,
        secrets: { TOKEN: SECRET },
        upstreamCa: pki.caPem,
        nested: [inner],
      },
      { address: '127.0.0.1', port: server.port },
      { address: '127.0.0.5', port: server.port },
    );
    try {
      const bundle = caBundle(await nested.proxy.caCertificate(), () => pki.caPem);
      const nestedBundle = join(pki.dir, 'nested-bundle.pem');
      writeFileSync(nestedBundle, bundle.files.get(bundle.primary)!);
      const get = (path: string) =>
        run('curl', [
          '-s',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '--cacert',
          nestedBundle,
          '--connect-to',
          `allowed.test:${port()}:127.0.0.5:${port()}`,
          `https://allowed.test:${port()}${path}`,
        ]).then(({ stdout }) => stdout);
      expect(await get('/public/inner/x')).toBe('200');
      expect(await get('/public/outer-only')).toBe('200');
      expect(received('/public/inner/x')[0]!.headers.authorization).toBe('Bearer inner-token');
      // The outer's --http-auth rule matches, its secret is not the inner sandbox's.
      expect(received('/public/outer-only')[0]!.headers.authorization).toBeUndefined();
    } finally {
      await nested.close();
    }
  });

  it('HTTP/2: every stream is checked; an :authority other than the server name is refused', async () => {
    const session = http2.connect(`https://allowed.test:${port()}`, {
      createConnection: () =>
        tls.connect({
          host: '127.0.0.3',
          port: port(),
          servername: 'allowed.test',
          ca: [await0()],
          ALPNProtocols: ['h2'],
        }),
    });
    const get = (authority: string, path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({
          ':method': 'GET',
          ':path': path,
          ':authority': authority,
        });
        let status = 0;
        let body = '';
        stream.on('response', (headers) => (status = Number(headers[':status'])));
        stream.setEncoding('utf8');
        stream.on('data', (chunk) => (body += chunk));
        stream.on('end', () => resolve({ status, body }));
        stream.on('error', reject);
        stream.end();
      });
    try {
      const first = await get(`allowed.test:${port()}`, '/public/h2');
      const switched = await get(`other.test:${port()}`, '/public/h2-switched');
      const denied = await get(`allowed.test:${port()}`, '/private/h2');
      expect(first.status).toBe(200);
      // The server speaks HTTP/2 too: the stream went on as one.
      expect(JSON.parse(first.body)).toMatchObject({
        version: '2.0',
        headers: { ':authority': `allowed.test:${port()}` },
      });
      expect(switched.status).toBe(403);
      expect(switched.body).toContain(
        'the Host other.test is not the TLS server name allowed.test',
      );
      expect(denied.status).toBe(403);
      expect(received('/public/h2-switched')).toEqual([]);
      expect(received('/private/h2')).toEqual([]);
    } finally {
      session.destroy();
    }
    const viaCurl = await curl('allowed.test', '/public/h2-curl', '--http2');
    expect(viaCurl).toMatchObject({ status: 200, version: '2' });
    expect((await curl('allowed.test', '/private/h2-curl', '--http2')).status).toBe(403);
  });

  it('Python urllib and Node fetch trust the bundle and get the same answers', async () => {
    const python = `
import json, socket, ssl, sys, urllib.request, urllib.error
real = socket.getaddrinfo
def fake(host, port, *args, **kwargs):
    return real('127.0.0.3' if host == 'allowed.test' else host, port, *args, **kwargs)
socket.getaddrinfo = fake
out = []
for path in ['/public/py', '/private/py']:
    try:
        with urllib.request.urlopen('https://allowed.test:${port()}' + path) as response:
            out.append(response.status)
    except urllib.error.HTTPError as error:
        out.append(error.code)
print(json.dumps(out))
`;
    const py = await run('python3', ['-c', python], {
      env: { ...process.env, SSL_CERT_FILE: bundlePath },
    });
    expect(JSON.parse(py.stdout)).toEqual([200, 403]);

    const node = `
const dns = require('node:dns');
const real = dns.lookup;
dns.lookup = (host, options, callback) => real(host === 'allowed.test' ? '127.0.0.3' : host, options, callback);
(async () => {
  const out = [];
  for (const path of ['/public/fetch', '/private/fetch']) {
    const response = await fetch('https://allowed.test:${port()}' + path);
    out.push(response.status);
  }
  console.log(JSON.stringify(out));
})();
`;
    const fetched = await run(process.execPath, ['-e', node], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: bundlePath },
    });
    expect(JSON.parse(fetched.stdout)).toEqual([200, 403]);
    expect(received('/public/py')).toHaveLength(1);
    expect(received('/public/fetch')).toHaveLength(1);
    expect(received('/private/py')).toEqual([]);
  });
});

let proxyCa = '';
function await0(): string {
  return proxyCa;
}
beforeAll(async () => {
  proxyCa = await proxy.proxy.caCertificate();
});
