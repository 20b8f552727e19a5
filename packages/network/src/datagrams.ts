// UDP and ICMP ping sockets, for the destinations module: a datagram's
// destination is in the caller's memory (sendto's address, sendmsg's
// msghdr), so a check followed by CONTINUE would let another thread rewrite
// it between the check and the kernel's read. Every send on such a socket,
// and every connect of one, is done here on the socket itself (the
// module's pidfd_getfd duplicate: the same open file description) from the
// copies that were checked: the address, the payload and the control data
// are read out of the caller once.
//
// This grants nothing the policy does not. Landlock does not mediate UDP or
// ICMP at all (its network rights are LANDLOCK_ACCESS_NET_BIND_TCP and
// LANDLOCK_ACCESS_NET_CONNECT_TCP only: Documentation/userspace-api/landlock.rst,
// "Network flags"), so the sandbox's own domain would let the same datagram
// through; the socket keeps its owner, namespace and options; and the
// capabilities of this thread are cut to the caller's (none) for a message
// with control data, so control messages that need one (SO_MARK,
// SO_PRIORITY above 6: __sock_cmsg_send() in net/core/sock.c) fail as they
// would for the sandbox. Without control data neither udp_sendmsg(),
// ping_v4_sendmsg() nor a datagram connect checks a capability.
import type { Answer } from '@sandlock/dispatch/module';
import { answer } from '@sandlock/dispatch/module';
import type { ModulePolicy, NetProtocol } from '@sandlock/policy';
import { AF_INET, AF_INET6, AF_UNSPEC, ERRNO } from '@sandlock/sys';
import ipaddr from 'ipaddr.js';
import { isSandboxDns } from './redirect.js';
import { type Destination, plainAddress, reaches } from './rules.js';
import { isPing, type SocketKind } from './sockets.js';

const { EACCES, EAFNOSUPPORT, EINVAL } = ERRNO;

/**
 * Where the kernel will send a datagram with this address (udp_sendmsg(),
 * udpv6_sendmsg(), ping_v4_sendmsg(), ping_v6_sendmsg()), or, for connect,
 * associate the socket (inet_dgram_connect(), __ip4_datagram_connect(),
 * __ip6_datagram_connect()): a destination, `none` (no address: the
 * connected peer; for connect, AF_UNSPEC dissolves the association), or the
 * errno the kernel would return without sending.
 */
export type Target = { destination: Destination } | { none: true } | { errno: number };

function ipv4At(address: Buffer, protocol: NetProtocol): Target {
  if (address.length < 16) return { errno: EINVAL };
  const ip = ipaddr.fromByteArray([...address.subarray(4, 8)]);
  return { destination: { protocol, address: ip, port: portOf(address, protocol) } };
}

function portOf(address: Buffer, protocol: NetProtocol): number | null {
  return protocol === 'icmp' ? null : address.readUInt16BE(2);
}

/** The target of a datagram socket's send or connect. */
export function targetOf(socket: SocketKind, address: Buffer, purpose: 'send' | 'connect'): Target {
  const protocol: NetProtocol = isPing(socket) ? 'icmp' : 'udp';
  if (address.length < 2) return { errno: EINVAL };
  const family = address.readUInt16LE(0);
  if (family === AF_UNSPEC) {
    // connect: a disconnect. A send on an IPv4 socket: read as AF_INET
    // (udp_sendmsg() accepts AF_UNSPEC); on an IPv6 socket: no address.
    if (purpose === 'connect' || socket.family === AF_INET6) return { none: true };
    return ipv4At(address, protocol);
  }
  if (family === AF_INET) return ipv4At(address, protocol);
  if (family === AF_INET6 && socket.family === AF_INET6) {
    if (address.length < 24) return { errno: EINVAL };
    const ip = plainAddress(ipaddr.fromByteArray([...address.subarray(8, 24)]));
    return { destination: { protocol, address: ip, port: portOf(address, protocol) } };
  }
  return { errno: socket.family === AF_INET ? EAFNOSUPPORT : EINVAL };
}

/**
 * The target of a TCP connect (tcp_v4_connect(), tcp_v6_connect(), a
 * v4-mapped address going to tcp_v4_connect()): AF_UNSPEC disconnects
 * (inet_stream_connect() → tcp_disconnect()); a family the socket does not
 * take is the kernel's EAFNOSUPPORT, a short address its EINVAL.
 */
export function streamTargetOf(socket: SocketKind, address: Buffer): Target {
  if (address.length < 2) return { errno: EINVAL };
  const family = address.readUInt16LE(0);
  if (family === AF_UNSPEC) return { none: true };
  if (socket.family === AF_INET) {
    if (address.length < 16) return { errno: EINVAL };
    if (family !== AF_INET) return { errno: EAFNOSUPPORT };
    return ipv4At(address, 'tcp');
  }
  if (address.length < 24) return { errno: EINVAL };
  if (family !== AF_INET6) return { errno: EAFNOSUPPORT };
  const ip = plainAddress(ipaddr.fromByteArray([...address.subarray(8, 24)]));
  return { destination: { protocol: 'tcp', address: ip, port: address.readUInt16BE(2) } };
}

/**
 * The answer for a target: null when the rules let it through (no rules:
 * nothing to check), those of every sandbox it is nested in included.
 */
export function refusal(policy: ModulePolicy, target: Target, byName = false): Answer | null {
  if ('errno' in target) return answer.errno(target.errno);
  if ('none' in target) return null;
  if (isSandboxDns(policy, target.destination)) return null;
  const views = [policy.net, ...(policy.enclosingNet ?? [])];
  for (const net of views) {
    if (net !== null && !reaches(net, target.destination, byName)) return answer.errno(EACCES);
  }
  return null;
}
