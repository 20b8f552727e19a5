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
import type { NetView } from '@sandlock/policy';
import { BUNDLE_PATHS } from './bundle.js';
import { CertificateAuthority, LeafCache } from './ca.js';
import { authHeader } from './credentials.js';
import { forwardStream, openUpstream } from './h2.js';
import { addressRefusal, addressText, type Names, namesMatterAt } from './names.js';
import { classifyOpening, type Opening } from './opening.js';
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
  /**
   * The sandbox whose rules refused it, among nested ones: 0 is the sandbox
   * the proxy belongs to, 1 one started inside it, and so on. A refusal by
   * no rule (a malformed request, CONNECT) is the level of the sandbox that
   * made the connection.
   */
  readonly level: number;
}

/** TCP port ranges (inclusive); null: any port. */
export type PortRanges = readonly { readonly from: number; readonly to: number }[] | null;

/**
 * The rules of a sandbox nested inside the proxy's own (delegated to its
 * supervisor): a request from it must pass these and every level's around
 * it.
 */
export interface Level {
  readonly rules: HttpRules;
  /** Its names (network rules by name, what it may resolve); null: its HTTP rules alone. */
  readonly names: Names | null;
  /** Its address rules, for connections judged by address. */
  readonly net: NetView | null;
  /** The TCP ports its Landlock domain lets it connect to. */
  readonly connectPorts: PortRanges;
  /**
   * The destinations its own rules send to a proxy (`all`, or an address
   * and a port, null for any): for a nested level, its connects beyond
   * `connectPorts` (the proxy judges what its domain would have refused).
   */
  readonly covers?:
    | 'all'
    | readonly { readonly address: string | null; readonly port: number | null }[];
  /** Its own credentials: a nested sandbox never gets those of the sandboxes around it. */
  readonly secrets: ReadonlyMap<string, string>;
  /** Told of refusals by this level's rules and of its own connections' refusals. */
  readonly onDenied?: (denial: Denial) => void;
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
  /**
   * The TCP ports the sandbox's Landlock domain lets it connect to (default:
   * any): a connection that is neither TLS nor HTTP is judged by its
   * address, as the sandbox's own connect would be.
   */
  readonly connectPorts?: PortRanges;
  /** Called for every refusal, those of nested sandboxes' connections too (also emitted as `denied`). */
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

/**
 * Reads a connection's first bytes until they tell the protocol, puts them
 * back; null when it ends, or stays silent or undecided for `timeout` ms.
 */
function opening(
  socket: Socket,
  timeout: number,
): Promise<{ kind: Exclude<Opening, 'more'>; bytes: Buffer } | null> {
  return new Promise((resolve) => {
    let read = Buffer.alloc(0);
    const done = (kind: Exclude<Opening, 'more'> | null) => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('close', onClose);
      socket.off('error', onClose);
      if (read.length > 0 && !socket.destroyed) socket.unshift(read);
      resolve(kind === null ? null : { kind, bytes: read });
    };
    const onReadable = () => {
      for (;;) {
        const chunk = socket.read() as Buffer | null;
        if (chunk === null) return;
        read = Buffer.concat([read, chunk]);
        const kind = classifyOpening(read);
        if (kind !== 'more') {
          done(kind);
          return;
        }
      }
    };
    const onClose = () => done(null);
    const timer = setTimeout(() => done(null), timeout);
    socket.on('readable', onReadable);
    socket.once('close', onClose);
    socket.once('error', onClose);
    onReadable();
  });
}

/** Whether `port` is in `ranges`. */
function portAllowed(ranges: PortRanges, port: number): boolean {
  return ranges === null || ranges.some(({ from, to }) => port >= from && port <= to);
}

/** The words naming a level in a refusal, where there are several. */
function ofLevel(level: number, levels: number): string {
  return levels > 1 ? ` (sandbox level ${level}; 0 is the outermost)` : '';
}

/** What the proxy knows about a connection it handles. */
interface Connection {
  readonly destination: Destination;
  /** The TLS server name, for intercepted TLS; null for plain HTTP. */
  readonly serverName: string | null;
  /** The rules it is held to: the proxy's own sandbox's first, the sandbox that made it last. */
  readonly levels: readonly Level[];
}

/** A refusal by one level's rules. */
interface Refusal {
  readonly reason: string;
  readonly rule: string | null;
  readonly level: number;
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

/** How long a connection that may be judged by its address or a DNS answer waits for the client to speak first, in ms. */
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

  /** The proxy's own sandbox as a level. */
  private get own(): Level {
    return {
      rules: this.options.rules,
      names: this.options.names,
      net: this.options.names.net,
      connectPorts: this.options.connectPorts ?? null,
      secrets: this.options.secrets ?? new Map(),
    };
  }

  private deny(denial: Omit<Denial, 'level'> & { level?: number }, levels: readonly Level[]): void {
    const full: Denial = { ...denial, level: denial.level ?? levels.length - 1 };
    this.options.onDenied?.(full);
    this.emit('denied', full);
    if (full.level > 0) levels[full.level]?.onDenied?.(full);
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
   * destination or intercepted; HTTP/1 is checked request by request;
   * another protocol is judged by its address. `nested`: the rules of the
   * sandboxes, nested in the proxy's own, that the connection came from
   * (outermost first).
   */
  handle(socket: Socket, destination: Destination, nested: readonly Level[] = []): void {
    const levels = [this.own, ...nested];
    // Each connection holds two of the supervisor's descriptors: bounded, so
    // that a sandbox cannot run its supervisor out of them.
    if (this.closed || this.clients >= (this.options.maxConnections ?? 512)) {
      if (!this.closed) {
        this.deny(
          {
            rule: null,
            reason: 'too many connections at once',
            method: null,
            host: null,
            path: null,
            destination,
          },
          levels,
        );
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
    void this.start(socket, dest, levels).catch(() => socket.destroy());
  }

  /**
   * Why the address rules (and Landlock's connect ports) of some level
   * refuse `destination` judged by its address alone, or null: what a
   * connect outside the proxy would be held to.
   */
  private addressRefuses(destination: Destination, levels: readonly Level[]): Refusal | null {
    for (const [level, { net, connectPorts }] of levels.entries()) {
      if (!portAllowed(connectPorts, destination.port)) {
        return {
          reason: `the sandbox may connect to no TCP port ${destination.port} but through HTTP rules${ofLevel(level, levels.length)}`,
          rule: null,
          level,
        };
      }
      const refused = addressRefusal(net, destination.address, destination.port);
      if (refused !== null) {
        return { reason: `${refused}${ofLevel(level, levels.length)}`, rule: null, level };
      }
    }
    return null;
  }

  /**
   * A nested level whose Landlock domain would have refused the connect:
   * its connects are made by the outer sandbox's reaper, which the
   * destinations module lets reach the proxy (the port dialled is this
   * check's); allowed at its connect ports, or where its own rules would
   * have sent it to a proxy.
   */
  private portRefuses(destination: Destination, levels: readonly Level[]): Refusal | null {
    for (const [level, { connectPorts, covers }] of levels.entries()) {
      if (level === 0 || portAllowed(connectPorts, destination.port)) continue;
      const own =
        covers === 'all' ||
        (covers ?? []).some(
          (cover) =>
            (cover.address === null || cover.address === destination.address) &&
            (cover.port === null || cover.port === destination.port),
        );
      if (own) continue;
      return {
        reason: `the sandbox may connect to no TCP port ${destination.port}${ofLevel(level, levels.length)}`,
        rule: null,
        level,
      };
    }
    return null;
  }

  private async start(
    socket: Socket,
    destination: Destination,
    levels: readonly Level[],
  ): Promise<void> {
    const timeout = this.options.helloTimeout ?? 10_000;
    const byAddress = this.addressRefuses(destination, levels);
    const refuse = (refusal: Refusal, what: string) => {
      this.deny(
        {
          ...refusal,
          reason: `${what}: ${refusal.reason}`,
          method: null,
          host: null,
          path: null,
          destination,
        },
        levels,
      );
      socket.destroy();
    };
    const byPort = this.portRefuses(destination, levels);
    if (byPort !== null) {
      refuse(byPort, 'a connection');
      return;
    }
    // No HTTP rule and no wildcard rule can be about this port (it came
    // here for another port of the address): its address decides, at once,
    // whatever the protocol (one whose server speaks first included).
    const byName = levels.some(
      ({ rules, net }) =>
        rules.mentionsPort(destination.port) || namesMatterAt(net, destination.port),
    );
    if (!byName) {
      if (byAddress !== null) refuse(byAddress, 'a connection judged by its address');
      else this.splice(socket, destination);
      return;
    }
    // What a connection that is neither TLS nor HTTP may be judged by: its
    // address, or a name the sandbox's DNS answered with it.
    const opaque =
      byAddress === null ? destination.address : await this.opaqueName(destination, levels);
    let opened = await opening(socket, opaque !== null ? SERVER_FIRST_WAIT : timeout);
    let early: Socket | null = null;
    const relay = (chunk: Buffer) => socket.write(chunk);
    const ended = () => socket.end();
    if (opened === null && opaque !== null && !socket.destroyed && !socket.readableEnded) {
      // Silent: perhaps a protocol whose server speaks first, which the
      // address (or the DNS answer) allows. The server is connected and
      // what it says relayed; what the client sends first still decides
      // what is forwarded.
      early = this.connectUpstream(destination);
      early.on('data', relay);
      early.once('close', ended);
      opened = await opening(socket, this.options.idleTimeout ?? 300_000);
    }
    /** The early connection, no longer relayed; ended too unless it is kept. */
    const release = (keep: boolean) => {
      if (early === null) return;
      early.off('data', relay);
      early.off('close', ended);
      if (!keep) early.destroy();
    };
    if (opened === null) {
      release(false);
      if (!socket.destroyed && opaque === null) {
        this.deny(
          {
            rule: null,
            reason: `nothing sent in ${timeout} ms, and ${destination.address} was not answered by the sandbox's DNS for a name allowed at port ${destination.port}`,
            method: null,
            host: null,
            path: null,
            destination,
          },
          levels,
        );
      }
      socket.destroy();
      return;
    }
    if (opened.kind === 'tls') {
      release(false);
      await this.startTls(socket, destination, timeout, levels);
    } else if (
      opened.kind === 'http' &&
      opened.bytes.toString('latin1').startsWith(H2_PREFACE.slice(0, 4))
    ) {
      release(false);
      this.serveHttp2(socket, { destination, serverName: null, levels }, []);
    } else if (opened.kind === 'http') {
      release(false);
      this.serveHttp1(socket, { destination, serverName: null, levels });
    } else if (opaque === null && byAddress !== null) {
      release(false);
      refuse(byAddress, 'neither TLS nor HTTP, judged by its address');
    } else {
      release(true);
      this.splice(socket, destination, early ?? undefined);
    }
  }

  /**
   * A name the sandbox's DNS answered with the dialled address (its answer
   * not expired) that every level lets reach the port without seeing
   * requests: a connection that is neither TLS nor HTTP is then judged by
   * that answer, and allowed. Null when there is none.
   */
  private async opaqueName(
    destination: Destination,
    levels: readonly Level[],
  ): Promise<string | null> {
    const answered = new Set(
      levels.flatMap(({ names }) => names?.answeredNames(destination.address) ?? []),
    );
    for (const name of answered) {
      if (levels.some(({ rules }) => rules.needsRequests(name, destination.port))) continue;
      if ((await this.refusesName(name, destination, levels)) === null) return name;
    }
    return null;
  }

  /** Why `host` may not be reached at `destination` by name, or null: every level asked. */
  private async refusesName(
    host: string,
    destination: Destination,
    levels: readonly Level[],
  ): Promise<Refusal | null> {
    for (const [level, { names, rules }] of levels.entries()) {
      const at = ofLevel(level, levels.length);
      if (names !== null) {
        const net = names.netRefuses(host, destination.address, destination.port);
        if (net !== null) return { reason: `${net}${at}`, rule: null, level };
        if (!(await names.hasAddress(host, destination.address))) {
          return {
            reason: `${host} does not name the address dialled (${destination.address})${at}`,
            rule: null,
            level,
          };
        }
      }
      const whole = rules.deniesHost(host, destination.port);
      if (whole !== null)
        return {
          reason: `denied by ${whole.flag} '${whole.text}'${at}`,
          rule: `${whole.flag} '${whole.text}'`,
          level,
        };
      if (rules.allowsNothingAt(host, destination.port)) {
        return { reason: `no --http-allow rule is about ${host}${at}`, rule: null, level };
      }
    }
    return null;
  }

  private async startTls(
    socket: Socket,
    destination: Destination,
    timeout: number,
    levels: readonly Level[],
  ): Promise<void> {
    let hello: Awaited<ReturnType<typeof readHello>>;
    try {
      hello = await readHello(socket, timeout);
    } catch (error) {
      this.deny(
        {
          rule: null,
          reason: `TLS: ${(error as Error).message}`,
          method: null,
          host: null,
          path: null,
          destination,
        },
        levels,
      );
      socket.destroy();
      return;
    }
    // No server name: clients send none for an IP address (RFC 6066 §3).
    // The dialled address stands in for it, so only address rules and HTTP
    // rules about that address can allow it.
    const name = hello.serverName ?? destination.address;
    const refused = await this.refusesName(name, destination, levels);
    if (refused !== null) {
      const reason =
        hello.serverName === null
          ? `TLS without a server name (SNI) to ${destination.address}: ${refused.reason}`
          : refused.reason;
      this.deny({ ...refused, reason, method: null, host: name, path: null, destination }, levels);
      socket.destroy();
      return;
    }
    if (!levels.some(({ rules }) => rules.needsRequests(name, destination.port))) {
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
        this.deny(
          {
            rule: null,
            reason: 'TLS: the server name changed',
            method: null,
            host: name,
            path: null,
            destination,
          },
          levels,
        );
        secure.destroy();
        return;
      }
      const connection = { destination, serverName: name, levels };
      // The server is offered what the client offered, and HTTP/1.1, which
      // the proxy translates to (an HTTP/1.1-only server refuses a hello
      // offering h2 alone with no_application_protocol).
      if (secure.alpnProtocol === 'h2')
        this.serveHttp2(secure, connection, [...new Set([...protocols, 'http/1.1'])]);
      else this.serveHttp1(secure as unknown as Socket, connection);
    });
    server.emit('connection', socket);
  }

  private connectUpstream(destination: Destination): Socket {
    const upstream = netConnect({
      host: destination.upstream?.address ?? destination.address,
      port: destination.upstream?.port ?? destination.port,
      noDelay: true,
    });
    this.track(upstream);
    return upstream;
  }

  private splice(socket: Socket, destination: Destination, connected?: Socket): void {
    const upstream = connected ?? this.connectUpstream(destination);
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
      this.deny(
        {
          rule: null,
          reason: `${what} is not proxied`,
          method: req.method ?? null,
          host: what === 'CONNECT' ? (req.url ?? null) : (req.headers.host ?? null),
          // A CONNECT's target is an authority, no path.
          path: what === 'CONNECT' ? null : (req.url ?? null),
          destination: connection.destination,
        },
        connection.levels,
      );
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
        this.deny(
          {
            rule: null,
            reason: `malformed HTTP request (${error.code})`,
            method: null,
            host: null,
            path: null,
            destination: connection.destination,
          },
          connection.levels,
        );
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
      this.deny(
        {
          rule: null,
          reason: 'Content-Length and Transfer-Encoding together',
          method: req.method ?? null,
          host: null,
          path: req.url ?? null,
          destination: connection.destination,
        },
        connection.levels,
      );
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
        this.deny(
          {
            rule: null,
            reason: 'CONNECT is not proxied',
            method,
            host: String(headers[':authority'] ?? ''),
            path: null,
            destination,
          },
          connection.levels,
        );
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
    const { destination, levels } = connection;
    const deny = (
      reason: string,
      rule: string | null,
      host: string | null,
      path: string | null,
      level?: number,
    ) => {
      this.deny({ rule, reason, method: request.method, host, path, destination, level }, levels);
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
    const refused = await this.refusesName(host, destination, levels);
    if (refused !== null) {
      deny(refused.reason, refused.rule, host, request.target, refused.level);
      return;
    }
    const facts: RequestFacts = {
      method: request.method,
      host,
      port: destination.port,
      target: request.target,
    };
    // Every level must allow it: a deny of any level wins.
    for (const [level, { rules }] of levels.entries()) {
      const decision = rules.decide(facts);
      if (decision.allowed) continue;
      deny(
        `${decision.reason}${ofLevel(level, levels.length)}`,
        decision.rule === null ? null : `${decision.rule.flag} '${decision.rule.text}'`,
        host,
        request.target.replace(/\?.*$/, ''),
        level,
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
    // Credentials only where the server proved it is the host: TLS verified
    // for the name; those of the sandbox that made the request only.
    const secrets: string[] = [];
    const maker = levels[levels.length - 1]!;
    if (connection.serverName !== null) {
      for (const auth of maker.rules.authFor(facts)) {
        const secret = maker.secrets.get(auth.credential);
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
