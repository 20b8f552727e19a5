// The transparent proxy of one sandbox: connections the sandbox made, checked
// by name (SNI, Host) and request by request, forwarded to where it dialled.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import http, {
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import http2, { type ClientHttp2Session, type ServerHttp2Stream } from 'node:http2';
import https from 'node:https';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { pipeline, type Readable } from 'node:stream';
import tls from 'node:tls';
import { BUNDLE_PATHS } from './bundle.js';
import { CertificateAuthority, LeafCache } from './ca.js';
import { authHeader } from './credentials.js';
import { forwardStream, openUpstream } from './h2.js';
import { addressText, type Names } from './names.js';
import type { HttpRules, RequestFacts } from './rules.js';
import { readHello } from './sni.js';

/** Where the sandbox's connection was going: what it dialled, never what it says in `Host`. */
export interface Destination {
  readonly address: string;
  readonly port: number;
  /** Where to forward, when not the address and port dialled (a port of the sandbox's private port space: its real one). */
  readonly upstream?: { readonly address: string; readonly port: number };
}

/** A connection or request the proxy refused. */
export interface Denial {
  /** The rule that refused it (`--http-deny 'GET x.com/admin/**'`); null when none did (no allow rule matched, a mismatch). */
  readonly rule: string | null;
  readonly reason: string;
  /** null for a connection refused before any request (by its TLS server name). */
  readonly method: string | null;
  readonly host: string | null;
  readonly path: string | null;
  readonly destination: Destination;
}

export interface ProxyOptions {
  readonly rules: HttpRules;
  readonly names: Names;
  /** The CA interception signs with; default: one made on first use, its key only in memory. */
  readonly ca?: CertificateAuthority;
  /** Secrets by credential name (readCredentials). */
  readonly secrets?: ReadonlyMap<string, string>;
  /** CA certificates (PEM) upstream servers are verified against; default: the system bundle. */
  readonly upstreamCa?: string | readonly string[];
  /** Called for every refusal (also emitted as `denied`). */
  readonly onDenied?: (denial: Denial) => void;
  /** How long a new connection may take to send its first bytes, in ms (default 10 s). */
  readonly helloTimeout?: number;
  /** Most leaf certificates kept (default 1000). */
  readonly leafCacheSize?: number;
  /** Most connections of the sandbox handled at once; more are refused (default 512). */
  readonly maxConnections?: number;
  /** A connection idle this long is closed, in ms (default 5 minutes). */
  readonly idleTimeout?: number;
}

/** Headers of one hop (RFC 9110 §7.6.1), never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'http2-settings',
]);

const REDACTED = '[sandlock: credential]';

/**
 * The system bundle, and the certificates NODE_EXTRA_CA_CERTS of the
 * supervisor's process names (as Node adds them to its own roots: a host's
 * private CA, or a test's).
 */
function systemTrust(): string[] {
  const extra: string[] = [];
  const extraPath = process.env.NODE_EXTRA_CA_CERTS;
  if (extraPath !== undefined && extraPath !== '') {
    try {
      extra.push(readFileSync(extraPath, 'utf8'));
    } catch {}
  }
  for (const path of BUNDLE_PATHS) {
    try {
      const text = readFileSync(path, 'utf8');
      if (text.includes('BEGIN CERTIFICATE')) return [text, ...extra];
    } catch {}
  }
  return [...tls.rootCertificates, ...extra];
}

/** `Host`/`:authority` taken apart: name (lower case, no trailing dot, IPv6 without brackets) and port. */
export function parseAuthority(text: string): { host: string; port: number | null } | null {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]/@\s]+))(?::(\d{1,5}))?$/.exec(text.trim());
  if (match === null) return null;
  const host = (match[1] ?? match[2]!).toLowerCase().replace(/\.$/, '');
  if (match[1] !== undefined && isIP(host) !== 6) return null;
  const port = match[3] === undefined ? null : Number(match[3]);
  if (port !== null && (port < 1 || port > 65535)) return null;
  return { host: isIP(host) ? addressText(host) : host, port };
}

/** The first bytes of a connection, put back; null when it ends or stays silent. */
function firstBytes(socket: Socket, timeout: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const done = (chunk: Buffer | null) => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('close', onClose);
      socket.off('error', onClose);
      resolve(chunk);
    };
    const onReadable = () => {
      const chunk = socket.read() as Buffer | null;
      if (chunk === null) return;
      socket.unshift(chunk);
      done(chunk);
    };
    const onClose = () => done(null);
    const timer = setTimeout(() => done(null), timeout);
    socket.on('readable', onReadable);
    socket.once('close', onClose);
    socket.once('error', onClose);
    onReadable();
  });
}

/** What the proxy knows about a connection it handles. */
interface Connection {
  readonly destination: Destination;
  /** The TLS server name, for intercepted TLS; null for plain HTTP. */
  readonly serverName: string | null;
}

/** A request on its way: what both HTTP/1 and HTTP/2 give. */
interface Request {
  readonly method: string;
  readonly target: string;
  /** Host or :authority, as sent. */
  readonly authority: string | undefined;
  readonly headers: [string, string][];
  readonly body: Readable;
  /** An HTTP/2 stream: forwarded as one when the server speaks HTTP/2 too. */
  readonly http2?: {
    readonly stream: ServerHttp2Stream;
    /** The request came without a body (END_STREAM on its HEADERS). */
    readonly endStream: boolean;
    /** The connection's session to the server; null when the server speaks HTTP/1.1. */
    readonly upstream: () => Promise<ClientHttp2Session | null>;
    readonly trailers: () => http2.IncomingHttpHeaders | null;
  };
}

/** The HTTP/2 connection preface (RFC 9113 §3.4): h2c with prior knowledge. */
const H2_PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

/**
 * A grpc-message value: UTF-8, every byte outside printable ASCII and `%`
 * percent-encoded (gRPC's PROTOCOL-HTTP2.md, "Status-Message"); clients
 * decode nothing else.
 */
function grpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text)) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * What may begin an HTTP/1 request for some server: a method token (any
 * case) and a space, or all of the chunk so far; after empty lines, which
 * servers skip (RFC 9112 §2.2). Such a connection is read as HTTP, its Host
 * checked, never spliced by a DNS answer.
 */
const HTTP_START = /^\s*(?:[A-Za-z][A-Za-z-]*(?: |$)|$)/;

/** How long a connection that may be judged by a DNS answer waits for the client to speak first, in ms. */
const SERVER_FIRST_WAIT = 500;

/** gRPC status codes (grpc/doc/statuscodes.md) for the proxy's refusals, by HTTP status. */
const GRPC_STATUS: Record<number, number> = { 400: 13, 403: 7, 502: 14 };

/**
 * The HTTP(S) proxy of one sandbox, owned by its supervisor (Node's main
 * thread). {@link handle} takes a connection the sandbox made, with the
 * address and port it dialled.
 *
 * Events: `denied` (a {@link Denial}), `error` is never emitted (failures
 * end the connection they belong to).
 */
export class HttpProxy extends EventEmitter {
  private readonly sockets = new Set<Socket>();
  private clients = 0;
  private readonly leaves: Promise<LeafCache>;
  private readonly caReady: Promise<CertificateAuthority>;
  private readonly plainAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private readonly tlsAgent: https.Agent;
  private readonly upstreamCa: string[];
  /**
   * HTTP/2 connections to servers, shared by the client connections to the
   * same one (upstream address and port, verified server name): a new
   * client connection does not cost a new upstream handshake. null: the
   * server picked HTTP/1.1.
   */
  private readonly h2Upstreams = new Map<string, Promise<ClientHttp2Session | null>>();
  private closed = false;

  constructor(private readonly options: ProxyOptions) {
    super();
    this.caReady =
      options.ca !== undefined ? Promise.resolve(options.ca) : CertificateAuthority.ephemeral();
    // Made at once: a failure must not surface as an unhandled rejection later.
    this.caReady.catch(() => {});
    this.leaves = this.caReady.then((ca) => new LeafCache(ca, options.leafCacheSize ?? 1000));
    this.leaves.catch(() => {});
    const ca =
      options.upstreamCa === undefined
        ? systemTrust()
        : ([] as string[]).concat(options.upstreamCa);
    this.upstreamCa = ca;
    this.tlsAgent = new https.Agent({ keepAlive: true, maxSockets: 64, ca });
  }

  /** The CA certificate (PEM) the sandbox must trust for interception. */
  async caCertificate(): Promise<string> {
    return (await this.caReady).certificatePem;
  }

  private deny(denial: Denial): void {
    this.options.onDenied?.(denial);
    this.emit('denied', denial);
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }

  /**
   * Handles a connection the sandbox made to `destination` (its original
   * destination, from the supervisor, never from the data). TLS: the
   * ClientHello's server name is checked and the connection spliced to the
   * destination or intercepted; anything else is read as HTTP/1.
   */
  handle(socket: Socket, destination: Destination): void {
    // Each connection holds two of the supervisor's descriptors: bounded, so
    // that a sandbox cannot run its supervisor out of them.
    if (this.closed || this.clients >= (this.options.maxConnections ?? 512)) {
      if (!this.closed) {
        this.deny({
          rule: null,
          reason: 'too many connections at once',
          method: null,
          host: null,
          path: null,
          destination,
        });
      }
      socket.destroy();
      return;
    }
    this.clients++;
    socket.once('close', () => this.clients--);
    socket.setTimeout(this.options.idleTimeout ?? 300_000, () => socket.destroy());
    this.track(socket);
    // Handshakes and responses are written in pieces: Nagle's algorithm with
    // the peer's delayed ACK stalled each new intercepted connection ~40 ms.
    socket.setNoDelay(true);
    const dest: Destination = {
      address: addressText(destination.address),
      port: destination.port,
      ...(destination.upstream !== undefined ? { upstream: destination.upstream } : {}),
    };
    void this.start(socket, dest).catch(() => socket.destroy());
  }

  private async start(socket: Socket, destination: Destination): Promise<void> {
    const timeout = this.options.helloTimeout ?? 10_000;
    const opaque = await this.opaqueName(destination);
    const first = await firstBytes(socket, opaque === null ? timeout : SERVER_FIRST_WAIT);
    if (first === null) {
      // Silent: a protocol whose server speaks first, to an address answered for a name.
      const open = !socket.destroyed && socket.readable;
      if (opaque !== null && open) {
        await this.serverFirst(socket, destination);
        return;
      }
      if (open) {
        this.deny({
          rule: null,
          reason: `nothing sent in ${timeout} ms, and ${destination.address} was not answered by the sandbox's DNS for a name allowed at port ${destination.port}`,
          method: null,
          host: null,
          path: null,
          destination,
        });
      }
      socket.destroy();
      return;
    }
    await this.dispatch(socket, destination, first, opaque);
  }

  /** Serves a connection by its first bytes: TLS, h2c, HTTP/1, or (answered by DNS) anything. */
  private async dispatch(
    socket: Socket,
    destination: Destination,
    first: Buffer,
    opaque: string | null,
  ): Promise<void> {
    const timeout = this.options.helloTimeout ?? 10_000;
    const text = first.subarray(0, 16).toString('latin1');
    if (first[0] === 0x16) await this.startTls(socket, destination, timeout);
    else if (text.startsWith(H2_PREFACE.slice(0, 4)))
      this.serveHttp2(socket, { destination, serverName: null }, []);
    else if (opaque !== null && !HTTP_START.test(text)) this.splice(socket, destination);
    else this.serveHttp1(socket, { destination, serverName: null });
  }

  /**
   * A name the sandbox's DNS answered with the dialled address (its answer
   * not expired) that the rules let reach the port without seeing requests:
   * a connection that is neither TLS nor HTTP is then judged by that answer,
   * and allowed; or the address itself, when an address rule allows it
   * there. Null when there is none (such a connection is read as HTTP, and
   * refused).
   */
  private async opaqueName(destination: Destination): Promise<string | null> {
    // The address itself stands for a name, as for TLS without SNI: an address rule can allow it.
    const names = [...this.options.names.answeredNames(destination.address), destination.address];
    for (const name of names) {
      if (this.options.rules.needsRequests(name, destination.port)) continue;
      if ((await this.refusesName(name, destination)) === null) return name;
    }
    return null;
  }

  /**
   * The client has sent nothing yet: the server is connected, and what it
   * sends (a banner) goes to the client. If the client speaks before the
   * server does, the connection is served by its first bytes after all
   * (TLS and HTTP checked by name), the server connection dropped.
   */
  private async serverFirst(socket: Socket, destination: Destination): Promise<void> {
    const upstream = netConnect({
      host: destination.upstream?.address ?? destination.address,
      port: destination.upstream?.port ?? destination.port,
      noDelay: true,
    });
    this.track(upstream);
    let spoke = false;
    let dropped = false;
    upstream.once('data', () => {
      spoke = true;
    });
    upstream.pipe(socket);
    upstream.once('close', () => {
      if (!dropped) socket.destroy();
    });
    const first = await firstBytes(socket, this.options.idleTimeout ?? 300_000);
    if (first === null || upstream.destroyed) {
      socket.destroy();
      upstream.destroy();
      return;
    }
    if (spoke) {
      const end = () => {
        socket.destroy();
        upstream.destroy();
      };
      pipeline(socket, upstream, end);
      upstream.once('close', end);
      return;
    }
    dropped = true;
    upstream.unpipe(socket);
    upstream.destroy();
    await this.dispatch(socket, destination, first, await this.opaqueName(destination));
  }

  /** Why `host` may not be reached at `destination` by name, or null. */
  private async refusesName(
    host: string,
    destination: Destination,
  ): Promise<{ reason: string; rule: string | null } | null> {
    const { names, rules } = this.options;
    const net = names.netRefuses(host, destination.address, destination.port);
    if (net !== null) return { reason: net, rule: null };
    if (!(await names.hasAddress(host, destination.address))) {
      return {
        reason: `${host} does not name the address dialled (${destination.address})`,
        rule: null,
      };
    }
    const whole = rules.deniesHost(host, destination.port);
    if (whole !== null)
      return {
        reason: `denied by ${whole.flag} '${whole.text}'`,
        rule: `${whole.flag} '${whole.text}'`,
      };
    if (rules.allowsNothingAt(host, destination.port)) {
      return { reason: `no --http-allow rule is about ${host}`, rule: null };
    }
    return null;
  }

  private async startTls(socket: Socket, destination: Destination, timeout: number): Promise<void> {
    let hello: Awaited<ReturnType<typeof readHello>>;
    try {
      hello = await readHello(socket, timeout);
    } catch (error) {
      this.deny({
        rule: null,
        reason: `TLS: ${(error as Error).message}`,
        method: null,
        host: null,
        path: null,
        destination,
      });
      socket.destroy();
      return;
    }
    // No server name: clients send none for an IP address (RFC 6066 §3).
    // The dialled address stands in for it, so only address rules and HTTP
    // rules about that address can allow it.
    const name = hello.serverName ?? destination.address;
    const refused = await this.refusesName(name, destination);
    if (refused !== null) {
      const reason =
        hello.serverName === null
          ? `TLS without a server name (SNI) to ${destination.address}: ${refused.reason}`
          : refused.reason;
      this.deny({ ...refused, reason, method: null, host: name, path: null, destination });
      socket.destroy();
      return;
    }
    if (!this.options.rules.needsRequests(name, destination.port)) {
      this.splice(socket, destination);
      return;
    }
    const leaves = await this.leaves;
    const context = await leaves.context(name);
    // Without SNI the SNICallback is not called: the leaf is the server's own.
    const own = hello.serverName === null ? await leaves.get(name) : null;
    const protocols = ['h2', 'http/1.1'].filter((protocol) => hello.alpn.includes(protocol));
    // A TLS server per connection, fed the socket whose ClientHello was put
    // back: a TLSSocket made by hand over such a socket completes the
    // handshake but HTTP/2 never sees a stream (Node 20); tls.Server's own
    // wrapping works.
    const server = tls.createServer({
      SNICallback: (_servername, callback) => callback(null, context),
      ...(own !== null ? { cert: own.cert, key: own.key } : {}),
      ...(protocols.length > 0 ? { ALPNProtocols: protocols } : {}),
      handshakeTimeout: timeout,
    });
    server.on('tlsClientError', () => socket.destroy());
    server.once('secureConnection', (secure: tls.TLSSocket) => {
      this.track(secure as unknown as Socket);
      // OpenSSL's own reading of the server name must be the one checked.
      const seen = (secure as unknown as { servername?: string | false }).servername;
      const same =
        hello.serverName === null
          ? typeof seen !== 'string'
          : typeof seen === 'string' && seen.toLowerCase().replace(/\.$/, '') === name;
      if (!same) {
        this.deny({
          rule: null,
          reason: 'TLS: the server name changed',
          method: null,
          host: name,
          path: null,
          destination,
        });
        secure.destroy();
        return;
      }
      const connection = { destination, serverName: name };
      // The server is offered what the client offered, and HTTP/1.1, which
      // the proxy translates to (an HTTP/1.1-only server refuses a hello
      // offering h2 alone with no_application_protocol).
      if (secure.alpnProtocol === 'h2')
        this.serveHttp2(secure, connection, [...new Set([...protocols, 'http/1.1'])]);
      else this.serveHttp1(secure as unknown as Socket, connection);
    });
    server.emit('connection', socket);
  }

  private splice(socket: Socket, destination: Destination): void {
    const upstream = netConnect({
      host: destination.upstream?.address ?? destination.address,
      port: destination.upstream?.port ?? destination.port,
      noDelay: true,
    });
    this.track(upstream);
    const end = () => {
      socket.destroy();
      upstream.destroy();
    };
    pipeline(socket, upstream, () => end());
    pipeline(upstream, socket, () => end());
  }

  private serveHttp1(socket: Socket, connection: Connection): void {
    // Nothing a sandbox sends may end the supervisor: a failure ends its request.
    const serve = (req: IncomingMessage, res: ServerResponse, expectContinue: boolean) => {
      this.onHttp1(req, res, connection, expectContinue).catch(() => res.destroy());
    };
    const server = http.createServer({ requireHostHeader: true }, (req, res) =>
      serve(req, res, false),
    );
    server.on('checkContinue', (req, res) => serve(req, res, true));
    const refuseRaw = (req: IncomingMessage, client: Socket, what: string) => {
      this.deny({
        rule: null,
        reason: `${what} is not proxied`,
        method: req.method ?? null,
        host: what === 'CONNECT' ? (req.url ?? null) : (req.headers.host ?? null),
        // A CONNECT's target is an authority, no path.
        path: what === 'CONNECT' ? null : (req.url ?? null),
        destination: connection.destination,
      });
      client.end(
        `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nsandlock: ${what} is not proxied\n`,
      );
    };
    server.on('connect', (req, client) => refuseRaw(req, client as Socket, 'CONNECT'));
    server.on('upgrade', (req, client) => refuseRaw(req, client as Socket, 'a protocol upgrade'));
    server.on('clientError', (error: NodeJS.ErrnoException, client) => {
      // What llhttp refuses (two Content-Lengths, Content-Length with
      // Transfer-Encoding, a bad chunk…) is a request refused too.
      if (error.code?.startsWith('HPE_')) {
        this.deny({
          rule: null,
          reason: `malformed HTTP request (${error.code})`,
          method: null,
          host: null,
          path: null,
          destination: connection.destination,
        });
      }
      if (client.writable) client.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else client.destroy();
    });
    server.emit('connection', socket);
  }

  private onHttp1(
    req: IncomingMessage,
    res: ServerResponse,
    connection: Connection,
    expectContinue: boolean,
  ): Promise<void> {
    const headers: [string, string][] = [];
    for (let index = 0; index < req.rawHeaders.length; index += 2) {
      headers.push([req.rawHeaders[index]!, req.rawHeaders[index + 1]!]);
    }
    const hosts = headers.filter(([name]) => name.toLowerCase() === 'host');
    const has = (name: string) => req.headers[name] !== undefined;
    const respond = (status: number, text: string) => {
      req.resume();
      // An answer already under way (an upstream failing mid-body) cannot become another.
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(status, {
        'content-type': 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    };
    // Two ways to say where a body ends: refused (RFC 9112 §6.3; request smuggling).
    if (has('content-length') && has('transfer-encoding')) {
      this.deny({
        rule: null,
        reason: 'Content-Length and Transfer-Encoding together',
        method: req.method ?? null,
        host: null,
        path: req.url ?? null,
        destination: connection.destination,
      });
      res.setHeader('connection', 'close');
      respond(400, 'sandlock: Content-Length and Transfer-Encoding together\n');
      return Promise.resolve();
    }
    if (hosts.length !== 1) {
      respond(400, 'sandlock: a request has one Host header\n');
      return Promise.resolve();
    }
    let target = req.url ?? '';
    let authority = hosts[0]![1];
    if (/^https?:\/\//i.test(target)) {
      // Absolute form: its authority is the request's (RFC 9112 §3.2.2); it must agree with Host.
      let url: URL;
      try {
        url = new URL(target);
      } catch {
        respond(400, 'sandlock: a request-target that is no URL\n');
        return Promise.resolve();
      }
      if (
        url.host.toLowerCase() !== authority.toLowerCase() ||
        url.username !== '' ||
        url.password !== ''
      ) {
        respond(400, 'sandlock: the request-target names another host than Host\n');
        return Promise.resolve();
      }
      target = `${url.pathname}${url.search}`;
      authority = url.host;
    }
    return this.onRequest(
      { method: req.method ?? 'GET', target, authority, headers, body: req },
      connection,
      {
        refuse: respond,
        proceed: () => {
          if (expectContinue) res.writeContinue();
        },
        respond: (status, responseHeaders, body) => {
          res.writeHead(status, responseHeaders);
          pipeline(body, res, () => {});
        },
      },
    );
  }

  /**
   * Serves an HTTP/2 connection (intercepted TLS, or h2c with prior
   * knowledge): each stream checked on its own, then forwarded on one
   * upstream connection per client connection, HTTP/2 when the server picks
   * h2 from `alpn` (what the client offered), else as HTTP/1.1 requests.
   */
  private serveHttp2(socket: Socket, connection: Connection, alpn: readonly string[]): void {
    const { destination } = connection;
    const host = destination.upstream?.address ?? destination.address;
    const port = destination.upstream?.port ?? destination.port;
    const key = JSON.stringify([host, port, connection.serverName, alpn]);
    const upstreamSession = (): Promise<ClientHttp2Session | null> => {
      const known = this.h2Upstreams.get(key);
      if (known !== undefined) return known;
      const opening = openUpstream({
        host,
        port,
        serverName: connection.serverName,
        alpn,
        ca: this.upstreamCa,
        timeout: this.options.helloTimeout ?? 10_000,
        track: (made) => this.track(made),
      });
      this.h2Upstreams.set(key, opening);
      if (this.h2Upstreams.size > 256) {
        const [oldest, session] = this.h2Upstreams.entries().next().value!;
        this.h2Upstreams.delete(oldest);
        session.then(
          (made) => made?.close(),
          () => {},
        );
      }
      // A session the server sent GOAWAY on, or that ended, takes no new
      // streams: the next request opens another.
      const forget = () => {
        if (this.h2Upstreams.get(key) === opening) this.h2Upstreams.delete(key);
      };
      opening.then((session) => {
        if (session === null) return;
        session.once('goaway', forget);
        session.once('close', forget);
        // Closed when idle: no stream for the idle timeout.
        session.setTimeout(this.options.idleTimeout ?? 300_000, () => session.close());
      }, forget);
      return opening;
    };
    const server = http2.createServer({ maxSessionMemory: 64 });
    server.on('stream', (stream, headers, flags) => {
      stream.on('error', () => stream.destroy());
      // Kept from the start: they may arrive while the stream is being checked.
      let trailers: http2.IncomingHttpHeaders | null = null;
      stream.once('trailers', (got: http2.IncomingHttpHeaders) => {
        trailers = got;
      });
      const method = String(headers[':method'] ?? '');
      const grpc = String(headers['content-type'] ?? '').startsWith('application/grpc');
      const refuse = (status: number, text: string) => {
        if (stream.destroyed || stream.closed) return;
        if (stream.headersSent) {
          stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
          return;
        }
        if (grpc) {
          // A gRPC client reads its error from grpc-status (a trailers-only answer).
          stream.respond(
            {
              ':status': 200,
              'content-type': 'application/grpc',
              'grpc-status': GRPC_STATUS[status] ?? 2,
              'grpc-message': grpcMessage(text.trim()),
            },
            { endStream: true },
          );
        } else {
          stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8' });
          stream.end(text);
        }
        stream.resume();
      };
      if (method === 'CONNECT') {
        this.deny({
          rule: null,
          reason: 'CONNECT is not proxied',
          method,
          host: String(headers[':authority'] ?? ''),
          path: null,
          destination,
        });
        refuse(403, 'sandlock: CONNECT is not proxied\n');
        return;
      }
      const list: [string, string][] = [];
      for (const [name, value] of Object.entries(headers)) {
        if (name.startsWith(':')) continue;
        for (const one of ([] as unknown[]).concat(value)) list.push([name, String(one)]);
      }
      const authorityHeader = headers[':authority'] as string | undefined;
      const hostHeader = headers.host as string | undefined;
      if (
        authorityHeader !== undefined &&
        hostHeader !== undefined &&
        authorityHeader.toLowerCase() !== hostHeader.toLowerCase()
      ) {
        refuse(400, 'sandlock: :authority and Host differ\n');
        return;
      }
      this.onRequest(
        {
          method,
          target: String(headers[':path'] ?? ''),
          authority: authorityHeader ?? hostHeader,
          headers: list.filter(([name]) => name !== 'host'),
          body: stream,
          http2: {
            stream,
            endStream: (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0,
            upstream: upstreamSession,
            trailers: () => trailers,
          },
        },
        connection,
        {
          refuse,
          proceed: () => {},
          respond: (status, responseHeaders, body) => {
            if (stream.destroyed) return;
            const out: Record<string, unknown> = { ':status': status };
            for (const [name, value] of Object.entries(responseHeaders)) {
              if (!HOP_BY_HOP.has(name)) out[name] = value;
            }
            stream.respond(out as http2.OutgoingHttpHeaders);
            pipeline(body, stream, () => {});
          },
        },
      ).catch(() => stream.destroy());
    });
    server.on('sessionError', () => socket.destroy());
    server.emit('connection', socket);
  }

  /**
   * One request: its host must name the dialled address (and be the TLS
   * server name, when intercepted); then the rules; then it is forwarded,
   * re-serialized, to the destination, with credentials added.
   */
  private async onRequest(
    request: Request,
    connection: Connection,
    reply: {
      refuse: (status: number, text: string) => void;
      proceed: () => void;
      respond: (status: number, headers: OutgoingHttpHeaders, body: Readable) => void;
    },
  ): Promise<void> {
    const { destination } = connection;
    const deny = (
      reason: string,
      rule: string | null,
      host: string | null,
      path: string | null,
    ) => {
      this.deny({ rule, reason, method: request.method, host, path, destination });
      reply.refuse(
        403,
        `sandlock: ${request.method} ${host ?? '?'}${path ?? ''} refused: ${reason}\n`,
      );
    };
    const parsed = request.authority === undefined ? null : parseAuthority(request.authority);
    if (parsed === null) {
      deny(`no valid Host (${request.authority ?? 'none'})`, null, null, request.target);
      return;
    }
    const { host } = parsed;
    if (parsed.port !== null && parsed.port !== destination.port) {
      deny(
        `the Host port ${parsed.port} is not the port dialled (${destination.port})`,
        null,
        host,
        request.target,
      );
      return;
    }
    if (connection.serverName !== null && host !== connection.serverName) {
      deny(
        `the Host ${host} is not the TLS server name ${connection.serverName}`,
        null,
        host,
        request.target,
      );
      return;
    }
    const refused = await this.refusesName(host, destination);
    if (refused !== null) {
      deny(refused.reason, refused.rule, host, request.target);
      return;
    }
    const facts: RequestFacts = {
      method: request.method,
      host,
      port: destination.port,
      target: request.target,
    };
    const decision = this.options.rules.decide(facts);
    if (!decision.allowed) {
      deny(
        decision.reason,
        decision.rule === null ? null : `${decision.rule.flag} '${decision.rule.text}'`,
        host,
        request.target.replace(/\?.*$/, ''),
      );
      return;
    }
    reply.proceed();
    const connectionTokens = new Set(
      request.headers
        .filter(([name]) => name.toLowerCase() === 'connection')
        .flatMap(([, value]) => value.split(',').map((token) => token.trim().toLowerCase())),
    );
    const outgoing: [string, string][] = [['host', request.authority!]];
    for (const [name, value] of request.headers) {
      const lower = name.toLowerCase();
      if (lower === 'host' || HOP_BY_HOP.has(lower) || connectionTokens.has(lower)) continue;
      outgoing.push([name, value]);
    }
    // Credentials only where the server proved it is the host: TLS verified for the name.
    const secrets: string[] = [];
    if (connection.serverName !== null) {
      for (const auth of this.options.rules.authFor(facts)) {
        const secret = this.options.secrets?.get(auth.credential);
        if (secret === undefined) continue;
        const [name, value] = authHeader(auth.scheme, secret);
        for (let index = outgoing.length - 1; index >= 0; index--) {
          if (outgoing[index]![0].toLowerCase() === name) outgoing.splice(index, 1);
        }
        outgoing.push([name, value]);
        secrets.push(secret, value);
      }
    }
    const redact = (value: string) =>
      secrets.reduce((text, secret) => text.split(secret).join(REDACTED), value);
    if (request.http2 !== undefined) {
      const { stream } = request.http2;
      let session: ClientHttp2Session | null;
      try {
        session = await request.http2.upstream();
      } catch (error) {
        reply.refuse(
          502,
          `sandlock: ${host}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`,
        );
        return;
      }
      if (session !== null) {
        if (stream.destroyed || stream.closed) return;
        const headers: http2.OutgoingHttpHeaders = {
          ':method': request.method,
          ':scheme': connection.serverName === null ? 'http' : 'https',
          ':authority': request.authority!,
          ':path': request.target,
        };
        for (const [name, value] of outgoing) {
          const lower = name.toLowerCase();
          if (lower === 'host') continue;
          const known = headers[lower];
          headers[lower] =
            known === undefined
              ? value
              : ([] as string[]).concat(known as string | string[], value);
        }
        // `te: trailers` is the one TE HTTP/2 allows (RFC 9113 §8.2.2); gRPC servers require it.
        if (
          request.headers.some(
            ([name, value]) => name.toLowerCase() === 'te' && value.trim() === 'trailers',
          )
        )
          headers.te = 'trailers';
        forwardStream(stream, session, headers, {
          endStream: request.http2.endStream,
          trailers: request.http2.trailers,
          redact,
          onError: (error) =>
            reply.refuse(
              502,
              `sandlock: ${host}: ${(error as NodeJS.ErrnoException).code ?? error.message}\n`,
            ),
        });
        return;
      }
    }
    const flat: string[] = outgoing.flat();
    const options: https.RequestOptions = {
      host: destination.upstream?.address ?? destination.address,
      port: destination.upstream?.port ?? destination.port,
      method: request.method,
      path: request.target,
      headers: flat as unknown as OutgoingHttpHeaders,
      setHost: false,
    };
    const upstream =
      connection.serverName === null
        ? http.request({ ...options, agent: this.plainAgent })
        : https.request({
            ...options,
            agent: this.tlsAgent,
            // An address is verified as one (its certificate's IP SAN), and sent no SNI (RFC 6066 §3).
            servername: isIP(connection.serverName) !== 0 ? '' : connection.serverName,
          });
    upstream.on('response', (response) => {
      const headers: OutgoingHttpHeaders = {};
      for (let index = 0; index < response.rawHeaders.length; index += 2) {
        const name = response.rawHeaders[index]!.toLowerCase();
        if (HOP_BY_HOP.has(name)) continue;
        const value = redact(response.rawHeaders[index + 1]!);
        const known = headers[name];
        headers[name] =
          known === undefined ? value : ([] as string[]).concat(known as string | string[], value);
      }
      reply.respond(response.statusCode ?? 502, headers, response);
    });
    upstream.on('error', (error) => {
      reply.refuse(
        502,
        `sandlock: ${host}: ${(error as NodeJS.ErrnoException).code ?? error.message}\n`,
      );
    });
    pipeline(request.body, upstream, () => {});
  }

  /** Ends every connection and stops taking new ones. */
  async close(): Promise<void> {
    this.closed = true;
    this.h2Upstreams.clear();
    for (const socket of this.sockets) socket.destroy();
    this.plainAgent.destroy();
    this.tlsAgent.destroy();
  }
}
