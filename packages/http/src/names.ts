// Which names the sandbox may reach and resolve, and what addresses they have.
import { lookup } from 'node:dns/promises';
import { hostMatches, isWildcardHost, type NetRule, type NetView } from '@sandlock/policy';
import ipaddr from 'ipaddr.js';
import type { HttpRules } from './rules.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** An address as rules compare it: an IPv4-mapped IPv6 address as its IPv4 address. */
export function parseAddress(text: string): Address | null {
  if (!ipaddr.isValid(text)) return null;
  const address = ipaddr.parse(text);
  return address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()
    ? (address as ipaddr.IPv6).toIPv4Address()
    : address;
}

/** The address in the form the rules and the answers use (`::ffff:1.2.3.4` as `1.2.3.4`). */
export function addressText(text: string): string {
  return parseAddress(text)?.toString() ?? text;
}

/** Ranges a name may resolve to only when a rule names the address (or the exact name). */
const SPECIAL = new Set([
  'unspecified',
  'broadcast',
  'multicast',
  'linkLocal',
  'loopback',
  'carrierGradeNat',
  'private',
  'reserved',
  'uniqueLocal',
  'ipv4Mapped',
  'rfc6145',
  'rfc6052',
  '6to4',
  'teredo',
]);

/** Loopback, link-local (169.254.169.254, the cloud metadata address), private, … */
export function isSpecialAddress(text: string): boolean {
  const address = parseAddress(text);
  return address === null || SPECIAL.has(address.range());
}

function inRule(rule: NetRule, address: Address): boolean {
  if (rule.network === null) return false;
  const range = parseAddress(rule.network.address);
  if (range === null || range.kind() !== address.kind()) return false;
  const prefix =
    rule.network.address.includes(':') && range.kind() === 'ipv4'
      ? rule.network.prefix - 96
      : rule.network.prefix;
  return address.match(range, prefix);
}

function portIn(rule: NetRule, port: number | null): boolean {
  return (
    port === null ||
    rule.ports === null ||
    rule.ports.some(({ from, to }) => port >= from && port <= to)
  );
}

/**
 * Why the address rules of `net` refuse `address`:`port` (TCP) judged by
 * the address alone, with no name (a protocol that is neither TLS nor
 * HTTP), or null. A wildcard rule matches only the addresses pinned for it
 * (names beneath it that the policy names, resolved at start); a host name
 * not pinned matches everything under netDeny, nothing under netAllow (fail
 * closed).
 */
export function addressRefusal(net: NetView | null, address: string, port: number): string | null {
  if (net === null) return null;
  const parsed = parseAddress(address);
  if (parsed === null) return `'${address}' is not an address`;
  const hit = net.rules.find(
    (rule) =>
      rule.protocols.includes('tcp') &&
      portIn(rule, port) &&
      (rule.host !== null
        ? net.hosts[rule.host] === undefined
          ? net.mode === 'deny' && !isWildcardHost(rule.host)
          : net.hosts[rule.host]!.some((pinned) => addressText(pinned) === parsed.toString())
        : rule.network === null || inRule(rule, parsed)),
  );
  if (net.mode === 'deny') {
    return hit === undefined ? null : `${address}:${port} is denied by --net-deny`;
  }
  return hit === undefined
    ? `${address}:${port} is allowed by no --net-allow rule by its address (a name rule needs TLS or HTTP to see the name)`
    : null;
}

/** Whether a rule of `net` matches TCP to `port` by a name the proxy must read (a wildcard). */
export function namesMatterAt(net: NetView | null, port: number): boolean {
  return (net?.rules ?? []).some(
    (rule) =>
      rule.protocols.includes('tcp') &&
      rule.host !== null &&
      isWildcardHost(rule.host) &&
      // A deny wildcard without ports is held by address (its pinned ones) and DNS only.
      (net!.mode === 'allow' || rule.ports !== null) &&
      portIn(rule, port),
  );
}

export interface NameOptions {
  /** The network rules (netAllow/netDeny with pinned hosts); null when the policy has none. */
  readonly net: NetView | null;
  readonly http: HttpRules;
  /** How a name is resolved (default: getaddrinfo, every address). */
  readonly lookup?: (name: string) => Promise<string[]>;
  /** How long a resolution is kept, in ms (default 30 s). */
  readonly ttl?: number;
}

async function systemLookup(name: string): Promise<string[]> {
  const found = await lookup(name, { all: true, verbatim: true });
  return found.map((entry) => entry.address);
}

/**
 * The names of a sandbox: whether a name may be resolved (the sandbox's
 * DNS) and reached (the proxy), and what addresses it has, resolved here and
 * remembered, so that the proxy can tell whether a `Host` or an SNI names
 * the address the sandbox dialled.
 */
export class Names {
  private readonly lookup: (name: string) => Promise<string[]>;
  private readonly ttl: number;
  private readonly cache = new Map<string, { until: number; addresses: Promise<string[]> }>();
  /** Every address a name was found to have: the sandbox may keep an answer longer than `ttl`. */
  private readonly seen = new Map<string, Set<string>>();
  /** The sandbox's DNS answers, by address: each name answered with it, until when (ms). */
  private readonly answered = new Map<string, Map<string, number>>();

  constructor(private readonly options: NameOptions) {
    this.lookup = options.lookup ?? systemLookup;
    this.ttl = options.ttl ?? 30_000;
  }

  /** The network rules these names are held to. */
  get net(): NetView | null {
    return this.options.net;
  }

  private get tcpRules(): readonly NetRule[] {
    return (this.options.net?.rules ?? []).filter((rule) => rule.protocols.includes('tcp'));
  }

  /** A rule names `name` itself (not through a wildcard): what it resolves to is the user's choice. */
  private named(name: string): boolean {
    const net = this.options.net;
    if (net?.mode === 'allow' && net.rules.some((rule) => rule.host === name)) return true;
    return this.options.http.allow.some((rule) => rule.host === name);
  }

  /** A rule lets the sandbox reach this special address by naming it (an address or a range). */
  private addressNamed(address: Address): boolean {
    const net = this.options.net;
    return net?.mode === 'allow' && net.rules.some((rule) => inRule(rule, address));
  }

  /**
   * Whether the sandbox may resolve `name`: a rule names it (a host name or
   * a wildcard of netAllow, a host of httpAllow), or the rules do not list
   * names (netDeny, or a netAllow rule for any address: then every name not
   * denied). Nothing else is sent to a DNS server: query names carry data.
   */
  mayResolve(name: string): boolean {
    const net = this.options.net;
    const http = this.options.http;
    if (net?.mode === 'deny' && net.rules.some((r) => r.host !== null && hostMatches(r.host, name)))
      return false;
    if (
      http.deny.some(
        (rule) =>
          rule.method === '*' &&
          rule.path === '/**' &&
          rule.port === null &&
          hostMatches(rule.host, name),
      )
    )
      return false;
    const httpNames = http.allow.some((rule) => hostMatches(rule.host, name));
    if (net === null) return http.allow.length === 0 || httpNames;
    if (net.mode === 'deny') return http.allow.length === 0 || httpNames;
    if (httpNames) return true;
    return net.rules.some(
      (rule) =>
        (rule.host !== null && hostMatches(rule.host, name)) ||
        (rule.host === null && rule.network === null),
    );
  }

  /**
   * Why the network rules refuse `name` at `address`:`port` (TCP), or null.
   * Address rules match the address; name rules (names and wildcards) the
   * name. That the name has the address is {@link hasAddress}'s question.
   */
  netRefuses(name: string, address: string, port: number): string | null {
    const net = this.options.net;
    if (net === null) return null;
    const parsed = parseAddress(address);
    if (parsed === null) return `'${address}' is not an address`;
    const matches = (rule: NetRule) =>
      portIn(rule, port) &&
      (rule.host !== null
        ? hostMatches(rule.host, name) ||
          // A wildcard's pinned addresses: names beneath it resolved at start.
          (net.hosts[rule.host] ?? []).some((pinned) => addressText(pinned) === parsed.toString())
        : rule.network === null || inRule(rule, parsed));
    const hit = this.tcpRules.find(matches);
    if (net.mode === 'deny')
      return hit === undefined ? null : `${name} (${address}:${port}) is denied by --net-deny`;
    return hit === undefined
      ? `${name} (${address}:${port}) is allowed by no --net-allow rule`
      : null;
  }

  /**
   * The addresses of `name` the sandbox may be given: resolved here (kept
   * `ttl`), a name's pinned addresses first; special addresses (loopback,
   * link-local and metadata, private) dropped unless a rule names the exact
   * name or the address.
   */
  addresses(name: string): Promise<string[]> {
    const now = Date.now();
    const cached = this.cache.get(name);
    if (cached !== undefined && cached.until > now) return cached.addresses;
    const addresses = (async () => {
      const pinned = this.options.net?.hosts[name];
      const found = pinned !== undefined ? [...pinned] : await this.lookup(name);
      const named = this.named(name);
      return [...new Set(found.map(addressText))].filter((text) => {
        const address = parseAddress(text);
        if (address === null) return false;
        return named || !isSpecialAddress(text) || this.addressNamed(address);
      });
    })();
    addresses.then(
      (found) => {
        const known = this.seen.get(name) ?? new Set<string>();
        for (const address of found) if (known.size < 64) known.add(address);
        this.seen.set(name, known);
        if (this.seen.size > 4096) this.seen.delete(this.seen.keys().next().value!);
      },
      () => this.cache.delete(name),
    );
    this.cache.set(name, { until: now + this.ttl, addresses });
    if (this.cache.size > 4096) this.cache.delete(this.cache.keys().next().value!);
    return addresses;
  }

  /**
   * Records that the sandbox's DNS answered `name` with `addresses`, valid
   * for `ttl` ms: a connection to one of them, on a port a rule allows for
   * the name, may then be judged by that answer ({@link answeredNames}).
   */
  noteAnswer(name: string, addresses: readonly string[], ttl: number): void {
    const until = Date.now() + ttl;
    for (const address of addresses.map(addressText)) {
      const names = this.answered.get(address) ?? new Map<string, number>();
      names.delete(name);
      names.set(name, until);
      if (names.size > 64) names.delete(names.keys().next().value!);
      this.answered.delete(address);
      this.answered.set(address, names);
    }
    while (this.answered.size > 4096) this.answered.delete(this.answered.keys().next().value!);
  }

  /** The names the sandbox's DNS answered with `address` whose answers have not expired. */
  answeredNames(address: string): string[] {
    const names = this.answered.get(addressText(address));
    if (names === undefined) return [];
    const now = Date.now();
    return [...names].filter(([, until]) => until > now).map(([name]) => name);
  }

  /**
   * Whether `host` (a name or an address) names `address`: the same
   * address, or one the name has. A name the sandbox may not resolve is
   * not looked up (an SNI or a Host would carry data out in the query).
   */
  async hasAddress(host: string, address: string): Promise<boolean> {
    const dialled = addressText(address);
    const literal = parseAddress(host);
    if (literal !== null) return literal.toString() === dialled;
    if (!this.mayResolve(host)) return false;
    if (this.seen.get(host)?.has(dialled)) return true;
    try {
      return (await this.addresses(host)).includes(dialled);
    } catch {
      return false;
    }
  }
}

/** What the sandbox's DNS asks of the names: one sandbox's, or those of nested sandboxes together. */
export interface NameSource {
  mayResolve(name: string): boolean;
  addresses(name: string): Promise<string[]>;
  /** An answer given to the sandbox: its addresses stand for the name until `ttl` ms pass. */
  noteAnswer(name: string, addresses: readonly string[], ttl: number): void;
}

/**
 * The names of nested sandboxes seen together: a name resolves only when
 * every level lets it, to the addresses every level keeps (each drops the
 * special addresses its own rules do not name).
 */
export class NameChain implements NameSource {
  constructor(private readonly levels: readonly NameSource[]) {}

  mayResolve(name: string): boolean {
    return this.levels.every((level) => level.mayResolve(name));
  }

  async addresses(name: string): Promise<string[]> {
    const [first, ...rest] = await Promise.all(this.levels.map((level) => level.addresses(name)));
    return (first ?? []).filter((address) => rest.every((kept) => kept.includes(address)));
  }

  noteAnswer(name: string, addresses: readonly string[], ttl: number): void {
    for (const level of this.levels) level.noteAnswer(name, addresses, ttl);
  }
}
