import { execFile } from 'node:child_process';
import http from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EchoServer,
  echoServer,
  netView,
  type ProxyListener,
  proxyListener,
  rawExchange,
  responses,
} from './helpers.js';

const run = promisify(execFile);

let a: EchoServer; // allowed.test, 127.0.0.1
let b: EchoServer; // other.test, 127.0.0.2
let toA: ProxyListener;
let toB: ProxyListener;
const lookup = { 'allowed.test': ['127.0.0.1'], 'other.test': ['127.0.0.2'] };

beforeAll(async () => {
  a = await echoServer('127.0.0.1');
  b = await echoServer('127.0.0.2');
  const policy = {
    httpAllow: ['GET allowed.test/public/**', 'POST allowed.test/api/upload', 'GET other.test/**'],
    httpDeny: ['* allowed.test/public/secret/**'],
    net: netView(['allowed.test', 'other.test'], lookup),
    lookup,
  };
  toA = await proxyListener(policy, { address: a.address, port: a.port });
  toB = await proxyListener(policy, { address: b.address, port: b.port });
});

afterAll(async () => {
  await Promise.all([toA?.close(), toB?.close(), a?.close(), b?.close()]);
});

function request(
  via: ProxyListener,
  method: string,
  path: string,
  host: string,
  agent?: http.Agent,
): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: via.address,
        port: via.port,
        method,
        path,
        headers: { host },
        ...(agent ? { agent } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }),
        );
        res.on('error', reject);
        res.on('aborted', () => reject(new Error('aborted')));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const hostA = () => `allowed.test:${a.port}`;
const count = (server: EchoServer, path: string) =>
  server.received.filter((r) => r.url === path).length;

describe('plain HTTP through the proxy', () => {
  it('forwards an allowed request to the address dialled, and refuses other methods, paths and hosts', async () => {
    const allowed = await request(toA, 'GET', '/public/x?y=1', hostA());
    expect(allowed.status).toBe(200);
    expect(JSON.parse(allowed.body)).toMatchObject({ method: 'GET', url: '/public/x?y=1' });
    expect(JSON.parse(allowed.body).headers.host).toBe(hostA());

    const denials = toA.denials.length;
    const post = await request(toA, 'POST', '/public/x', hostA());
    expect(post.status).toBe(403);
    expect(post.body).toBe(
      'sandlock: POST allowed.test/public/x refused: allowed by no --http-allow rule\n',
    );
    const secret = await request(toA, 'GET', '/public/secret/key', hostA());
    expect(secret.status).toBe(403);
    expect(secret.body).toContain("denied by --http-deny '* allowed.test/public/secret/**'");
    expect(toA.denials.slice(denials)).toEqual([
      {
        rule: null,
        reason: 'allowed by no --http-allow rule',
        method: 'POST',
        host: 'allowed.test',
        path: '/public/x',
        destination: { address: '127.0.0.1', port: a.port },
        level: 0,
      },
      {
        rule: "--http-deny '* allowed.test/public/secret/**'",
        reason: "denied by --http-deny '* allowed.test/public/secret/**'",
        method: 'GET',
        host: 'allowed.test',
        path: '/public/secret/key',
        destination: { address: '127.0.0.1', port: a.port },
        level: 0,
      },
    ]);
    expect(count(a, '/public/x')).toBe(0);
    expect(count(a, '/public/secret/key')).toBe(0);
  });

  it('checks every request of a keep-alive connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await request(toA, 'GET', '/public/keep', hostA(), agent);
      const second = await request(toA, 'GET', '/private/keep', hostA(), agent);
      expect(first.status).toBe(200);
      expect(second.status).toBe(403);
      expect(second.reused).toBe(true);
      expect(count(a, '/private/keep')).toBe(0);
    } finally {
      agent.destroy();
    }
  });

  it('refuses a Host naming an allowed host when another address was dialled', async () => {
    // Dialled other.test's address, says allowed.test: §7.18 of the reference forwarded by Host.
    const lying = await request(toB, 'GET', '/public/x', `allowed.test:${b.port}`);
    expect(lying.status).toBe(403);
    expect(lying.body).toContain('allowed.test does not name the address dialled (127.0.0.2)');
    expect(a.received.filter((r) => r.url === '/public/x' && r.headers.host !== hostA())).toEqual(
      [],
    );
    expect(b.received).toEqual([]);
    // The honest Host to the same address goes through.
    expect((await request(toB, 'GET', '/anything', `other.test:${b.port}`)).status).toBe(200);
    // A Host port that is not the port dialled.
    expect((await request(toA, 'GET', '/public/x', 'allowed.test:1')).status).toBe(403);
  });

  it('refuses Content-Length with Transfer-Encoding, and forwards nothing of it', async () => {
    const smuggled = [
      'POST /api/upload HTTP/1.1',
      `Host: ${hostA()}`,
      'Content-Length: 50',
      'Transfer-Encoding: chunked',
      '',
      '0',
      '',
      'GET /public/secret/smuggled HTTP/1.1',
      `Host: ${hostA()}`,
      '',
      '',
    ].join('\r\n');
    const answer = await rawExchange(toA.address, toA.port, smuggled);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(a.received.filter((r) => r.url === '/api/upload' || r.url.includes('smuggled'))).toEqual(
      [],
    );
  });

  it('takes two requests in one packet one by one: the second is refused', async () => {
    const two = [
      'GET /public/first HTTP/1.1',
      `Host: ${hostA()}`,
      '',
      'GET /private/second HTTP/1.1',
      `Host: ${hostA()}`,
      '',
      '',
    ].join('\r\n');
    const answer = await rawExchange(
      toA.address,
      toA.port,
      two,
      (text) => responses(text).length === 2,
    );
    expect(responses(answer).map((r) => r.status)).toEqual([200, 403]);
    expect(count(a, '/public/first')).toBe(1);
    expect(count(a, '/private/second')).toBe(0);
  });

  it('forwards the request as parsed: a chunked body arrives whole, hop-by-hop headers dropped', async () => {
    const chunked = [
      'POST /api/upload HTTP/1.1',
      `Host: ${hostA()}`,
      'Transfer-Encoding: chunked',
      'Connection: keep-alive, X-Drop',
      'X-Drop: 1',
      'X-Keep: 2',
      '',
      '5',
      'hello',
      '6',
      ' world',
      '0',
      '',
      '',
    ].join('\r\n');
    const answer = await rawExchange(
      toA.address,
      toA.port,
      chunked,
      (text) => responses(text).length === 1,
    );
    const [response] = responses(answer);
    expect(response!.status).toBe(200);
    const received = a.received.find((r) => r.url === '/api/upload')!;
    expect(received.body).toBe('hello world');
    expect(received.headers['x-keep']).toBe('2');
    expect(received.headers['x-drop']).toBeUndefined();
  });

  it('refuses encoded traversal out of an allowed path', async () => {
    for (const path of [
      '/public/%2e%2e/private',
      '/public/%2E%2E/%2e%2e/private',
      '/public/..%2fprivate',
      '/public/..;/private',
      '/public/x/../secret/key',
      '//public/x',
    ]) {
      const answer = await request(toA, 'GET', path, hostA());
      expect(answer.status, path).toBe(403);
    }
    expect(a.received.filter((r) => r.url.includes('private') || r.url.startsWith('//'))).toEqual(
      [],
    );
  });

  it('refuses CONNECT, and an absolute-form target naming another host', async () => {
    const connect = await rawExchange(
      toA.address,
      toA.port,
      `CONNECT other.test:${b.port} HTTP/1.1\r\nHost: other.test:${b.port}\r\n\r\n`,
    );
    expect(connect).toMatch(/^HTTP\/1\.1 403 /);
    const absolute = await rawExchange(
      toA.address,
      toA.port,
      `GET http://other.test:${b.port}/public/x HTTP/1.1\r\nHost: ${hostA()}\r\nConnection: close\r\n\r\n`,
    );
    expect(absolute).toMatch(/^HTTP\/1\.1 400 /);
    expect(b.received.filter((r) => r.url !== '/anything')).toEqual([]);
    expect(a.received.filter((r) => r.url.includes('http:'))).toEqual([]);
  });

  it('curl through the proxy: allowed and refused', async () => {
    const curl = (path: string) =>
      run('curl', [
        '-s',
        '-o',
        '-',
        '-w',
        '\n%{http_code}',
        '--connect-to',
        `allowed.test:${a.port}:${toA.address}:${toA.port}`,
        `http://allowed.test:${a.port}${path}`,
      ]);
    const ok = await curl('/public/curl');
    expect(ok.stdout.trim().split('\n').at(-1)).toBe('200');
    const refused = await curl('/admin');
    expect(refused.stdout).toContain('refused: allowed by no --http-allow rule');
    expect(refused.stdout.trim().split('\n').at(-1)).toBe('403');
  });

  it('holds a bounded number of connections at once', async () => {
    const limited = await proxyListener(
      { httpAllow: ['GET allowed.test/**'], lookup, maxConnections: 2 },
      { address: a.address, port: a.port },
      { address: '127.0.0.5' },
    );
    const open: Socket[] = [];
    try {
      const opened = (socket: Socket) =>
        new Promise<void>((resolve, reject) => {
          socket.once('connect', () => resolve());
          socket.once('error', reject);
        });
      for (let index = 0; index < 2; index++) {
        const socket = connect(limited.port, limited.address);
        open.push(socket);
        await opened(socket);
      }
      await new Promise<void>((resolve) => {
        const check = () => (limited.denials.length === 0 ? setTimeout(check, 20) : resolve());
        const third = connect(limited.port, limited.address);
        open.push(third);
        third.on('error', () => {});
        check();
      });
      expect(limited.denials).toMatchObject([{ reason: 'too many connections at once' }]);
      // The held connections still work.
      open[0]!.write(
        `GET /held HTTP/1.1\r\nHost: allowed.test:${a.port}\r\nConnection: close\r\n\r\n`,
      );
      const answer = await new Promise<string>((resolve) => {
        let text = '';
        open[0]!.on('data', (chunk) => (text += chunk));
        open[0]!.on('close', () => resolve(text));
      });
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      for (const socket of open) socket.destroy();
      await limited.close();
    }
  });

  it('a wildcard network rule: names beneath it pass by name, the domain itself does not', async () => {
    const wild = await proxyListener(
      {
        // tcp://127.0.0.1:1 names the address (on another port), so names may resolve to it.
        net: netView([`*.wild.test:${a.port}`, 'tcp://127.0.0.1:1'], {}),
        lookup: { 'a.wild.test': ['127.0.0.1'], 'wild.test': ['127.0.0.1'] },
      },
      { address: a.address, port: a.port },
      { address: '127.0.0.6' },
    );
    try {
      expect((await request(wild, 'GET', '/wild', `a.wild.test:${a.port}`)).status).toBe(200);
      const domain = await request(wild, 'GET', '/wild-domain', `wild.test:${a.port}`);
      expect(domain.status).toBe(403);
      expect(domain.body).toContain(
        `wild.test (127.0.0.1:${a.port}) is allowed by no --net-allow rule`,
      );
      expect(count(a, '/wild')).toBe(1);
      expect(count(a, '/wild-domain')).toBe(0);
    } finally {
      await wild.close();
    }
  });

  it('adds no credential to plain HTTP, where nothing proves the server is the host', async () => {
    const withAuth = await proxyListener(
      {
        httpAllow: ['GET allowed.test/**'],
        httpAuth: ['GET allowed.test/** bearer TOKEN'],
        secrets: { TOKEN: 'plain-secret' },
        lookup,
      },
      { address: a.address, port: a.port },
      { address: '127.0.0.7' },
    );
    try {
      expect((await request(withAuth, 'GET', '/no-credential', hostA())).status).toBe(200);
      expect(
        a.received.find((r) => r.url === '/no-credential')!.headers.authorization,
      ).toBeUndefined();
    } finally {
      await withAuth.close();
    }
  });

  it('an upstream failing mid-answer ends that answer only; the proxy keeps serving', async () => {
    const broken = http.createServer((req, res) => {
      if (req.url === '/cut') {
        res.writeHead(200, { 'content-length': '1000' });
        res.write('partial');
        setImmediate(() => res.socket?.destroy());
      } else res.end('fine');
    });
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.8', resolve));
    const port = (broken.address() as AddressInfo).port;
    const via = await proxyListener(
      { httpAllow: ['GET broken.test/**'], lookup: { 'broken.test': ['127.0.0.8'] } },
      { address: '127.0.0.8', port },
      { address: '127.0.0.9' },
    );
    try {
      const cut = await request(via, 'GET', '/cut', `broken.test:${port}`).then(
        (answer) => answer.body,
        (error: Error) => error.message,
      );
      expect(cut).not.toBe('fine');
      expect(await request(via, 'GET', '/after', `broken.test:${port}`)).toMatchObject({
        status: 200,
        body: 'fine',
      });
      // Nothing listens: 502, and still serving.
      const gone = await proxyListener(
        { httpAllow: ['GET gone.test/**'], lookup: { 'gone.test': ['127.0.0.8'] } },
        { address: '127.0.0.8', port: 1 },
        { address: '127.0.0.10' },
      );
      try {
        expect((await request(gone, 'GET', '/', 'gone.test:1')).status).toBe(502);
      } finally {
        await gone.close();
      }
    } finally {
      await via.close();
      broken.closeAllConnections();
      await new Promise<void>((resolve) => broken.close(() => resolve()));
    }
  });
});
