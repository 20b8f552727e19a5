// Whether a destination is one the policy's address rules let the sandbox reach.
import { isWildcardHost, type NetProtocol, type NetRule, type NetView } from '@sandlock/policy';
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it carries. */
export function plainAddress(address: Address): Address {
  return address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()
    ? (address as ipaddr.IPv6).toIPv4Address()
    : address;
}

/** A range as [address, prefix], an IPv4-mapped IPv6 range as its IPv4 range. */
function plainRange(text: string, prefix: number): [Address, number] {
  const address = ipaddr.parse(text);
  if (address.kind() === 'ipv6' && prefix >= 96 && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    return [(address as ipaddr.IPv6).toIPv4Address(), prefix - 96];
  }
  return [address, prefix];
}

/** A rule ready to match: its ranges parsed, its host's pinned addresses looked up. */
interface Compiled {
  readonly protocols: readonly NetProtocol[];
  /** null: any address; an empty list: none (a host name that was not resolved). */
  readonly ranges: readonly [Address, number][] | null;
  /** True for a host name with no pinned address. */
  readonly unresolved: boolean;
  /** A wildcard name (`*.example.com`): matched by name by the HTTP proxy; by address, its pinned addresses only. */
  readonly wildcard: boolean;
  readonly ports: NetRule['ports'];
}

const compiledViews = new WeakMap<NetView, readonly Compiled[]>();

function compile(net: NetView): readonly Compiled[] {
  let compiled = compiledViews.get(net);
  if (compiled === undefined) {
    compiled = net.rules.map((rule) => {
      if (rule.host !== null) {
        const pinned = net.hosts[rule.host];
        const wildcard = isWildcardHost(rule.host);
        return {
          protocols: rule.protocols,
          ranges: (pinned ?? []).map((text) => {
            const address = plainAddress(ipaddr.parse(text));
            return [address, address.kind() === 'ipv4' ? 32 : 128] as [Address, number];
          }),
          // A wildcard is never resolved: by address it matches the names
          // beneath it that the policy names, resolved at start (resolve.ts).
          unresolved: pinned === undefined && !wildcard,
          wildcard,
          ports: rule.ports,
        };
      }
      return {
        protocols: rule.protocols,
        ranges:
          rule.network === null ? null : [plainRange(rule.network.address, rule.network.prefix)],
        unresolved: false,
        wildcard: false,
        ports: rule.ports,
      };
    });
    compiledViews.set(net, compiled);
  }
  return compiled;
}

/** A destination a datagram is sent (or a socket connected) to. */
export interface Destination {
  readonly protocol: NetProtocol;
  /** As the kernel will use it: an IPv4-mapped IPv6 address already made IPv4. */
  readonly address: Address;
  /** null for ICMP, which has no ports. */
  readonly port: number | null;
}

function matches(
  rule: Compiled,
  destination: Destination,
  mode: NetView['mode'],
  byName: boolean,
): boolean {
  if (!rule.protocols.includes(destination.protocol)) return false;
  if (rule.wildcard && byName) {
    // The proxy matches the name: here the rule is about its ports only.
    if (mode === 'deny') return false;
    const port = destination.port;
    return (
      rule.ports === null ||
      (port !== null && rule.ports.some(({ from, to }) => port >= from && port <= to))
    );
  }
  // A name that did not resolve: fail closed either way.
  if (rule.unresolved) return mode === 'deny';
  if (rule.ports !== null && destination.port !== null) {
    const port = destination.port;
    if (!rule.ports.some(({ from, to }) => port >= from && port <= to)) return false;
  }
  if (rule.ranges === null) return true;
  const address = destination.address;
  return rule.ranges.some(
    ([range, prefix]) => range.kind() === address.kind() && address.match(range, prefix),
  );
}

/**
 * Whether the policy's rules let the sandbox send to `destination`.
 * `byName`: a TCP connect the HTTP proxy takes, which holds the server name
 * (SNI, Host) to the wildcard rules; here they match any address at their ports.
 */
export function reaches(net: NetView, destination: Destination, byName = false): boolean {
  const matched = compile(net).some((rule) => matches(rule, destination, net.mode, byName));
  return net.mode === 'allow' ? matched : !matched;
}
