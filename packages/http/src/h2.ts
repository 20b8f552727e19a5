// HTTP/2 to the server: the upstream session of one client connection, its
// protocol chosen by ALPN as the client offered, and streams forwarded both
// ways with their trailers and resets.
import http2, {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type Http2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import tls from 'node:tls';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR } = http2.constants;

/** Headers HTTP/2 forbids (RFC 9113 §8.2.2), never forwarded; `te` is kept only as `trailers`. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'host',
  'http2-settings',
]);

/** Where the upstream session goes and how its server is verified. */
export interface UpstreamTarget {
  readonly host: string;
  readonly port: number;
  /** The verified TLS server name (a name or an address); null for h2c with prior knowledge. */
  readonly serverName: string | null;
  /** ALPN protocols to offer, as the client offered them (TLS only). */
  readonly alpn: readonly string[];
  readonly ca: readonly string[];
  readonly timeout: number;
  /** Each socket made, so that the proxy can end it on close. */
  readonly track: (socket: Socket) => void;
}

/**
 * Opens the connection of a client's HTTP/2 connection to the server: an
 * HTTP/2 session when the server picks h2 (or for h2c), null when it picks
 * HTTP/1.1 (then requests are translated, as for HTTP/1 clients).
 */
export function openUpstream(target: UpstreamTarget): Promise<ClientHttp2Session | null> {
  return new Promise((resolve, reject) => {
    const { serverName } = target;
    const socket: Socket =
      serverName === null
        ? netConnect({ host: target.host, port: target.port, noDelay: true })
        : tls.connect({
            host: target.host,
            port: target.port,
            ca: [...target.ca],
            ALPNProtocols: [...target.alpn],
            // An address is sent no SNI (RFC 6066 §3) and verified as one (its IP SAN).
            ...(isIP(serverName) !== 0 ? {} : { servername: serverName }),
            checkServerIdentity: (_host, cert) => tls.checkServerIdentity(serverName, cert),
          });
    socket.setNoDelay(true);
    target.track(socket);
    socket.setTimeout(target.timeout, () => socket.destroy(new Error('ETIMEDOUT')));
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.once('error', fail);
    socket.once(serverName === null ? 'connect' : 'secureConnect', () => {
      socket.off('error', fail);
      socket.setTimeout(0);
      const alpn = (socket as tls.TLSSocket).alpnProtocol;
      if (serverName !== null && alpn !== 'h2') {
        socket.destroy();
        resolve(null);
        return;
      }
      const session = http2.connect(
        serverName === null ? `http://${target.host}:${target.port}` : `https://${serverName}`,
        { createConnection: () => socket, maxSessionMemory: 64 },
      );
      session.on('error', () => session.destroy());
      resolve(session);
    });
  });
}

/**
 * The readable side of `from` ended: a stream reset is ended by Node the
 * same way (end of data, then close), so the reset code, when there is one,
 * decides whether `to` ends or is reset with it.
 */
function passEnd(from: Http2Stream, to: Http2Stream): void {
  if (to.destroyed || to.closed) return;
  if (from.rstCode !== undefined && from.rstCode !== NGHTTP2_NO_ERROR) to.close(from.rstCode);
  else to.end();
}

/** Headers to pass on: no pseudo-headers, nothing HTTP/2 forbids, secrets redacted. */
export function passable(
  headers: IncomingHttpHeaders,
  redact: (value: string) => string,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || CONNECTION_SPECIFIC.has(name) || value === undefined) continue;
    if (name === 'te') continue;
    out[name] = Array.isArray(value) ? value.map(redact) : redact(String(value));
  }
  return out;
}

/**
 * One client stream forwarded on the upstream session: the request's
 * headers as checked, bodies both ways with back-pressure (a side is read
 * only as fast as the other takes it, so HTTP/2 flow control holds the
 * sender back), trailers both ways (gRPC's status is in them), and a reset
 * on either side passed to the other with its code.
 */
export function forwardStream(
  client: ServerHttp2Stream,
  session: ClientHttp2Session,
  request: OutgoingHttpHeaders,
  options: {
    readonly endStream: boolean;
    /** The client's trailers, once they came (they may come before this stream is forwarded). */
    readonly trailers: () => IncomingHttpHeaders | null;
    readonly redact: (value: string) => string;
    readonly onError: (error: Error) => void;
  },
): void {
  let upstream: ClientHttp2Stream;
  try {
    upstream = session.request(request, {
      endStream: options.endStream,
      waitForTrailers: !options.endStream,
    });
  } catch (error) {
    // The session is going away (GOAWAY, closed): the caller's next request opens another.
    options.onError(error as Error);
    return;
  }
  let responseTrailers: OutgoingHttpHeaders = {};
  // Asked for once the client's side ended: its trailers, if any, came before.
  upstream.on('wantTrailers', () =>
    upstream.sendTrailers(passable(options.trailers() ?? {}, (value) => value)),
  );
  upstream.on('trailers', (trailers: IncomingHttpHeaders) => {
    responseTrailers = passable(trailers, options.redact);
  });
  let answered = false;
  let failed = false;
  const fail = (error: Error) => {
    if (answered || failed) return;
    failed = true;
    options.onError(error);
  };
  upstream.on('response', (headers: IncomingHttpHeaders, flags: number) => {
    if (client.destroyed || client.closed) return;
    answered = true;
    const status = Number(headers[':status'] ?? 502);
    // Informational answers (100, 103) come as 'headers', not here.
    const out = { ...passable(headers, options.redact), ':status': status };
    // A trailers-only answer (gRPC's errors) stays one.
    if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0) {
      client.respond(out, { endStream: true });
      return;
    }
    client.respond(out, { waitForTrailers: true });
    client.on('wantTrailers', () => client.sendTrailers(responseTrailers));
    upstream.pipe(client, { end: false });
    upstream.once('end', () => passEnd(upstream, client));
  });
  if (!options.endStream) {
    client.pipe(upstream, { end: false });
    client.once('end', () => passEnd(client, upstream));
  }
  // An error is followed by 'close', where the reset is passed on.
  upstream.on('error', fail);
  upstream.on('close', () => {
    if (client.destroyed || client.closed) return;
    if (!answered) fail(new Error(`the server reset the stream (${upstream.rstCode})`));
    else if (upstream.rstCode !== undefined && upstream.rstCode !== NGHTTP2_NO_ERROR)
      client.close(upstream.rstCode);
  });
  client.on('close', () => {
    if (!upstream.destroyed && !upstream.closed) upstream.close(client.rstCode || NGHTTP2_CANCEL);
  });
}
