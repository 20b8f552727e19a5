// The one place a connect's or a datagram's destination may be changed
// after it was checked and before it is used.
import type { WorkerSession } from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import { realDestination } from './port-space.js';
import { isPing, type SocketKind } from './sockets.js';

/**
 * The address the reaper connects to for a TCP connect to `address` (the
 * caller's sockaddr_in or sockaddr_in6, copied and checked against the
 * rules): under portRemap, a loopback port the sandbox bound elsewhere is
 * reached at its real port (the reaper's Landlock connect rules apply to
 * that port). The rules are checked on the address the sandbox named,
 * before this.
 */
export function destinationFor(session: WorkerSession<ModulePolicy>, address: Buffer): Buffer {
  return session.policy.binds.remap ? realDestination(session, 'tcp', address) : address;
}

/**
 * The address a UDP datagram (or a UDP connect) to `address` goes to, as
 * {@link destinationFor}: under portRemap, a loopback port the sandbox bound
 * elsewhere is reached at its real port. Ping sockets have no ports.
 */
export function datagramDestinationFor(
  session: WorkerSession<ModulePolicy>,
  socket: SocketKind,
  address: Buffer,
): Buffer {
  if (!session.policy.binds.remap || isPing(socket)) return address;
  return realDestination(session, 'udp', address);
}
