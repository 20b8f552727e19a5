// A sandbox's HTTP proxy (@sandlock/http) in the supervisor's process: a
// listener on a loopback port, to which the reaper connects the sandbox's
// connects an HTTP rule covers (@sandlock/network's redirect). Each accepted
// connection is handed to the proxy with the destination the sandbox
// dialled, recorded when the reaper's connect was made and keyed by the
// sandbox socket's own address (the accepted connection's peer).
import { randomInt } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { existsSync, realpathSync } from 'node:fs';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import {
  BUNDLE_PATHS,
  BUNDLE_VARIABLES,
  type Denial,
  type Destination,
  HttpRules,
  type HttpSetup,
  httpSetup,
  type Level,
  NameChain,
  Names,
  readCredentials,
  SandboxDns,
} from '@sandlock/http';
import { onRedirectedConnect, type RedirectedConnect } from '@sandlock/network';
import {
  connectPortsOf,
  expandPresets,
  type HttpRedirect,
  type HttpRule,
  isWildcardHost,
  type ModulePolicy,
  netRulesOf,
  parseHttpAuth,
  parseHttpRule,
  policyReads,
} from '@sandlock/policy';
import { SandboxError } from './errors.js';
import type { Policy } from './policy.js';

/** How long an accepted connection waits for its record (the reaper's connect answered on this thread). */
const RECORD_WAIT_MS = 10_000;
const RESOLV_CONF = '/etc/resolv.conf';
/** A wildcard rule's port range wider than this sends every TCP connect to the proxy. */
const MAX_COVERED_PORTS = 1024;
/** Tries at an address for the sandbox's DNS before it is answered over TCP only. */
const DNS_BIND_TRIES = 8;

export interface SandboxHttp {
  readonly redirect: HttpRedirect;
  /** The trust bundles with the CA and /etc/resolv.conf naming the sandbox's DNS, by path (both the path opened and the file's real path). */
  readonly trustBundles: Record<string, string>;
  readonly setup: HttpSetup;
  /** Takes the redirected connects of session `id`. */
  attach(id: number): void;
  /** Stops listening and ends the proxy's connections. */
  close(): Promise<void>;
}

/** Whether the policy has what the proxy enforces: HTTP rules, credentials to add. */
export function hasHttpRules(
  policy: Pick<Policy, 'httpAllow' | 'httpDeny' | 'httpAuth' | 'credentials'>,
): boolean {
  return (
    policy.httpAllow.length > 0 ||
    policy.httpDeny.length > 0 ||
    policy.httpAuth.length > 0 ||
    Object.keys(policy.credentials).length > 0
  );
}

/** The wildcard rules of netAllow/netDeny that TCP can match (`*.npmjs.org:443`). */
function wildcardRules(policy: Pick<Policy, 'netAllow' | 'netDeny'>) {
  return (netRulesOf(policy)?.rules ?? []).filter(
    (rule) => rule.host !== null && isWildcardHost(rule.host) && rule.protocols.includes('tcp'),
  );
}

/**
 * The wildcard rules whose ports go to the proxy: those of netAllow, and
 * those of netDeny that name ports. A wildcard of netDeny without ports is
 * held by the sandbox's DNS and by address (resolve.ts of @sandlock/network),
 * and sends no connect to the proxy: other TCP goes direct.
 */
function redirectingWildcards(policy: Pick<Policy, 'netAllow' | 'netDeny'>) {
  const deny = netRulesOf(policy)?.mode === 'deny';
  return wildcardRules(policy).filter((rule) => !deny || rule.ports !== null);
}

/**
 * Whether the sandbox needs the proxy: HTTP rules or credentials, or
 * network rules with wildcard names, which only the proxy can match.
 */
export function needsProxy(
  policy: Pick<
    Policy,
    'httpAllow' | 'httpDeny' | 'httpAuth' | 'credentials' | 'netAllow' | 'netDeny'
  >,
): boolean {
  return hasHttpRules(policy) || wildcardRules(policy).length > 0;
}

/**
 * For a sandbox started inside a supervised one: the secrets of its
 * credentials, read here (its launcher holds them, the outer supervisor
 * may not), for the outer's proxy to add to its requests. The variables
 * holding them are removed from `env`, and the trust bundle variables set
 * (the outer's proxy intercepts with the outer's CA, which the bundles
 * served to it hold).
 *
 * @throws SandboxError naming the credential that cannot be read.
 */
export function nestedCredentials(
  policy: Policy,
  env: Record<string, string | undefined>,
): Record<string, string> {
  let read: ReturnType<typeof readCredentials>;
  try {
    read = readCredentials(policy, (path) => policyReads(policy, path));
  } catch (error) {
    throw new SandboxError(`sandlock: ${(error as Error).message}`, 'http policy');
  }
  for (const name of read.variables) delete env[name];
  const primary = BUNDLE_PATHS.find((path) => existsSync(path));
  if (primary !== undefined) for (const name of BUNDLE_VARIABLES) env[name] = primary;
  return Object.fromEntries(read.secrets);
}

/** The HTTP rules of the policy, those of httpAuth included. */
function rulesOf(policy: Policy): HttpRule[] {
  const rules: HttpRule[] = [];
  for (const text of [...policy.httpAllow, ...policy.httpDeny]) {
    const rule = parseHttpRule(text);
    if (typeof rule === 'string') throw new SandboxError(rule, 'http policy');
    rules.push(rule);
  }
  for (const text of policy.httpAuth) {
    const auth = parseHttpAuth(text);
    if (typeof auth === 'string') throw new SandboxError(auth, 'http policy');
    rules.push(auth.rule);
  }
  return rules;
}

/**
 * The trust bundles the sandbox reads, by the path it opens and the path
 * the file really is at (a symlink on some systems).
 */
function bundleFiles(files: ReadonlyMap<string, string>): Record<string, string> {
  const byPath: Record<string, string> = {};
  for (const [path, content] of files) {
    byPath[path] = content;
    try {
      byPath[realpathSync(path)] = content;
    } catch {
      // Not on this host: served at the path named.
    }
  }
  return byPath;
}

/**
 * The destinations that go to the proxy: the addresses of the hosts HTTP
 * rules name, at the rule's port or any; every destination when a rule's
 * host is a wildcard (its addresses are not known in advance).
 */
async function coveredDestinations(policy: Policy): Promise<HttpRedirect['covers']> {
  const covers: { address: string | null; port: number | null }[] = [];
  // A wildcard network rule: any address at its ports (the proxy matches the name).
  for (const rule of redirectingWildcards(policy)) {
    if (rule.ports === null) return 'all';
    for (const { from, to } of rule.ports) {
      if (to - from >= MAX_COVERED_PORTS) return 'all';
      for (let port = from; port <= to; port++) covers.push({ address: null, port });
    }
  }
  for (const rule of rulesOf(policy)) {
    if (rule.host === '*' || rule.host.startsWith('*.')) {
      // Any address: at the rule's port only, when it names one.
      if (rule.port === null) return 'all';
      covers.push({ address: null, port: rule.port });
      continue;
    }
    if (isIP(rule.host) !== 0) {
      covers.push({ address: rule.host, port: rule.port });
      continue;
    }
    let found: { address: string }[];
    try {
      found = await lookup(rule.host, { all: true, verbatim: true });
    } catch (error) {
      throw new SandboxError(
        `sandlock: cannot resolve ${rule.host} of an HTTP rule: ${(error as Error).message}`,
        'http policy',
      );
    }
    for (const { address } of found) covers.push({ address, port: rule.port });
  }
  return covers;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('no port'));
      else resolve(address.port);
    });
  });
}

/**
 * The sandbox's DNS server: a UDP socket on port 53 of an address of
 * 127.0.0.0/8 no one else uses (loopback answers the whole range, Linux
 * needs no configuration for it), so that replies come from the address
 * resolv.conf names (glibc and c-ares drop others). Port 53 needs
 * CAP_NET_BIND_SERVICE: without it, or with the port taken on every
 * address tried, null, and resolv.conf asks for TCP (`options use-vc`),
 * which the proxy answers.
 */
async function bindDns(): Promise<{ address: string; socket: UdpSocket | null }> {
  let address = '';
  for (let attempt = 0; attempt < DNS_BIND_TRIES; attempt++) {
    address = `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
    const socket = createSocket({ type: 'udp4' });
    const bound = await new Promise<boolean>((resolve) => {
      socket.once('error', () => resolve(false));
      socket.bind({ address, port: 53, exclusive: true }, () => resolve(true));
    });
    if (bound) return { address, socket };
    socket.close();
  }
  return { address, socket: null };
}

/** /etc/resolv.conf of the sandbox: its DNS alone. */
function resolvConf(address: string, udp: boolean): string {
  return `# sandlock: names the sandbox's rules allow, answered by its supervisor\nnameserver ${address}\n${udp ? '' : 'options use-vc\n'}`;
}

/** Where a redirected connection goes: the rules of the nested sandboxes it came from, and their DNS. */
interface Route {
  /** The levels nested in the proxy's own sandbox, outermost first (none for its own connects). */
  readonly nested: readonly Level[];
  /** The DNS of the sandbox that connects: its address, and what answers there. */
  readonly dns: { readonly address: string; readonly answer: SandboxDns };
}

/** A running proxy, as the sandboxes delegated inside its sandbox use it. */
interface Registered {
  readonly record: (connect: RedirectedConnect, route: Route) => void;
  readonly route: Route;
  readonly redirect: HttpRedirect;
  readonly trustBundles: Record<string, string>;
  /** The names of every level of the route, the proxy's own first. */
  readonly names: readonly Names[];
}

/** The running proxies by session id: a sandbox delegated inside one uses it too. */
const bySession = new Map<number, Registered>();

/** The HTTP side of a sandbox delegated inside one with a proxy: its view, and its attachment. */
export interface NestedHttp {
  readonly httpRedirect: HttpRedirect;
  readonly trustBundles: Record<string, string>;
  /** Hands the redirected connects of session `inner` to the outer proxy, with this level's rules. */
  attach(inner: number): void;
  /** Releases what the level holds (its DNS socket); detaches it. */
  close(): void;
}

/** Every destination either covers. */
function unionCovers(a: HttpRedirect['covers'], b: HttpRedirect['covers']): HttpRedirect['covers'] {
  return a === 'all' || b === 'all' ? 'all' : [...a, ...b];
}

/**
 * The HTTP side of a sandbox delegated inside session `outer`: null when the
 * outer sandbox has no proxy and this one needs none. Its HTTP rules,
 * wildcard rules and credentials (`secrets`, read by its own launcher: it
 * never gets the outer's) are a level of the outer's proxy: its requests
 * must pass them and every level's around it. Its HTTPS is intercepted with
 * the outer's CA, which its trust bundles hold already; it gets a DNS of
 * its own, answering what every level lets it resolve.
 *
 * @throws Error saying why it cannot be served.
 */
export async function nestedHttp(
  outer: number,
  policy: Policy,
  view: ModulePolicy,
  secrets: ReadonlyMap<string, string>,
): Promise<NestedHttp | null> {
  const registered = bySession.get(outer);
  const own = needsProxy(policy);
  if (registered === undefined) {
    if (!own) return null;
    throw new Error(
      'its HTTP rules, credentials or wildcard network rules need the HTTP proxy of the sandbox around it, which has none: give the outer sandbox an HTTP or wildcard rule too',
    );
  }
  if (own && (policy.httpCa !== null || policy.httpKey !== null)) {
    throw new Error(
      'httpCa/httpKey: a nested sandbox is intercepted with the CA of the sandbox around it, which its trust bundles hold',
    );
  }
  for (const name of Object.keys(policy.credentials)) {
    if (!secrets.has(name)) throw new Error(`its launcher sent no secret for credential ${name}`);
  }
  const rules = new HttpRules(policy);
  const names = own ? new Names({ net: view.net, http: rules }) : null;
  const ownCovers = own ? await coveredDestinations(policy) : [];
  const level: Level = {
    rules,
    names,
    net: view.net,
    connectPorts: connectPortsOf(expandPresets(policy)),
    covers: ownCovers,
    secrets: own ? new Map([...secrets].filter(([name]) => name in policy.credentials)) : new Map(),
  };
  let dns = registered.route.dns;
  let socket: UdpSocket | null = null;
  let redirect = registered.redirect;
  let trustBundles = registered.trustBundles;
  if (names !== null) {
    const bound = await bindDns();
    socket = bound.socket;
    socket?.on('error', () => {});
    const answer = new SandboxDns(new NameChain([...registered.names, names]));
    if (socket !== null) answer.serveUdp(socket);
    dns = { address: bound.address, answer };
    redirect = {
      ...redirect,
      covers: unionCovers(redirect.covers, ownCovers),
      dns: bound.address,
    };
    trustBundles = {
      ...trustBundles,
      ...bundleFiles(new Map([[RESOLV_CONF, resolvConf(bound.address, socket !== null)]])),
    };
  }
  const route: Route = { nested: [...registered.route.nested, level], dns };
  let attached: number | null = null;
  return {
    httpRedirect: redirect,
    trustBundles,
    attach(inner) {
      attached = inner;
      bySession.set(inner, {
        ...registered,
        route,
        redirect,
        trustBundles,
        names: names === null ? registered.names : [...registered.names, names],
      });
      const detach = onRedirectedConnect(inner, (connect) => registered.record(connect, route));
      nestedDetaches.set(inner, () => {
        detach();
        bySession.delete(inner);
        socket?.close();
        socket = null;
      });
    },
    close() {
      if (attached !== null) detachNestedHttp(attached);
      socket?.close();
      socket = null;
    },
  };
}
const nestedDetaches = new Map<number, () => void>();

/** Stops handing the redirected connects of `inner` to a proxy (it has ended). */
export function detachNestedHttp(inner: number): void {
  nestedDetaches.get(inner)?.();
  nestedDetaches.delete(inner);
}

const keyOf = (address: string, port: number) =>
  `${address.startsWith('::ffff:') ? address.slice(7) : address}:${port}`;

/** The proxy of a sandbox with HTTP rules, listening; null without them. */
export async function startHttp(
  policy: Policy,
  view: ModulePolicy,
  onDenied: (denial: Denial) => void,
): Promise<SandboxHttp | null> {
  if (!needsProxy(policy)) return null;
  const covers = await coveredDestinations(policy);
  const setup = await httpSetup(policy, view.net, {
    readable: (path) => policyReads(policy, path),
    onDenied,
    connectPorts: connectPortsOf(expandPresets(policy)),
  });
  // Records not yet claimed by an accepted connection, and connections waiting for theirs.
  const dns = await bindDns();
  dns.socket?.on('error', () => {});
  if (dns.socket !== null) setup.dns.serveUdp(dns.socket);
  const ownRoute: Route = { nested: [], dns: { address: dns.address, answer: setup.dns } };
  const serve = (socket: Socket, destination: Destination, route: Route) => {
    if (destination.address === route.dns.address && destination.port === 53) {
      route.dns.answer.serveTcp(socket);
      return;
    }
    setup.proxy.handle(socket, destination, route.nested);
  };
  const records = new Map<
    string,
    { destination: Destination; route: Route; expiry: NodeJS.Timeout }
  >();
  const waiting = new Map<string, (destination: Destination, route: Route) => void>();
  const server = createServer({ noDelay: true }, (socket: Socket) => {
    const key = keyOf(socket.remoteAddress ?? '', socket.remotePort ?? 0);
    const record = records.get(key);
    if (record !== undefined) {
      records.delete(key);
      clearTimeout(record.expiry);
      serve(socket, record.destination, record.route);
      return;
    }
    // Not made by the reaper for a redirected connect (or its record is late).
    const timer = setTimeout(() => {
      waiting.delete(key);
      socket.destroy();
    }, RECORD_WAIT_MS);
    socket.on('error', () => {});
    waiting.set(key, (destination, route) => {
      clearTimeout(timer);
      serve(socket, destination, route);
    });
  });
  let port: number;
  try {
    port = await listen(server);
  } catch (error) {
    dns.socket?.close();
    await setup.proxy.close();
    throw new SandboxError(
      `sandlock: the HTTP proxy cannot listen: ${(error as Error).message}`,
      'http proxy',
    );
  }
  let detach: (() => void) | null = null;
  const record = ({ local, destination: dialled, upstream }: RedirectedConnect, route: Route) => {
    const key = keyOf(local.address, local.port);
    const destination: Destination =
      upstream.address === dialled.address && upstream.port === dialled.port
        ? dialled
        : { ...dialled, upstream };
    const waiter = waiting.get(key);
    if (waiter !== undefined) {
      waiting.delete(key);
      waiter(destination, route);
      return;
    }
    const previous = records.get(key);
    if (previous !== undefined) clearTimeout(previous.expiry);
    const expiry = setTimeout(() => records.delete(key), RECORD_WAIT_MS);
    expiry.unref();
    records.set(key, { destination, route, expiry });
  };
  let attached: number | null = null;
  const served = new Map(setup.bundle.files);
  served.set(RESOLV_CONF, resolvConf(dns.address, dns.socket !== null));
  const redirect: HttpRedirect = { port, covers, dns: dns.address };
  const trustBundles = bundleFiles(served);
  return {
    redirect,
    trustBundles,
    setup,
    attach(id) {
      detach = onRedirectedConnect(id, (connect) => record(connect, ownRoute));
      attached = id;
      bySession.set(id, { record, route: ownRoute, redirect, trustBundles, names: [setup.names] });
    },
    async close() {
      detach?.();
      if (attached !== null) {
        bySession.delete(attached);
        for (const [inner, registered] of bySession) {
          if (registered.record === record) detachNestedHttp(inner);
        }
      }
      dns.socket?.close();
      for (const { expiry } of records.values()) clearTimeout(expiry);
      records.clear();
      server.close();
      await setup.proxy.close();
    },
  };
}
