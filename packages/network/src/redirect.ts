// TCP connects an HTTP rule covers, connected by the reaper to the
// sandbox's HTTP proxy (a loopback listener of the supervisor) instead of
// their destination. The proxy learns the destination the sandbox dialled
// from the connecting socket's own address, which the proxy sees as its
// accepted connection's peer: recorded here once the reaper's connect is
// made, handed to the main thread with the answer (a `defer`), never read
// from the request.
import {
  type Answer,
  answer,
  type DeferredContext,
  type OnBehalf,
} from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import {
  AF_INET,
  AF_INET6,
  close,
  decodeSockaddrIn,
  decodeSockaddrIn6,
  ERRNO,
  encodeSockaddrIn,
  encodeSockaddrIn6,
  trySyscall,
} from '@sandlock/sys';
import type { PendingConnect } from './connect.js';
import { answerConnect, reaperConnect, waitForConnect } from './connect.js';

const { EINPROGRESS, EALREADY } = ERRNO;

export interface Dialled {
  readonly address: string;
  readonly port: number;
}

/** What the main thread is told of a redirected connect: the socket's own address and where it was going. */
export interface RedirectedConnect {
  readonly local: Dialled;
  /** What the sandbox dialled: what names and rules are checked against. */
  readonly destination: Dialled;
  /** Where the proxy forwards to: the same, but for a port of the sandbox's private port space (portRemap) its real port. */
  readonly upstream: Dialled;
}

/** A redirect checked on the main thread: the connect's outcome so far, the caller's wait. */
interface RedirectPayload {
  readonly redirect: RedirectedConnect;
  readonly result: number;
  readonly pending: PendingConnect | null;
}

function plain(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * Whether `destination` is the sandbox's DNS server (port 53 of the address
 * its /etc/resolv.conf names), which the supervisor answers: datagrams go
 * to its socket there, connects to the proxy, whatever the network rules.
 */
export function isSandboxDns(
  policy: ModulePolicy,
  destination: { readonly address: { toString(): string }; readonly port: number | null },
): boolean {
  const dns = policy.httpRedirect?.dns;
  return (
    dns !== undefined &&
    dns !== null &&
    destination.port === 53 &&
    plain(destination.address.toString()) === dns
  );
}

/** Whether a TCP connect to `destination` goes to the sandbox's proxy. */
export function redirected(policy: ModulePolicy, destination: Dialled): boolean {
  const redirect = policy.httpRedirect;
  if (redirect === undefined || redirect === null) return false;
  const address = plain(destination.address);
  if (destination.port === 53 && redirect.dns === address) return true;
  return (
    redirect.covers === 'all' ||
    redirect.covers.some(
      (cover) =>
        (cover.address === null || cover.address === address) &&
        (cover.port === null || cover.port === destination.port),
    )
  );
}

/** The proxy's address for a connect to `destination`, or null when no HTTP rule covers it. */
export function proxyAddressFor(
  policy: ModulePolicy,
  family: number,
  destination: Dialled,
): Buffer | null {
  const redirect = policy.httpRedirect;
  if (redirect === undefined || redirect === null || !redirected(policy, destination)) return null;
  return family === AF_INET
    ? encodeSockaddrIn({ address: '127.0.0.1', port: redirect.port })
    : encodeSockaddrIn6({ address: '::ffff:127.0.0.1', port: redirect.port });
}

/** A TCP destination's sockaddr_in or sockaddr_in6 as an address and port; null for another family. */
export function dialledOf(address: Buffer): Dialled | null {
  if (address.length < 2) return null;
  const family = address.readUInt16LE(0);
  if (family === AF_INET && address.length >= 16) {
    const decoded = decodeSockaddrIn(address);
    return { address: decoded.address, port: decoded.port };
  }
  if (family === AF_INET6 && address.length >= 24) {
    const decoded = decodeSockaddrIn6(address);
    return { address: plain(decoded.address), port: decoded.port };
  }
  return null;
}

function localAddress(fd: number, family: number): Dialled | number {
  const buffer = Buffer.alloc(128);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(buffer.length);
  const result = trySyscall('getsockname', fd, buffer, length);
  if (result < 0) return result;
  const decoded = family === AF_INET ? decodeSockaddrIn(buffer) : decodeSockaddrIn6(buffer);
  return { address: plain(decoded.address), port: decoded.port };
}

/**
 * The reaper connects the caller's socket to the proxy; the answer is
 * always deferred, so that the main thread records the socket's address
 * before the caller goes on (the proxy waits for that record).
 */
export function connectToProxy(
  broker: OnBehalf,
  fd: number,
  family: number,
  proxy: Buffer,
  destination: Dialled,
  upstream: Dialled,
  blocking: boolean,
): Answer {
  const result = reaperConnect(broker, fd, proxy);
  if (result < 0 && result !== -EINPROGRESS && result !== -EALREADY) {
    return answer.fromResult(result);
  }
  const local = localAddress(fd, family);
  if (typeof local === 'number') return answer.fromResult(local);
  const waited = answerConnect(fd, result, blocking);
  let pending: PendingConnect | null = null;
  let outcome = result;
  if (waited.kind === 'defer') pending = waited.payload as PendingConnect;
  else if (waited.kind === 'errno') outcome = -waited.errno;
  else if (waited.kind === 'value') outcome = Number(waited.value);
  if (outcome < 0 && outcome !== -EINPROGRESS && pending === null) return waited;
  return answer.defer({
    redirect: {
      local,
      destination: { address: plain(destination.address), port: destination.port },
      upstream: { address: plain(upstream.address), port: upstream.port },
    },
    result: outcome,
    pending,
  } satisfies RedirectPayload);
}

const REDIRECTS = Symbol.for('sandlock.httpRedirects');

type RedirectListener = (connect: RedirectedConnect) => void;

/**
 * Listeners by session id, on the main thread. A global symbol: the
 * dispatch loader may import this package as a module instance of its own.
 */
function listeners(): Map<number, RedirectListener> {
  const global = globalThis as Record<symbol, unknown>;
  let map = global[REDIRECTS] as Map<number, RedirectListener> | undefined;
  if (map === undefined) {
    map = new Map();
    global[REDIRECTS] = map;
  }
  return map;
}

/** Calls `listener` on the main thread for each connect of session `id` redirected to its proxy; returns the removal. */
export function onRedirectedConnect(id: number, listener: RedirectListener): () => void {
  listeners().set(id, listener);
  return () => {
    if (listeners().get(id) === listener) listeners().delete(id);
  };
}

/** Whether a deferred connect's payload is a redirect's. */
export function isRedirectPayload(payload: unknown): boolean {
  return typeof payload === 'object' && payload !== null && 'redirect' in payload;
}

/** The main thread's part of a redirected connect: the record, then the caller's wait, if any. */
export async function answerRedirected(ctx: DeferredContext): Promise<Answer> {
  const { redirect, result, pending } = ctx.payload as RedirectPayload;
  const listener = listeners().get(ctx.session.id);
  if (listener === undefined) {
    if (pending !== null) close(pending.fd);
    // Nobody to hand the connection to: the proxy would hold it unanswered.
    return answer.errno(ERRNO.ECONNREFUSED);
  }
  listener(redirect);
  if (pending === null) return answer.fromResult(result);
  return waitForConnect(ctx, pending);
}
