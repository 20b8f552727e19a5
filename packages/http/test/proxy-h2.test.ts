// HTTP/2 forwarded as HTTP/2: an h2-only server behind the proxy, streams
// checked one by one, bodies streamed both ways, trailers, resets, GOAWAY,
// flow control, h2c with prior knowledge, and an HTTP/1.1-only server reached
// by an HTTP/2 client.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EchoServer,
  echoServer,
  makePki,
  netView,
  type ProxyListener,
  proxyListener,
  type TestPki,
} from './helpers.js';

const run = promisify(execFile);
const SECRET = 'h2-s3cr3t-0815';
const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

/** What the h2 servers saw of a stream that ended. */
interface Closed {
  readonly path: string;
  readonly rstCode: number | undefined;
}

/**
 * An HTTP/2 server (TLS without HTTP/1.1, or h2c): `/ok/echo` answers each
 * body chunk as it arrives (bidirectional streaming) with the request's
 * headers in a response header and trailers naming the request's trailer;
 * `/ok/reset` resets its stream after the headers; `/ok/hold` answers and
 * waits; `/ok/goaway` answers and sends GOAWAY; `/ok/flood` writes as much
 * as flow control lets it.
 */
async function h2Server(pki: TestPki | null) {
  const requests: { path: string; version: string; headers: http2.IncomingHttpHeaders }[] = [];
  const closed: Closed[] = [];
  let flooded = 0;
  const server =
    pki === null
      ? http2.createServer()
      : http2.createSecureServer({ cert: pki.cert, key: pki.key });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    requests.push({ path, version: '2.0', headers });
    stream.on('error', () => {});
    stream.on('close', () => closed.push({ path, rstCode: stream.rstCode }));
    if (path.startsWith('/ok/echo')) {
      stream.respond(
        { ':status': 200, 'x-request': JSON.stringify(headers) },
        { waitForTrailers: true },
      );
      let trailer = '';
      stream.on('trailers', (trailers) => (trailer = String(trailers['x-request-trailer'] ?? '')));
      stream.on('wantTrailers', () =>
        stream.sendTrailers({ 'x-trailer': `done ${trailer}`, 'grpc-status': '0' }),
      );
      stream.on('data', (chunk: Buffer) => stream.write(`echo:${chunk.toString()};`));
      stream.on('end', () => stream.end());
    } else if (path === '/ok/reset') {
      stream.respond({ ':status': 200 });
      stream.write('partial', () => stream.close(NGHTTP2_ENHANCE_YOUR_CALM));
    } else if (path === '/ok/hold') {
      stream.respond({ ':status': 200 });
      stream.write('held');
    } else if (path === '/ok/goaway') {
      stream.respond({ ':status': 200 });
      stream.end('bye', () => stream.session?.goaway());
    } else if (path === '/ok/flood') {
      stream.respond({ ':status': 200 });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const more = () => {
        while (!stream.destroyed && flooded < 64 * 1024 * 1024) {
          flooded += chunk.length;
          if (!stream.write(chunk)) {
            stream.once('drain', more);
            return;
          }
        }
        stream.end();
      };
      more();
    } else {
      stream.respond({ ':status': 200 });
      stream.end(`h2 ${path}`);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    closed,
    flooded: () => flooded,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

type H2Server = Awaited<ReturnType<typeof h2Server>>;

/** Waits for `condition`; the deadline only catches hangs. */
async function until(condition: () => boolean): Promise<void> {
  const end = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

let pki: TestPki;
let tlsServer: H2Server;
let plainServer: H2Server;
let http1Server: EchoServer;
let toTls: ProxyListener;
let toPlain: ProxyListener;
let toHttp1: ProxyListener;
let proxyCa: string;
const lookup = { 'h2.test': ['127.0.0.1'] };

beforeAll(async () => {
  pki = makePki(['h2.test']);
  tlsServer = await h2Server(pki);
  plainServer = await h2Server(null);
  http1Server = await echoServer('127.0.0.1', pki);
  const policy = {
    httpAllow: ['* h2.test/ok/**'],
    httpAuth: ['* h2.test/ok/echo/auth bearer TOKEN'],
    net: netView(['h2.test'], lookup),
    lookup,
    secrets: { TOKEN: SECRET },
    upstreamCa: pki.caPem,
  };
  // Each listener takes its server's port on another loopback address, as after a redirect.
  const listen = (port: number) =>
    proxyListener(policy, { address: '127.0.0.1', port }, { address: '127.0.0.3', port });
  toTls = await listen(tlsServer.port);
  toPlain = await listen(plainServer.port);
  toHttp1 = await listen(http1Server.port);
  proxyCa = await toTls.proxy.caCertificate();
});

afterAll(async () => {
  await Promise.all([
    toTls?.close(),
    toPlain?.close(),
    toHttp1?.close(),
    tlsServer?.close(),
    plainServer?.close(),
    http1Server?.close(),
  ]);
  pki?.remove();
});

/** An HTTP/2 client of h2.test through the proxy at `port` (TLS, or h2c with prior knowledge). */
async function client(listener: ProxyListener, secure = true): Promise<http2.ClientHttp2Session> {
  const { port } = listener;
  const ca = await listener.proxy.caCertificate();
  const session = secure
    ? http2.connect(`https://h2.test:${port}`, {
        createConnection: () =>
          tls.connect({
            host: '127.0.0.3',
            port,
            servername: 'h2.test',
            ca: [ca],
            ALPNProtocols: ['h2'],
          }),
      })
    : http2.connect(`http://127.0.0.3:${port}`);
  session.on('error', () => {});
  return session;
}

interface Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  trailers: http2.IncomingHttpHeaders;
  rstCode: number | undefined;
}

/** One request; resolves when the stream closes. */
function request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  send?: (stream: http2.ClientHttp2Stream, answer: Answer) => void,
  trailers?: http2.OutgoingHttpHeaders,
): Promise<Answer> {
  return new Promise((resolve) => {
    const answer: Answer = { status: 0, headers: {}, body: '', trailers: {}, rstCode: undefined };
    const stream = session.request(
      { ':authority': `h2.test:${tlsServer.port}`, ...headers },
      { endStream: send === undefined, waitForTrailers: trailers !== undefined },
    );
    stream.on('response', (got) => {
      answer.status = Number(got[':status']);
      answer.headers = got;
    });
    stream.on('trailers', (got) => (answer.trailers = got));
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (answer.body += chunk));
    stream.on('error', () => {});
    stream.on('close', () => {
      answer.rstCode = stream.rstCode;
      resolve(answer);
    });
    if (trailers !== undefined) stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    send?.(stream, answer);
  });
}

describe('HTTP/2 through the proxy', () => {
  it('an h2-only server: streams go on as HTTP/2, bodies stream both ways, trailers pass both ways, credentials are added', async () => {
    const session = await client(toTls);
    try {
      // Bidirectional: each chunk is sent only once the echo of the one before came back.
      const answer = await request(
        session,
        { ':method': 'POST', ':path': '/ok/echo/auth', ':authority': `h2.test:${tlsServer.port}` },
        (stream, got) => {
          let sent = 0;
          const next = () => {
            if (sent === 3) {
              stream.end();
              return;
            }
            stream.write(`m${sent++}`);
          };
          stream.on('data', () => {
            if (got.body.split(';').length - 1 === sent) next();
          });
          next();
        },
        { 'x-request-trailer': 'bye' },
      );
      expect(answer.status).toBe(200);
      expect(answer.body).toBe('echo:m0;echo:m1;echo:m2;');
      expect(answer.trailers).toMatchObject({ 'x-trailer': 'done bye', 'grpc-status': '0' });
      const seen = JSON.parse(String(answer.headers['x-request']));
      expect(seen[':authority']).toBe(`h2.test:${tlsServer.port}`);
      // The credential went to the server; its echo in a header came back redacted.
      expect(tlsServer.requests.at(-1)!.headers.authorization).toBe(`Bearer ${SECRET}`);
      expect(answer.headers['x-request']).not.toContain(SECRET);
      expect(answer.headers['x-request']).toContain('[sandlock: credential]');
      // A path no rule allows never reaches the server; the next stream on the connection still works.
      const denied = await request(session, { ':path': '/no/secret' });
      expect(denied.status).toBe(403);
      expect(denied.body).toContain('allowed by no --http-allow rule');
      const after = await request(session, { ':path': '/ok/after' });
      expect(after).toMatchObject({ status: 200, body: 'h2 /ok/after' });
      expect(tlsServer.requests.map((r) => r.path)).not.toContain('/no/secret');
    } finally {
      session.close();
    }
  });

  it('curl --http2 reaches the h2-only server', async () => {
    const bundle = join(pki.dir, 'proxy-ca.pem');
    writeFileSync(bundle, proxyCa);
    const { stdout } = await run('curl', [
      '-s',
      '--http2',
      '-w',
      '\n%{http_version} %{http_code}',
      '--cacert',
      bundle,
      '--connect-to',
      `h2.test:${toTls.port}:127.0.0.3:${toTls.port}`,
      `https://h2.test:${toTls.port}/ok/curl`,
    ]);
    expect(stdout).toBe('h2 /ok/curl\n2 200');
    const denied = await run('curl', [
      '-s',
      '--http2',
      '-w',
      '\n%{http_code}',
      '--cacert',
      bundle,
      '--connect-to',
      `h2.test:${toTls.port}:127.0.0.3:${toTls.port}`,
      `https://h2.test:${toTls.port}/no/curl`,
    ]);
    expect(denied.stdout).toMatch(/refused: allowed by no --http-allow rule\n\n403$/);
  });

  it('a gRPC request refused gets a gRPC status (PERMISSION_DENIED) in a trailers-only answer', async () => {
    const session = await client(toTls);
    try {
      const answer = await request(session, {
        ':method': 'POST',
        ':path': '/no/pkg.Service/Method',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      expect(answer.status).toBe(200);
      expect(answer.headers['grpc-status']).toBe('7');
      expect(answer.headers['grpc-message']).toBe(
        'sandlock: POST h2.test/no/pkg.Service/Method refused: allowed by no --http-allow rule',
      );
    } finally {
      session.close();
    }
  });

  it('resets pass both ways with their codes; after GOAWAY the next stream opens a new upstream connection', async () => {
    const session = await client(toTls);
    try {
      // Node reports no reset code on a stream whose own side had ended: the request stays open.
      const reset = await request(session, { ':method': 'POST', ':path': '/ok/reset' }, () => {});
      expect(reset.status).toBe(200);
      expect(reset.rstCode).toBe(NGHTTP2_ENHANCE_YOUR_CALM);
      // The client cancels: the server's stream is reset too.
      await request(session, { ':method': 'POST', ':path': '/ok/hold' }, (stream) => {
        stream.on('data', () => stream.close(NGHTTP2_CANCEL));
      });
      await until(() => tlsServer.closed.some((entry) => entry.path === '/ok/hold'));
      expect(tlsServer.closed.find((entry) => entry.path === '/ok/hold')!.rstCode).toBe(
        NGHTTP2_CANCEL,
      );
      const bye = await request(session, { ':path': '/ok/goaway' });
      expect(bye).toMatchObject({ status: 200, body: 'bye' });
      const again = await request(session, { ':path': '/ok/after-goaway' });
      expect(again).toMatchObject({ status: 200, body: 'h2 /ok/after-goaway' });
    } finally {
      session.close();
    }
  });

  it('flow control: a client that does not read holds the server back (nothing buffered without bound)', async () => {
    const session = await client(toTls);
    try {
      const stream = session.request({
        ':path': '/ok/flood',
        ':authority': `h2.test:${tlsServer.port}`,
      });
      stream.on('error', () => {});
      stream.pause();
      await new Promise((resolve) => stream.once('response', resolve));
      // Wait until the server has been stopped by flow control (its count stays put).
      let last = -1;
      await until(() => {
        const now = tlsServer.flooded();
        const still = now === last && now > 0;
        last = now;
        return still;
      });
      // The windows and socket buffers on the way, not the 64 MB the server would send.
      expect(tlsServer.flooded()).toBeLessThan(16 * 1024 * 1024);
      stream.close(NGHTTP2_CANCEL);
    } finally {
      session.destroy();
    }
  });

  it('h2c with prior knowledge goes on as h2c; the :authority is checked', async () => {
    const session = await client(toPlain, false);
    try {
      const ok = await request(session, {
        ':path': '/ok/plain',
        ':authority': `h2.test:${plainServer.port}`,
      });
      expect(ok).toMatchObject({ status: 200, body: 'h2 /ok/plain' });
      expect(plainServer.requests.at(-1)!.headers[':scheme']).toBe('http');
      const lying = await request(session, {
        ':path': '/ok/lying',
        ':authority': `other.test:${plainServer.port}`,
      });
      expect(lying.status).toBe(403);
      // No credential on a connection whose server proved nothing (no TLS).
      const echo = await request(session, {
        ':method': 'POST',
        ':path': '/ok/echo/auth',
        ':authority': `h2.test:${plainServer.port}`,
      });
      expect(echo.status).toBe(200);
      expect(plainServer.requests.at(-1)!.headers.authorization).toBeUndefined();
      expect(plainServer.requests.map((r) => r.path)).not.toContain('/ok/lying');
    } finally {
      session.close();
    }
  });

  it('an HTTP/1.1-only server: an HTTP/2 client is translated', async () => {
    const session = await client(toHttp1);
    try {
      const answer = await request(session, {
        ':path': '/ok/one',
        ':authority': `h2.test:${http1Server.port}`,
      });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({
        version: '1.1',
        url: '/ok/one',
        headers: { host: `h2.test:${http1Server.port}` },
      });
    } finally {
      session.close();
    }
  });
});
