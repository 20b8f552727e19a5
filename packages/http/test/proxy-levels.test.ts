// The proxy's connections from sandboxes nested in its own (levels: every
// one's rules hold, a deny of any wins, the refusal names the level), and
// connections that are neither TLS nor HTTP (judged by their address).
import http from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { parseNetRule } from '@sandlock/policy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Denial } from '../src/index.js';
import {
  type EchoServer,
  echoServer,
  levelOf,
  netView,
  type ProxyListener,
  proxyListener,
} from './helpers.js';

const lookup = { 'allowed.test': ['127.0.0.1'], 'other.test': ['127.0.0.2'] };

function get(
  via: ProxyListener,
  path: string,
  host: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: via.address, port: via.port, path, headers: { host }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * A connection to `port`: writes each of `writes` once the text read so far
 * includes its `after` (none: at once); resolves with everything read when
 * the peer closes or `until` is read. The deadline only catches hangs.
 */
function talk(
  address: string,
  port: number,
  writes: { after?: string; data: string | Buffer }[],
  until: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: address, port });
    let text = '';
    let next = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer: ${JSON.stringify(text)}`));
    }, 30_000);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    const pump = () => {
      while (next < writes.length && text.includes(writes[next]!.after ?? '')) {
        socket.write(writes[next]!.data);
        next++;
      }
    };
    socket.on('connect', pump);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes(until)) finish();
      else pump();
    });
    socket.on('close', finish);
    socket.on('error', () => finish());
  });
}

/** A TCP server echoing what it reads, saying `banner` first when given. */
async function tcpServer(
  address: string,
  banner?: string,
): Promise<{ port: number; server: Server }> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    if (banner !== undefined) socket.write(banner);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

let a: EchoServer;
const listeners: ProxyListener[] = [];
const servers: Server[] = [];
let nextAddress = 20;

/** A proxy listener on an address of its own, closed after the tests. */
async function via(
  options: Parameters<typeof proxyListener>[0],
  destination: { address: string; port: number },
): Promise<ProxyListener> {
  const listener = await proxyListener(options, destination, {
    address: `127.0.1.${nextAddress++}`,
  });
  listeners.push(listener);
  return listener;
}

beforeAll(async () => {
  a = await echoServer('127.0.0.1');
});
afterAll(async () => {
  await Promise.all(listeners.map((listener) => listener.close()));
  for (const server of servers) server.close();
  await a?.close();
});

const hostA = () => `allowed.test:${a.port}`;
const received = (path: string) => a.received.filter((entry) => entry.url === path).length;

describe('nested levels', () => {
  it('a narrower inner level: what the outer allows and the inner denies is refused, naming the inner level', async () => {
    const inner: Denial[] = [];
    const proxy = await via(
      {
        httpAllow: ['GET allowed.test/**'],
        lookup,
        nested: [
          levelOf({
            httpAllow: ['GET allowed.test/**'],
            httpDeny: ['GET allowed.test/secret/**'],
            lookup,
            denials: inner,
          }),
        ],
      },
      { address: a.address, port: a.port },
    );
    expect(await get(proxy, '/ok', hostA())).toMatchObject({ status: 200 });
    const secret = await get(proxy, '/secret/x', hostA());
    expect(secret).toEqual({
      status: 403,
      body: "sandlock: GET allowed.test/secret/x refused: denied by --http-deny 'GET allowed.test/secret/**' (sandbox level 1; 0 is the outermost)\n",
    });
    expect(received('/secret/x')).toBe(0);
    // The outermost host program sees every refusal; the inner level its own.
    expect(proxy.denials.map((denial) => [denial.level, denial.rule])).toEqual([
      [1, "--http-deny 'GET allowed.test/secret/**'"],
    ]);
    expect(inner).toEqual(proxy.denials);
  });

  it('an inner level cannot widen: what it allows and the outer does not is refused by the outer level', async () => {
    const inner: Denial[] = [];
    const proxy = await via(
      {
        httpAllow: ['GET allowed.test/ok'],
        lookup,
        nested: [levelOf({ httpAllow: ['* allowed.test/**'], lookup, denials: inner })],
      },
      { address: a.address, port: a.port },
    );
    expect(await get(proxy, '/ok', hostA())).toMatchObject({ status: 200 });
    expect(await get(proxy, '/wider', hostA())).toEqual({
      status: 403,
      body: 'sandlock: GET allowed.test/wider refused: allowed by no --http-allow rule (sandbox level 0; 0 is the outermost)\n',
    });
    expect(received('/wider')).toBe(0);
    expect(proxy.denials.map((denial) => denial.level)).toEqual([0]);
    expect(inner).toEqual([]);
  });

  it('three levels: each one denies its own, and the network rules of a level hold by name', async () => {
    const middle: Denial[] = [];
    const inner: Denial[] = [];
    const proxy = await via(
      {
        httpAllow: ['GET allowed.test/**', 'GET other.test/**'],
        lookup,
        nested: [
          levelOf({
            httpAllow: ['* allowed.test/**'],
            httpDeny: ['* allowed.test/mid/**'],
            lookup,
            denials: middle,
          }),
          levelOf({
            httpAllow: ['* allowed.test/**'],
            httpDeny: ['* allowed.test/in/**'],
            net: netView(['other.test'], lookup),
            lookup,
            denials: inner,
          }),
        ],
      },
      { address: a.address, port: a.port },
    );
    // The inner level's network rules allow other.test alone.
    const byName = await get(proxy, '/in-ok', hostA());
    expect(byName.status).toBe(403);
    expect(byName.body).toContain(
      `allowed.test (127.0.0.1:${a.port}) is allowed by no --net-allow rule (sandbox level 2; 0 is the outermost)`,
    );
    const widened = await via(
      {
        httpAllow: ['GET allowed.test/**'],
        lookup,
        nested: [
          levelOf({
            httpAllow: ['* allowed.test/**'],
            httpDeny: ['* allowed.test/mid/**'],
            lookup,
            denials: middle,
          }),
          levelOf({
            httpAllow: ['* allowed.test/**'],
            httpDeny: ['* allowed.test/in/**'],
            lookup,
            denials: inner,
          }),
        ],
      },
      { address: a.address, port: a.port },
    );
    expect(await get(widened, '/three', hostA())).toMatchObject({ status: 200 });
    expect((await get(widened, '/mid/x', hostA())).status).toBe(403);
    expect((await get(widened, '/in/x', hostA())).status).toBe(403);
    expect(received('/three')).toBe(1);
    expect(received('/mid/x') + received('/in/x') + received('/in-ok')).toBe(0);
    expect(widened.denials.map((denial) => [denial.level, denial.rule])).toEqual([
      [1, "--http-deny '* allowed.test/mid/**'"],
      [2, "--http-deny '* allowed.test/in/**'"],
    ]);
    expect(middle.map((denial) => denial.path)).toEqual(['/mid/x']);
    expect(inner.map((denial) => denial.path)).toEqual(['/in-ok', '/in/x']);
  });
});

describe('nested levels: ports', () => {
  it("refuses what a nested level's Landlock domain would have, unless its own rules send it to a proxy", async () => {
    const closed = { ...levelOf({ httpAllow: ['GET allowed.test/**'], lookup }), connectPorts: [] };
    const refused = await via(
      { httpAllow: ['GET allowed.test/**'], lookup, nested: [closed] },
      { address: a.address, port: a.port },
    );
    expect((await get(refused, '/closed', hostA()).catch(() => null))?.status).toBeUndefined();
    expect(refused.denials.map((denial) => [denial.level, denial.reason])).toEqual([
      [
        1,
        `a connection: the sandbox may connect to no TCP port ${a.port} (sandbox level 1; 0 is the outermost)`,
      ],
    ]);
    const covered = await via(
      {
        httpAllow: ['GET allowed.test/**'],
        lookup,
        nested: [{ ...closed, covers: [{ address: '127.0.0.1', port: null }] }],
      },
      { address: a.address, port: a.port },
    );
    expect(await get(covered, '/covered', hostA())).toMatchObject({ status: 200 });
    expect(received('/closed')).toBe(0);
  });
});

describe('connections that are neither TLS nor HTTP', () => {
  it('are forwarded when the address rules allow the address, on a port an HTTP rule is about', async () => {
    const { port, server } = await tcpServer('127.0.0.1');
    servers.push(server);
    const proxy = await via(
      { httpAllow: ['GET allowed.test/**'], net: netView(['127.0.0.1'], lookup), lookup },
      { address: '127.0.0.1', port },
    );
    const binary = Buffer.from([0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]);
    expect(
      await talk(proxy.address, proxy.port, [{ data: binary }], binary.toString('latin1')),
    ).toBe(binary.toString('latin1'));
    const ssh = 'SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n';
    expect(await talk(proxy.address, proxy.port, [{ data: ssh }], ssh)).toBe(ssh);
    expect(proxy.denials).toEqual([]);
  });

  it('are refused when only a name rule could allow them, and HTTP there is still checked', async () => {
    const { port, server } = await tcpServer('127.0.0.1');
    servers.push(server);
    const proxy = await via(
      { httpAllow: ['GET allowed.test/**'], net: netView(['allowed.test'], lookup), lookup },
      { address: '127.0.0.1', port },
    );
    // allowed.test is pinned to 127.0.0.1: the address is allowed by the name's pin.
    expect(await talk(proxy.address, proxy.port, [{ data: 'PING\r\n' }], 'PING\r\n')).toBe(
      'PING\r\n',
    );
    const wild = await via(
      {
        httpAllow: ['GET *.allowed.test/**'],
        net: netView(['*.allowed.test'], lookup),
        lookup,
      },
      { address: '127.0.0.1', port },
    );
    expect(await talk(wild.address, wild.port, [{ data: 'PING\r\n' }], 'never')).toBe('');
    expect(wild.denials.map((denial) => denial.reason)).toEqual([
      `neither TLS nor HTTP, judged by its address: 127.0.0.1:${port} is allowed by no --net-allow rule by its address (a name rule needs TLS or HTTP to see the name)`,
    ]);
    // Leading empty lines before a request line: HTTP, held to the HTTP rules.
    const smuggled = await talk(
      proxy.address,
      proxy.port,
      [
        {
          data: `\r\n\r\nPOST /x HTTP/1.1\r\nHost: allowed.test:${port}\r\nContent-Length: 0\r\n\r\n`,
        },
      ],
      'refused',
    );
    expect(smuggled).toContain('403 Forbidden');
  });

  it('a server that speaks first is heard, where the address allows it', async () => {
    const { port, server } = await tcpServer('127.0.0.1', 'HELLO from the server\r\n');
    servers.push(server);
    // An HTTP rule about every port of the address: the client's first bytes decide.
    const about = await via(
      { httpAllow: ['GET allowed.test/**'], net: netView(['127.0.0.1'], lookup), lookup },
      { address: '127.0.0.1', port },
    );
    expect(
      await talk(about.address, about.port, [{ after: 'HELLO', data: 'QUIT\r\n' }], 'QUIT\r\n'),
    ).toBe('HELLO from the server\r\nQUIT\r\n');
    // No HTTP rule about the port: decided on connect.
    const elsewhere = await via(
      { httpAllow: ['GET allowed.test:80/**'], net: netView(['127.0.0.1'], lookup), lookup },
      { address: '127.0.0.1', port },
    );
    expect(await talk(elsewhere.address, elsewhere.port, [], 'HELLO from the server\r\n')).toBe(
      'HELLO from the server\r\n',
    );
    // Refused on connect where the address rules refuse it.
    const refused = await via(
      { httpAllow: ['GET allowed.test:80/**'], net: netView(['127.0.0.2'], lookup), lookup },
      { address: '127.0.0.1', port },
    );
    expect(await talk(refused.address, refused.port, [], 'never')).toBe('');
    expect(refused.denials.map((denial) => denial.reason)).toEqual([
      `a connection judged by its address: 127.0.0.1:${port} is allowed by no --net-allow rule by its address (a name rule needs TLS or HTTP to see the name)`,
    ]);
  });

  it('a wildcard --net-deny refuses the addresses pinned for it, with or without a name', async () => {
    const { port, server } = await tcpServer('127.0.0.1');
    servers.push(server);
    const rule = parseNetRule('*.internal.test');
    if (typeof rule === 'string') throw new Error(rule);
    const net = {
      mode: 'deny' as const,
      rules: [rule],
      hosts: { '*.internal.test': ['127.0.0.1'] },
    };
    const proxy = await via(
      { httpAllow: ['* */**'], net, lookup: { ...lookup, 'db.internal.test': ['127.0.0.1'] } },
      { address: '127.0.0.1', port },
    );
    expect(await talk(proxy.address, proxy.port, [{ data: 'PING\r\n' }], 'never')).toBe('');
    const byAddress = await talk(
      proxy.address,
      proxy.port,
      [{ data: `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n` }],
      'refused',
    );
    expect(byAddress).toContain(`127.0.0.1 (127.0.0.1:${port}) is denied by --net-deny`);
    expect(proxy.denials.map((denial) => denial.reason)).toEqual([
      `neither TLS nor HTTP, judged by its address: 127.0.0.1:${port} is denied by --net-deny`,
      `127.0.0.1 (127.0.0.1:${port}) is denied by --net-deny`,
    ]);
  });
});
