import ipaddr from 'ipaddr.js';
import type { Kind } from './kinds.js';

/** The protocols a network rule is about. */
export type NetProtocol = 'tcp' | 'udp' | 'icmp';

/**
 * A network rule (`--net-allow`, `--net-deny`) taken apart: which
 * protocols, which destinations (a host name to resolve, an address range,
 * or any), which ports.
 */
export interface NetRule {
  readonly protocols: readonly NetProtocol[];
  /**
   * A host name, resolved when the sandbox starts, or a wildcard `*.NAME`
   * (never resolved: it is matched by name, by the HTTP proxy); null for an
   * address, a CIDR or `*`.
   */
  readonly host: string | null;
  /** The address range: an address is a /32 or /128; null for any address (or a host name). */
  readonly network: { readonly address: string; readonly prefix: number } | null;
  /** Inclusive port ranges; null for any port. */
  readonly ports: readonly { readonly from: number; readonly to: number }[] | null;
}

const HOST =
  /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;
const SCHEMES: Readonly<Record<string, readonly NetProtocol[]>> = {
  tcp: ['tcp'],
  udp: ['udp'],
  icmp: ['icmp'],
};

function parsePorts(text: string, lowest = 1): NetRule['ports'] | string {
  if (text === '*') return null;
  const ports: { from: number; to: number }[] = [];
  for (const part of text.split(',')) {
    const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    if (!match) return `'${part}' is not a port, a range FROM-TO or *`;
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : Number(match[2]);
    if (from < lowest || to > 65535) {
      return `port ${from < lowest ? from : to} is not from ${lowest} to 65535`;
    }
    if (from > to) return `range start ${from} is above its end ${to}`;
    ports.push({ from, to });
  }
  return ports;
}

/** `text` as an address range, or null when it is not an address or a CIDR. */
function parseNetwork(text: string): NetRule['network'] | string | null {
  if (text.includes('/')) {
    if (!ipaddr.isValidCIDR(text)) {
      return ipaddr.isValid(text.slice(0, text.indexOf('/')))
        ? `'${text}' has a prefix length out of range`
        : null;
    }
    const [address, prefix] = ipaddr.parseCIDR(text);
    return { address: address.toString(), prefix };
  }
  // Only the usual forms: ipaddr.js also takes 0x7f.1 or 2130706433 for 127.0.0.1.
  if (
    ipaddr.IPv4.isValidFourPartDecimal(text) ||
    (text.includes(':') && ipaddr.IPv6.isValid(text))
  ) {
    const address = ipaddr.parse(text);
    return { address: address.toString(), prefix: address.kind() === 'ipv4' ? 32 : 128 };
  }
  return null;
}

/** A rule's text taken apart, or the reason it is not one. */
export function parseNetRule(given: string): NetRule | string {
  let text = given.trim();
  let protocols: readonly NetProtocol[] = ['tcp', 'udp'];
  const scheme = /^([a-z]+):\/\//i.exec(text);
  if (scheme) {
    const known = SCHEMES[scheme[1]!.toLowerCase()];
    if (known === undefined) return `unknown scheme '${scheme[1]}://' (tcp, udp or icmp)`;
    protocols = known;
    text = text.slice(scheme[0].length);
  }
  let where: string;
  let portText: string | null = null;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) return "'[' without ']'";
    where = text.slice(1, end);
    const rest = text.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return `unexpected '${rest}' after ']'`;
      portText = rest.slice(1);
    }
    if (!where.includes(':')) return `'[${where}]': brackets are for IPv6 addresses`;
  } else if ((text.match(/:/g) ?? []).length > 1) {
    // More than one colon: an IPv6 address or CIDR without a port.
    where = text;
  } else {
    const colon = text.indexOf(':');
    where = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? null : text.slice(colon + 1);
  }
  let ports: NetRule['ports'] = null;
  if (portText !== null) {
    const parsed = parsePorts(portText);
    if (typeof parsed === 'string') return parsed;
    ports = parsed;
  }
  if (protocols.includes('icmp') && ports !== null) return 'ICMP has no ports';
  if (where === '*') return { protocols, host: null, network: null, ports };
  const network = parseNetwork(where);
  if (typeof network === 'string') return network;
  if (network !== null) return { protocols, host: null, network, ports };
  if (where.includes(':')) return `'${where}' is not an IPv6 address or CIDR`;
  if (/^[\d.]+$/.test(where) || where.includes('/'))
    return `'${where}' is not an IPv4 address or CIDR`;
  const host = parseHostPattern(where);
  if (host === null || host.includes(':') || ipaddr.IPv4.isValidFourPartDecimal(host)) {
    return `'${where}' is not a host name, *.name, an address, a CIDR or *`;
  }
  return { protocols, host, network: null, ports };
}

/** A host name as rules keep it: lower case, without a trailing dot; null when it is none. */
function hostName(text: string): string | null {
  // A last label starting with a digit is no top-level domain (RFC 3696 §2):
  // getaddrinfo would read `0x7f.1` as 127.0.0.1 (inet_aton's forms).
  const last = text.replace(/\.$/, '').split('.').at(-1) ?? '';
  if (!HOST.test(text) || /^\d/.test(last)) return null;
  return text.toLowerCase().replace(/\.$/, '');
}

/**
 * A host of a name rule: a host name, `*.NAME` (any name beneath NAME, not
 * NAME itself), or an IP address (normalized: `::ffff:0:1` as ipaddr.js
 * prints it); null when it is none of these.
 */
export function parseHostPattern(text: string): string | null {
  if (text.startsWith('*.')) {
    const name = hostName(text.slice(2));
    return name === null ? null : `*.${name}`;
  }
  if (
    ipaddr.IPv4.isValidFourPartDecimal(text) ||
    (text.includes(':') && ipaddr.IPv6.isValid(text))
  ) {
    return ipaddr.parse(text).toString();
  }
  return hostName(text);
}

/** A name rule's host is a wildcard (`*.example.com`): matched by name, never pinned. */
export function isWildcardHost(host: string): boolean {
  return host.startsWith('*.');
}

/** Whether `name` (lower case, no trailing dot) is matched by the host pattern `pattern`. */
export function hostMatches(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  if (isWildcardHost(pattern))
    return name.endsWith(pattern.slice(1)) && name.length > pattern.length - 1;
  return pattern === name;
}

/** A network rule, kept as its text (`udp://10.0.0.0/8:53`); {@link parseNetRule} takes it apart. */
export const netSpec: Kind<string> = {
  check(value, at) {
    if (typeof value !== 'string') {
      return at.expected(
        'a rule like example.com:443, *.example.com:443, 10.0.0.0/8, udp://[::1]:53 or *',
        value,
      );
    }
    const rule = parseNetRule(value);
    if (typeof rule === 'string') return at.problem(`${rule}, in '${value}'`);
    return value.trim();
  },
  schema: { type: 'string', minLength: 1 },
  describe:
    '[tcp:// | udp:// | icmp://] HOST, *.DOMAIN, IP, CIDR or * (IPv6 in brackets), then optionally :PORT, :PORT,PORT, :FROM-TO or :*',
};

/** The protocols a bind rule is about: a port is TCP's or UDP's. */
export type BindProtocol = 'tcp' | 'udp';

/** A bind rule (`--net-allow-bind`, `--net-deny-bind`) taken apart. */
export interface BindRule {
  readonly protocols: readonly BindProtocol[];
  /** Inclusive port ranges (0 is the bind to an ephemeral port); null for any port. */
  readonly ports: readonly { readonly from: number; readonly to: number }[] | null;
}

/** A bind rule's text (`[tcp://|udp://]PORTS`) taken apart, or the reason it is not one. */
export function parseBindRule(given: string): BindRule | string {
  let text = given.trim();
  let protocols: readonly BindProtocol[] = ['tcp', 'udp'];
  const scheme = /^([a-z]+):\/\//i.exec(text);
  if (scheme) {
    const name = scheme[1]!.toLowerCase();
    if (name !== 'tcp' && name !== 'udp') return `unknown scheme '${scheme[1]}://' (tcp or udp)`;
    protocols = [name];
    text = text.slice(scheme[0].length);
  }
  const ports = parsePorts(text, 0);
  if (typeof ports === 'string') return ports;
  return { protocols, ports };
}

/** Whether `port` of `protocol` is one a bind rule names. */
export function bindRuleMatches(rule: BindRule, protocol: BindProtocol, port: number): boolean {
  if (!rule.protocols.includes(protocol)) return false;
  return rule.ports === null || rule.ports.some(({ from, to }) => port >= from && port <= to);
}

/** A bind rule, kept as its text (`udp://5353`, `8000-8100`); {@link parseBindRule} takes it apart. */
export const bindSpec: Kind<string> = {
  check(value, at) {
    if (typeof value === 'number') value = String(value);
    if (typeof value !== 'string') {
      return at.expected('ports like 8080, 8000-8100, udp://5353 or *', value);
    }
    const rule = parseBindRule(value);
    if (typeof rule === 'string') return at.problem(`${rule}, in '${value}'`);
    return value.trim();
  },
  schema: {
    oneOf: [
      { type: 'string', minLength: 1 },
      { type: 'integer', minimum: 0, maximum: 65535 },
    ],
  },
  describe: '[tcp:// | udp://] PORT, PORT,PORT, FROM-TO or * (0 is a bind to an ephemeral port)',
};
