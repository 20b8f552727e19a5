// Connections that are neither HTTP nor TLS-checked-by-name, at the port of a
// wildcard rule: allowed to an address the sandbox's DNS answered for a name
// beneath the rule (until the answer expires), refused otherwise; TLS still
// checked by its server name.
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import tls from 'node:tls';
import * as packet from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxDns } from '../src/index.js';
import { makePki, netView, type ProxyListener, proxyListener, type TestPki } from './helpers.js';

let pki: TestPki;
let banner: Server; // speaks first: "220 banner", then each line back in upper case
let echo: Server; // the client speaks first: each chunk back after "echo:"
let tlsEcho: tls.Server; // TLS, not HTTP: each chunk back after "tls:"
let toBanner: ProxyListener;
let toEcho: ProxyListener;
let toTls: ProxyListener;
const lookup = { 'pg.db.test': ['127.0.0.1'], 'tls.db.test': ['127.0.0.1'] };

async function listen(server: Server | tls.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  pki = makePki(['tls.db.test']);
  banner = createServer((socket) => {
    socket.on('error', () => {});
    socket.write('220 banner\n');
    socket.on('data', (chunk) => socket.write(chunk.toString().toUpperCase()));
  });
  echo = createServer((socket) => {
    socket.on('error', () => {});
    socket.on('data', (chunk) => socket.write(`echo:${chunk}`));
  });
  tlsEcho = tls.createServer({ cert: pki.cert, key: pki.key }, (socket) => {
    socket.on('error', () => {});
    socket.on('data', (chunk) => socket.write(`tls:${chunk}`));
  });
  const ports = [await listen(banner), await listen(echo), await listen(tlsEcho)];
  // The loopback address is special: a rule naming it (at another port) lets the DNS answer it.
  const policy = {
    net: netView([`*.db.test:${ports.join(',')}`, '127.0.0.1:9'], {}),
    lookup,
    upstreamCa: pki.caPem,
    helloTimeout: 1_000,
  };
  const via = (port: number) =>
    proxyListener(policy, { address: '127.0.0.1', port }, { address: '127.0.0.3', port });
  toBanner = await via(ports[0]!);
  toEcho = await via(ports[1]!);
  toTls = await via(ports[2]!);
});

afterAll(async () => {
  await Promise.all([toBanner?.close(), toEcho?.close(), toTls?.close()]);
  for (const server of [banner, echo, tlsEcho]) server?.close();
  pki?.remove();
});

/** Connects to the proxy at `port`, sends `lines` one by one (each after an answer), returns all it read until the close or `want` answers. */
function converse(port: number, lines: string[], want: number): Promise<string> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ host: '127.0.0.3', port });
    let text = '';
    let answers = 0;
    const done = () => {
      socket.destroy();
      resolve(text);
    };
    socket.on('data', (chunk) => {
      text += chunk;
      answers++;
      if (answers >= want) done();
      else if (lines.length > 0) socket.write(lines.shift()!);
    });
    socket.on('error', done);
    socket.on('close', done);
    // A client that speaks first sends its first line at once.
    if (want > lines.length) return;
    socket.write(lines.shift()!);
  });
}

/** The sandbox's DNS answering an A query of `name` for the proxy's names. */
async function resolve(listener: ProxyListener, name: string): Promise<number> {
  const dns = new SandboxDns(listener.names);
  const reply = await dns.answer(
    packet.encode({ type: 'query', id: 1, questions: [{ type: 'A', name }] }),
  );
  return packet.decode(reply!).answers?.length ?? 0;
}

describe('non-HTTP connections at the port of a wildcard rule', () => {
  it('before any DNS answer: a server-first protocol gets nothing, a client-first one is refused by its address', async () => {
    expect(await converse(toBanner.port, ['hello\n'], 2)).toBe('');
    expect(toBanner.denials.map((d) => d.reason)).toEqual([
      "nothing sent in 1000 ms, and 127.0.0.1 was not answered by the sandbox's DNS for a name allowed at port " +
        `${toBanner.port}`,
    ]);
    expect(await converse(toEcho.port, ['ping\n'], 1)).toBe('');
    expect(toEcho.denials.map((d) => d.reason)).toEqual([
      `neither TLS nor HTTP, judged by its address: 127.0.0.1:${toEcho.port} is allowed by no --net-allow rule by its address (a name rule needs TLS or HTTP to see the name)`,
    ]);
  });

  it('to an address the DNS answered for a name beneath the rule: server-first and client-first protocols pass', async () => {
    expect(await resolve(toBanner, 'pg.db.test')).toBe(1);
    expect(await converse(toBanner.port, ['hello\n'], 2)).toBe('220 banner\nHELLO\n');
    expect(await resolve(toEcho, 'pg.db.test')).toBe(1);
    expect(await converse(toEcho.port, ['ping\n', 'again\n'], 2)).toBe('echo:ping\necho:again\n');
    // HTTP (after an empty line, which servers skip) is still HTTP: its Host checked, not spliced.
    expect(
      await converse(toEcho.port, ['\r\nget / HTTP/1.1\r\nHost: other.test\r\n\r\n'], 1),
    ).toMatch(/^HTTP\/1\.1 400 /);
    // An answer that has expired allows nothing.
    toBanner.names.noteAnswer('pg.db.test', ['127.0.0.1'], 0);
    expect(toBanner.names.answeredNames('127.0.0.1')).toEqual([]);
    expect(await converse(toBanner.port, ['hello\n'], 2)).toBe('');
  });

  it('under a wildcard netDeny: judged by the address, as HTTP without a name is', async () => {
    const port = (echo.address() as AddressInfo).port;
    const deny = await proxyListener(
      {
        net: { ...netView([], {}), mode: 'deny', rules: netView(['*.db.test'], {}).rules },
        lookup,
      },
      { address: '127.0.0.1', port },
      { address: '127.0.0.4', port },
    );
    try {
      const text = await new Promise<string>((resolve) => {
        const socket = connect({ host: '127.0.0.4', port }, () => socket.write('ping\n'));
        socket.on('data', (chunk) => {
          socket.destroy();
          resolve(chunk.toString());
        });
        socket.on('error', () => resolve('refused'));
      });
      expect(text).toBe('echo:ping\n');
    } finally {
      await deny.close();
    }
  });

  it('TLS that is not HTTP: checked by its server name, then spliced', async () => {
    const talk = (servername: string) =>
      new Promise<string>((resolve) => {
        const socket = tls.connect({
          host: '127.0.0.3',
          port: toTls.port,
          servername,
          ca: [pki.caPem],
          checkServerIdentity: () => undefined,
        });
        socket.on('secureConnect', () => socket.write('hi'));
        socket.on('data', (chunk) => {
          socket.destroy();
          resolve(chunk.toString());
        });
        socket.on('error', () => resolve('refused'));
        socket.on('close', () => resolve('refused'));
      });
    expect(await talk('tls.db.test')).toBe('tls:hi');
    expect(await talk('other.test')).toBe('refused');
    expect(toTls.denials.map((d) => d.host)).toEqual(['other.test']);
  });
});
