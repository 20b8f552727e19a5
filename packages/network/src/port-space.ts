// A sandbox's private port space (portRemap): which real port each port it
// bound stands for. Kept in the worker thread that serves the sandbox, per
// session, and dropped when the session ends (the binds module's
// sessionEnd). At most one entry per port and protocol: 2 × 65536 a sandbox.
import type { SessionInfo } from '@sandlock/dispatch/module';
import type { BindProtocol } from '@sandlock/policy';
import { AF_INET, AF_INET6, AF_UNSPEC } from '@sandlock/sys';
import { loopbackName, portOffset, withPort } from './bind-sockets.js';

/** A port the sandbox bound under portRemap: the port it asked for and the one the kernel holds. */
export interface PortMapping {
  readonly protocol: BindProtocol;
  /** The port the sandbox asked for, and sees. */
  readonly virtual: number;
  /** The port bound on the host: the same where it was free. */
  readonly real: number;
}

/** One sandbox's ports: virtual → real and back, per protocol. */
export class PortSpace {
  private readonly toReal = { tcp: new Map<number, number>(), udp: new Map<number, number>() };
  private readonly toVirtual = { tcp: new Map<number, number>(), udp: new Map<number, number>() };

  /** The real port `virtual` was bound to, if the sandbox bound it. */
  realOf(protocol: BindProtocol, virtual: number): number | undefined {
    return this.toReal[protocol].get(virtual);
  }

  /** The virtual port the sandbox sees for a real port it holds, if it does. */
  virtualOf(protocol: BindProtocol, real: number): number | undefined {
    return this.toVirtual[protocol].get(real);
  }

  /**
   * Records a bind: `virtual` is now `real`. A mapping that named `real`
   * before is gone (the kernel let it be bound again: its socket is closed).
   * Whether anything changed.
   */
  record(protocol: BindProtocol, virtual: number, real: number): boolean {
    if (this.toReal[protocol].get(virtual) === real) return false;
    const before = this.toVirtual[protocol].get(real);
    if (before !== undefined) this.toReal[protocol].delete(before);
    const previous = this.toReal[protocol].get(virtual);
    if (previous !== undefined) this.toVirtual[protocol].delete(previous);
    this.toReal[protocol].set(virtual, real);
    this.toVirtual[protocol].set(real, virtual);
    return true;
  }

  /** Every port bound under portRemap since the sandbox started, the remapped ones and the others. */
  list(): PortMapping[] {
    const out: PortMapping[] = [];
    for (const protocol of ['tcp', 'udp'] as const) {
      for (const [virtual, real] of this.toReal[protocol]) out.push({ protocol, virtual, real });
    }
    return out.sort((a, b) => a.virtual - b.virtual || a.protocol.localeCompare(b.protocol));
  }
}

/** The port spaces of the sessions this thread serves, by session id. */
const spaces = new Map<number, PortSpace>();

/** The port space of a session (made on first use). */
export function portSpaceOf(session: Pick<SessionInfo, 'id'>): PortSpace {
  let space = spaces.get(session.id);
  if (space === undefined) {
    space = new PortSpace();
    spaces.set(session.id, space);
  }
  return space;
}

/** Forgets a session's port space (its sandbox has ended). */
export function dropPortSpace(session: Pick<SessionInfo, 'id'>): void {
  spaces.delete(session.id);
}

/**
 * The real port behind `virtualPort` for a connection or a datagram from
 * this sandbox to a port on this host (a loopback address): the port its
 * own socket holds, or `virtualPort` itself where the sandbox bound no such
 * port (under portRemap or not). Call it in the worker thread that serves
 * the session.
 */
export function realPort(
  session: Pick<SessionInfo, 'id'>,
  protocol: BindProtocol,
  virtualPort: number,
): number {
  return spaces.get(session.id)?.realOf(protocol, virtualPort) ?? virtualPort;
}

/**
 * The address a connection (or a datagram) from this sandbox to `address`
 * (a sockaddr_in or sockaddr_in6, copied and checked against the rules with
 * its virtual port) must reach: the same, with the real port where it names
 * a loopback address and a port the sandbox bound elsewhere (portRemap).
 */
export function realDestination(
  session: Pick<SessionInfo, 'id'>,
  protocol: BindProtocol,
  address: Buffer,
): Buffer {
  const family = address.length >= 2 ? address.readUInt16LE(0) : AF_UNSPEC;
  if ((family !== AF_INET && family !== AF_INET6) || !loopbackName(family, address)) {
    return address;
  }
  const virtual = address.readUInt16BE(portOffset(family));
  const real = realPort(session, protocol, virtual);
  return real === virtual ? address : withPort(family, address, real);
}

/** {@link realPort}'s inverse: the port the sandbox sees for a real port on this host. */
export function virtualPort(
  session: Pick<SessionInfo, 'id'>,
  protocol: BindProtocol,
  realPort: number,
): number {
  return spaces.get(session.id)?.virtualOf(protocol, realPort) ?? realPort;
}

// /proc/net/{tcp,tcp6,udp,udp6}: one socket a line after a header,
// `sl local_address rem_address st …`, an address being the IP as 32-bit
// words in hex (host order) and the port as 4 hex digits
// (tcp4_seq_show()/get_tcp4_sock() in net/ipv4/tcp_ipv4.c, udp4_format_sock()
// in net/ipv4/udp.c, and their IPv6 versions).
const ENTRY =
  /^(\s*\d+:\s+)([0-9A-F]{8}|[0-9A-F]{32}):([0-9A-F]{4})(\s+)([0-9A-F]{8}|[0-9A-F]{32}):([0-9A-F]{4})/;

/**
 * Whether an address of /proc/net is a loopback one: 127.0.0.0/8 (its first
 * byte is the low byte of the word, printed last on a little-endian host),
 * ::1 or ::ffff:127.x.y.z.
 */
function loopback(hex: string): boolean {
  if (hex.length === 8) return hex.endsWith('7F');
  if (hex === '00000000000000000000000001000000') return true;
  return hex.startsWith('0000000000000000FFFF0000') && hex.endsWith('7F');
}

const hexPort = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');

/**
 * A /proc/net/{tcp,tcp6,udp,udp6} file's text as the sandbox sees it: the
 * local port of each of its sockets virtual, and a remote port on a
 * loopback address too (its connections to its own servers). `protocol` is
 * the file's (`tcp` for tcp and tcp6). The text is otherwise unchanged.
 */
export function translateProcNet(text: string, space: PortSpace, protocol: BindProtocol): string {
  const shown = (port: string) => {
    const virtual = space.virtualOf(protocol, Number.parseInt(port, 16));
    return virtual === undefined ? port : hexPort(virtual);
  };
  return text
    .split('\n')
    .map((line) =>
      line.replace(
        ENTRY,
        (_, head, local, localPort, gap, remote, remotePort) =>
          `${head}${local}:${shown(localPort)}${gap}${remote}:${loopback(remote) ? shown(remotePort) : remotePort}`,
      ),
    )
    .join('\n');
}
