import { realpathSync } from 'node:fs';
import { bytePath, pathWithin } from '@sandlock/sys';
import type { Policy } from './fields.js';
import {
  type BindProtocol,
  type BindRule,
  bindRuleMatches,
  type NetRule,
  parseBindRule,
  parseNetRule,
} from './net-spec.js';
import { expandPresets } from './presets.js';

/**
 * A policy path as the kernel names it: symlinks resolved. A deny path that
 * does not exist yet stays as given.
 */
export function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** `path` (one character per byte, as paths read from the kernel) is `entry` or lies beneath it. */
function heldBy(path: string, entry: string): boolean {
  return pathWithin(path, bytePath(entry));
}

/**
 * The policy as a handler module receives it (structured-cloned into the
 * supervisor's worker threads): checked and typed, the `system` preset as
 * paths (expandPresets), its paths canonical as the Landlock rules are, the seed as a bigint, and the facts several parts
 * of Sandlock derive from it computed once.
 */
export interface ModulePolicy extends Omit<Policy, 'randomSeed'> {
  readonly randomSeed: bigint | null;
  /** The sandbox may read /proc (fsRead or fsWrite holds it, fsDeny does not). */
  readonly procReadable: boolean;
  /**
   * The supervisor hides the host's processes and is the only way into
   * /proc/<pid> (the Landlock rules leave process directories out): /proc is
   * readable and not writable. Where /proc is writable, writes to /proc/<pid>
   * must keep working, and hiding stays best effort.
   */
  readonly hidesProcesses: boolean;
  /**
   * The fs-meta module does the sandbox's metadata changes (chmod, utimes,
   * extended attributes; Landlock does not mediate them) on what it may
   * write: the supervisor runs as root (root owns root's files everywhere)
   * and the sandbox may write somewhere. One that may write nowhere has them
   * refused by its filter.
   */
  readonly mediatesMetadata: boolean;
  /**
   * The sandbox runs as another user than its supervisor (sandlock's
   * SpawnOptions.user): the ids the supervisor's lookups on its behalf take.
   */
  readonly callerIds?: {
    readonly fsuid: number;
    readonly fsgid: number;
    readonly groups: readonly number[];
  };
  /**
   * The sandbox keeps a zygote (sandlock's SpawnOptions.joinable): the
   * program's first fork, made before it runs, which maxProcesses does not count.
   */
  readonly joinable?: boolean;
  /** The address rules (netAllow or netDeny) taken apart; null when the policy has none. */
  readonly net: NetView | null;
  /** Which datagram sockets the sandbox may make (UDP, ICMP ping): {@link datagramsOf}. */
  readonly datagrams: Datagrams;
  /**
   * For a sandbox nested in others (delegated): the address rules of each
   * enclosing sandbox, which its traffic must pass as well as `net`.
   */
  readonly enclosingNet?: readonly NetView[];
  /**
   * For a sandbox nested in others (delegated), whose connects the outer
   * sandbox's reaper makes in the outer's Landlock domain: the TCP ports the
   * Landlock domain of it and of each delegated sandbox around it lets a
   * process connect to ({@link connectPortsOf}; null: any port), which a
   * connect must pass as the kernel would hold its own connect to them.
   */
  readonly delegatedConnectPorts?: readonly (
    | readonly { readonly from: number; readonly to: number }[]
    | null
  )[];
  /**
   * For a sandbox nested in others (delegated): the bind rules of each
   * enclosing sandbox, which its binds must pass as well as `binds`.
   */
  readonly enclosingBinds?: readonly BindView[];
  /**
   * The destinations module answers every connect and addressed send: the
   * policy has address rules, may write somewhere (a socket file there is
   * the sandbox's to reach) or names `unix` sockets. A sandbox supervised
   * for anything else gets it too (the supervision plan turns it on); one
   * with no supervisor at all may make no Unix socket instead.
   */
  readonly mediatesDestinations: boolean;
  /**
   * TCP destinations an HTTP rule covers, which the destinations module has
   * the reaper connect to the sandbox's HTTP proxy instead (set by the
   * supervisor once the proxy listens); absent: none.
   */
  readonly httpRedirect?: HttpRedirect | null;
  /**
   * Trust bundles the sandbox reads with the HTTP proxy's CA added, and
   * /etc/resolv.conf naming its DNS, by path (the hostname module of
   * @sandlock/procfs serves their opens); absent: none.
   */
  readonly trustBundles?: Readonly<Record<string, string>>;
  /** The bind rules (netAllowBind or netDenyBind, netBind, portRemap): {@link bindsOf}. */
  readonly binds: BindView;
  /**
   * The supervisor's socket a sandbox started inside asks (host path, in
   * `unix` too); with a root, reached by this exact name, which the root
   * does not hold; absent: none.
   */
  readonly delegationSocket?: string;
  /**
   * Started inside another supervised sandbox (delegated): the reaper that
   * acts on its behalf is the outer sandbox's, outside its Landlock domain.
   */
  readonly delegated?: boolean;
}

/** Where a sandbox's HTTP proxy listens, and which destinations go to it. */
export interface HttpRedirect {
  /** The proxy's port on 127.0.0.1. */
  readonly port: number;
  /**
   * Destinations sent to the proxy: an address (null: any, for a wildcard
   * network rule, matched by name there) with a port (null: any), or every
   * destination.
   */
  readonly covers:
    | 'all'
    | readonly { readonly address: string | null; readonly port: number | null }[];
  /**
   * The sandbox's DNS server (the address in its /etc/resolv.conf, port 53):
   * UDP datagrams to it go to the supervisor's socket bound there, TCP
   * connects to the proxy's port, which answers them; null: none.
   */
  readonly dns?: string | null;
}

/** The ports a sandbox may bind, and who makes its binds. */
export interface BindView {
  /** `allow`: only the ports a rule names (none without a rule); `deny`: all but those. */
  readonly mode: 'allow' | 'deny';
  /** netAllowBind's or netDenyBind's rules; in `allow` mode netBind's ports as TCP rules too. */
  readonly rules: readonly BindRule[];
  /** A private port space (portRemap). */
  readonly remap: boolean;
  /**
   * Every TCP bind is checked by the supervisor and made by the sandbox's
   * reaper (netDenyBind or portRemap: what Landlock's port rules cannot say);
   * the sandbox's own Landlock layer then allows it no TCP bind. Otherwise
   * Landlock alone decides TCP binds ({@link landlockBindPorts}).
   */
  readonly tcpOnBehalf: boolean;
}

/** The bind rules of a checked policy. */
export function bindsOf(
  policy: Pick<Policy, 'netBind' | 'netAllowBind' | 'netDenyBind' | 'portRemap'>,
): BindView {
  const parse = (text: string): BindRule => {
    const rule = parseBindRule(text);
    if (typeof rule === 'string') throw new TypeError(`sandlock: unchecked bind rule '${text}'`);
    return rule;
  };
  const deny = policy.netDenyBind.length > 0;
  const rules = deny
    ? policy.netDenyBind.map(parse)
    : [
        ...policy.netAllowBind.map(parse),
        ...policy.netBind.map(
          (port): BindRule => ({
            protocols: ['tcp'],
            ports: [typeof port === 'number' ? { from: port, to: port } : port],
          }),
        ),
      ];
  return {
    mode: deny ? 'deny' : 'allow',
    rules,
    remap: policy.portRemap,
    tcpOnBehalf: deny || policy.portRemap,
  };
}

/** Whether the rules let the sandbox bind `port` (its virtual port under portRemap). */
export function mayBind(binds: BindView, protocol: BindProtocol, port: number): boolean {
  const named = binds.rules.some((rule) => bindRuleMatches(rule, protocol, port));
  return binds.mode === 'allow' ? named : !named;
}

/**
 * The TCP ports the policy's Landlock domain (the reaper's) lets bind:
 * `any` when it must not handle binds (the rules allow every port, or
 * netDenyBind, which Landlock cannot say: the supervisor decides), else
 * inclusive ranges. Under portRemap it adds port 0, the ephemeral bind the
 * reaper makes for a port taken on the host.
 */
export function landlockBindPorts(
  policy: Pick<Policy, 'netBind' | 'netAllowBind' | 'netDenyBind' | 'portRemap'>,
): 'any' | { from: number; to: number }[] {
  const binds = bindsOf(policy);
  if (binds.mode === 'deny') return 'any';
  const ranges: { from: number; to: number }[] = [];
  for (const rule of binds.rules) {
    if (!rule.protocols.includes('tcp')) continue;
    if (rule.ports === null) return 'any';
    ranges.push(...rule.ports.map(({ from, to }) => ({ from, to })));
  }
  if (binds.remap) ranges.push({ from: 0, to: 0 });
  ranges.sort((a, b) => a.from - b.from);
  let covered = -1;
  for (const { from, to } of ranges) {
    if (from > covered + 1) break;
    covered = Math.max(covered, to);
  }
  return covered >= 65535 ? 'any' : ranges;
}

/** The address rules a sandbox's traffic is checked against. */
export interface NetView {
  /** `allow`: only what a rule matches; `deny`: all but what a rule matches. */
  readonly mode: 'allow' | 'deny';
  readonly rules: readonly NetRule[];
  /**
   * The addresses each host name of the rules resolved to when the sandbox
   * started (pinned: the sandbox sees them in its /etc/hosts). A name
   * missing here matches nothing in `allow` mode and everything in `deny`
   * mode.
   */
  readonly hosts: Readonly<Record<string, readonly string[]>>;
}

export interface Datagrams {
  readonly udp: boolean;
  readonly icmp: boolean;
}

/** The rules of a checked policy taken apart (netAllow or netDeny, never both). */
export function netRulesOf(policy: Pick<Policy, 'netAllow' | 'netDeny'>): {
  mode: 'allow' | 'deny';
  rules: NetRule[];
} | null {
  const mode = policy.netAllow.length > 0 ? 'allow' : policy.netDeny.length > 0 ? 'deny' : null;
  if (mode === null) return null;
  const texts = mode === 'allow' ? policy.netAllow : policy.netDeny;
  const rules = texts.map((text) => {
    const rule = parseNetRule(text);
    if (typeof rule === 'string') throw new TypeError(`sandlock: unchecked network rule '${text}'`);
    return rule;
  });
  return { mode, rules };
}

/**
 * UDP and ICMP sockets exist only where a rule of that protocol does: under
 * netAllow, a rule naming it (no scheme names TCP and UDP); under netDeny,
 * always; with neither, never.
 */
export function datagramsOf(policy: Pick<Policy, 'netAllow' | 'netDeny'>): Datagrams {
  const net = netRulesOf(policy);
  if (net === null) return { udp: false, icmp: false };
  if (net.mode === 'deny') return { udp: true, icmp: true };
  const has = (protocol: 'udp' | 'icmp') =>
    net.rules.some((rule) => rule.protocols.includes(protocol));
  return { udp: has('udp'), icmp: has('icmp') };
}

/**
 * The TCP ports Landlock lets the sandbox connect to, as `{ from, to }`
 * ranges, or null when Landlock is not to restrict TCP connects by port.
 * `netConnect` when given. Without it, the address rules decide (the
 * destinations module makes every connect through the reaper, in this
 * domain): the ports of the TCP allow rules, or null when one of them
 * allows any port or the rules are a deny list; no TCP rule: none.
 */
export function connectPortsOf(
  policy: Pick<Policy, 'netConnect' | 'netAllow' | 'netDeny'>,
): { from: number; to: number }[] | null {
  const given = policy.netConnect.map((spec) =>
    typeof spec === 'number' ? { from: spec, to: spec } : { from: spec.from, to: spec.to },
  );
  if (given.length > 0) return given;
  const net = netRulesOf(policy);
  if (net === null) return [];
  if (net.mode === 'deny') return null;
  const ports: { from: number; to: number }[] = [];
  for (const rule of net.rules) {
    if (!rule.protocols.includes('tcp')) continue;
    if (rule.ports === null) return null;
    ports.push(...rule.ports);
  }
  return ports;
}

/**
 * The sandbox may read `path` by its policy: fsRead or fsWrite holds it or an
 * ancestor, and no fsDeny entry is it or an ancestor (a deny entry beneath it
 * does not count). `path` is absolute, one character per byte (bytePath).
 */
export function policyReads(
  policy: Pick<Policy, 'fsRead' | 'fsWrite' | 'fsDeny'>,
  path: string,
): boolean {
  const granted = [...policy.fsRead, ...policy.fsWrite];
  if (!granted.some((entry) => heldBy(path, entry))) return false;
  return !policy.fsDeny.some((entry) => heldBy(path, entry));
}

/**
 * The view of `policy` for handler modules; `uid` is the supervising
 * process's, `hosts` the addresses the rules' host names resolved to.
 */
export function modulePolicy(
  given: Policy,
  uid = process.getuid?.() ?? -1,
  hosts: Readonly<Record<string, readonly string[]>> = {},
): ModulePolicy {
  const policy = expandPresets(given);
  const paths = {
    fsRead: policy.fsRead.map(canonical),
    fsWrite: policy.fsWrite.map(canonical),
    fsDeny: policy.fsDeny.map(canonical),
    unix: policy.unix.map(canonical),
  };
  const procReadable = policyReads(paths, '/proc');
  return {
    ...policy,
    ...paths,
    randomSeed: policy.randomSeed === null ? null : BigInt(policy.randomSeed),
    procReadable,
    hidesProcesses: procReadable && !paths.fsWrite.some((entry) => pathWithin('/proc', entry)),
    mediatesMetadata: policy.fsWrite.length > 0 && uid === 0,
    net: netView(policy, hosts),
    datagrams: datagramsOf(policy),
    mediatesDestinations:
      netRulesOf(policy) !== null || paths.fsWrite.length > 0 || paths.unix.length > 0,
    binds: bindsOf(policy),
  };
}

function netView(
  policy: Policy,
  hosts: Readonly<Record<string, readonly string[]>>,
): NetView | null {
  const net = netRulesOf(policy);
  if (net === null) return null;
  const names = new Set(net.rules.flatMap((rule) => (rule.host === null ? [] : [rule.host])));
  const pinned: Record<string, readonly string[]> = {};
  for (const name of names) if (hosts[name] !== undefined) pinned[name] = [...hosts[name]];
  return { ...net, hosts: pinned };
}
