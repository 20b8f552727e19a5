// Servers, a PKI and a proxy listener for the tests: all on loopback, made by the test.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NetView, parseNetRule } from '@sandlock/policy';
import {
  type Denial,
  type Destination,
  HttpProxy,
  HttpRules,
  type Level,
  Names,
  type PortRanges,
} from '../src/index.js';

/** A CA and a server certificate made with openssl (not with the code under test). */
export interface TestPki {
  readonly dir: string;
  readonly caPem: string;
  readonly caKeyPem: string;
  readonly caPath: string;
  readonly caKeyPath: string;
  readonly cert: string;
  readonly key: string;
  remove(): void;
}

export function makePki(names: readonly string[]): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'sandlock-http-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=sandlock test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  run('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${names[0]}`);
  writeFileSync(
    join(dir, 'ext'),
    `subjectAltName=${names.map((name) => (/^[\d.]+$/.test(name) ? `IP:${name}` : `DNS:${name}`)).join(',')}\n`,
  );
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'ext',
  );
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  return {
    dir,
    caPem: read('ca.pem'),
    caKeyPem: read('ca.key'),
    caPath: join(dir, 'ca.pem'),
    caKeyPath: join(dir, 'ca.key'),
    cert: read('server.pem'),
    key: read('server.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** What an upstream server received. */
export interface Received {
  readonly method: string;
  readonly url: string;
  /** `1.1`, `2.0`. */
  readonly version: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** A server answering every request with what it received, as JSON (headers echoed). */
export interface EchoServer {
  readonly address: string;
  readonly port: number;
  readonly received: Received[];
  close(): Promise<void>;
}

function echo(received: Received[]) {
  return (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const entry = {
        method: req.method,
        url: req.url,
        version: req.httpVersion,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      } as Received;
      received.push(entry);
      const text = JSON.stringify(entry);
      (res as http.ServerResponse).writeHead(200, {
        'content-type': 'application/json',
        'x-echo-authorization': String(req.headers.authorization ?? ''),
      });
      res.end(text);
    });
  };
}

async function listening(
  server: Server | http.Server | https.Server | http2.Http2SecureServer,
  address: string,
  port = 0,
): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

function closer(server: {
  close(cb: () => void): void;
  closeAllConnections?: () => void;
}): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    });
}

export async function echoServer(address: string, tls?: TestPki): Promise<EchoServer> {
  const received: Received[] = [];
  const server =
    tls === undefined
      ? http.createServer(echo(received))
      : https.createServer({ cert: tls.cert, key: tls.key }, echo(received));
  const port = await listening(server, address);
  return { address, port, received, close: closer(server) };
}

/** An HTTPS server speaking HTTP/2 (and HTTP/1.1), echoing like {@link echoServer}. */
export async function echoServer2(address: string, tls: TestPki): Promise<EchoServer> {
  const received: Received[] = [];
  const server = http2.createSecureServer(
    { cert: tls.cert, key: tls.key, allowHTTP1: true },
    echo(received),
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  const port = await listening(server, address);
  return {
    address,
    port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The network rules of a test: netAllow texts, with the names pinned as given. */
export function netView(allow: readonly string[], hosts: Record<string, string[]>): NetView {
  return {
    mode: 'allow',
    rules: allow.map((text) => {
      const rule = parseNetRule(text);
      if (typeof rule === 'string') throw new Error(rule);
      return rule;
    }),
    hosts,
  };
}

/** The names the tests resolve, as a lookup for {@link Names}. */
export function lookupOf(table: Record<string, string[]>): (name: string) => Promise<string[]> {
  return async (name) => {
    const found = table[name];
    if (found === undefined)
      throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return found;
  };
}

/** The rules of a sandbox nested in the proxy's own, as a level; its refusals are pushed to `denials`. */
export function levelOf(options: {
  httpAllow?: string[];
  httpDeny?: string[];
  httpAuth?: string[];
  net?: NetView | null;
  lookup: Record<string, string[]>;
  secrets?: Record<string, string>;
  denials?: Denial[];
}): Level {
  const rules = new HttpRules({
    httpAllow: options.httpAllow ?? [],
    httpDeny: options.httpDeny ?? [],
    httpAuth: options.httpAuth ?? [],
  });
  return {
    rules,
    names: new Names({ net: options.net ?? null, http: rules, lookup: lookupOf(options.lookup) }),
    net: options.net ?? null,
    connectPorts: null,
    secrets: new Map(Object.entries(options.secrets ?? {})),
    onDenied: (denial) => options.denials?.push(denial),
  };
}

/**
 * A listener standing for the connect redirect: every connection to it is
 * handed to the proxy as if it had been dialled to `destination`.
 */
export interface ProxyListener {
  readonly address: string;
  readonly port: number;
  readonly proxy: HttpProxy;
  readonly names: Names;
  readonly denials: Denial[];
  close(): Promise<void>;
}

export async function proxyListener(
  options: {
    httpAllow?: string[];
    httpDeny?: string[];
    httpAuth?: string[];
    net?: NetView | null;
    lookup: Record<string, string[]>;
    secrets?: Record<string, string>;
    upstreamCa?: string;
    maxConnections?: number;
    /** Levels of sandboxes nested in the proxy's own that every connection comes from. */
    nested?: readonly Level[];
    connectPorts?: PortRanges;
    helloTimeout?: number;
  },
  destination: Destination | (() => Destination),
  at: { address: string; port?: number } = { address: '127.0.0.3' },
): Promise<ProxyListener> {
  const rules = new HttpRules({
    httpAllow: options.httpAllow ?? [],
    httpDeny: options.httpDeny ?? [],
    httpAuth: options.httpAuth ?? [],
  });
  const names = new Names({
    net: options.net ?? null,
    http: rules,
    lookup: lookupOf(options.lookup),
  });
  const denials: Denial[] = [];
  const proxy = new HttpProxy({
    rules,
    names,
    secrets: new Map(Object.entries(options.secrets ?? {})),
    ...(options.upstreamCa ? { upstreamCa: options.upstreamCa } : {}),
    ...(options.maxConnections ? { maxConnections: options.maxConnections } : {}),
    ...(options.connectPorts !== undefined ? { connectPorts: options.connectPorts } : {}),
    ...(options.helloTimeout !== undefined ? { helloTimeout: options.helloTimeout } : {}),
    onDenied: (denial) => denials.push(denial),
  });
  const server = createServer((socket) =>
    proxy.handle(
      socket,
      typeof destination === 'function' ? destination() : destination,
      options.nested ?? [],
    ),
  );
  const port = await listening(server, at.address, at.port ?? 0);
  return {
    address: at.address,
    port,
    proxy,
    names,
    denials,
    close: async () => {
      await proxy.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Sends `data` on a new connection and collects what comes back until
 * `done(text)` says so or the peer closes; the deadline only catches hangs.
 */
export function rawExchange(
  address: string,
  port: number,
  data: string | Buffer,
  done: (text: string) => boolean = () => false,
  deadline = 30_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: address, port });
    const chunks: Buffer[] = [];
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString());
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`no complete answer in ${deadline} ms: ${Buffer.concat(chunks).toString()}`),
      );
    }, deadline);
    socket.on('connect', () => socket.write(data));
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      if (done(Buffer.concat(chunks).toString())) finish();
    });
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', (error) => (chunks.length > 0 ? finish() : reject(error)));
  });
}

/** The number of complete HTTP/1.1 responses in `text` (each with a Content-Length). */
export function responses(text: string): { status: number; body: string }[] {
  const out: { status: number; body: string }[] = [];
  let rest = text;
  for (;;) {
    const head = /^HTTP\/1\.1 (\d{3})[^\r]*\r\n([\s\S]*?)\r\n\r\n/.exec(rest);
    if (head === null) return out;
    const length = /content-length: *(\d+)/i.exec(head[2]!);
    const chunked = /transfer-encoding: *chunked/i.test(head[2]!);
    let body: string;
    let used: number;
    const after = rest.slice(head[0].length);
    if (length !== null) {
      if (after.length < Number(length[1])) return out;
      body = after.slice(0, Number(length[1]));
      used = head[0].length + body.length;
    } else if (chunked) {
      const end = after.indexOf('0\r\n\r\n');
      if (end < 0) return out;
      body = after.slice(0, end);
      used = head[0].length + end + 5;
    } else return out;
    out.push({ status: Number(head[1]), body });
    rest = rest.slice(used);
  }
}
