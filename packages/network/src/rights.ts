// A Unix message that carries descriptors (SCM_RIGHTS) is sent by the
// sandbox's reaper, not by the worker: the kernel charges descriptors in
// flight to the sender and holds them to the sender's RLIMIT_NOFILE unless
// it has CAP_SYS_RESOURCE or CAP_SYS_ADMIN (too_many_unix_fds() in
// net/unix/af_unix.c). Sent by the worker they were bounded by the
// supervisor's limit (or by nothing: it keeps CAP_SYS_ADMIN to attach
// credentials); the reaper has the sandbox's limit and no capabilities.
//
// The reaper is another process than the caller: a receiver with
// SO_PASSCRED sees the reaper's pid (and the sandbox's uid and gid), which
// the kernel attaches for a sender that gives no credentials
// (maybe_add_creds()). Credentials the caller gives itself name its own pid,
// which the reaper may not claim without CAP_SYS_ADMIN (scm_check_creds()
// in net/core/scm.c): such a message is refused (EPERM) rather than sent
// with another pid.
import type { OnBehalf } from '@sandlock/dispatch/module';
import {
  BROKER_MAX_FDS,
  brokeredPayloadRoom,
  brokeredSendmsg,
  ERRNO,
  F_DUPFD_CLOEXEC,
  MSG_DONTWAIT,
  SOCK_STREAM,
} from '@sandlock/sys';
import type { SocketKind } from './sockets.js';
import { viaDescriptor } from './unix.js';

const { EMSGSIZE } = ERRNO;

/** Where the message goes: the connected peer, an address as it is, or a pinned socket file. */
export type RightsDestination =
  | { readonly kind: 'peer' }
  | { readonly kind: 'address'; readonly address: Buffer }
  | { readonly kind: 'file'; readonly fd: number };

/** A copy of `fd` (of this process) kept by the reaper until {@link dropInReaper}: its number there, or -errno. */
function keepInReaper(broker: OnBehalf, fd: number): number {
  return broker.call({ syscall: 'fcntl', args: [{ fd }, F_DUPFD_CLOEXEC, 0] }).result;
}

function dropInReaper(broker: OnBehalf, fd: number): void {
  broker.call({ syscall: 'close', args: [fd] });
}

/**
 * sendmsg(fd, message with `rights` in one SCM_RIGHTS record, flags) made by
 * the reaper, without waiting: the raw result. `fd` and `rights` are
 * descriptors of this process (the caller's, duplicated); several
 * SCM_RIGHTS records of the caller's are one here, as the receiver gets
 * them (scm_fp_copy() gathers them, scm_detach_fds() hands them out in
 * one). A stream socket sends what fits one request (a short write); a
 * datagram that does not fit fails with EMSGSIZE.
 */
export function sendWithRights(
  broker: OnBehalf,
  fd: number,
  socket: SocketKind,
  data: Buffer,
  destination: RightsDestination,
  rights: readonly number[],
  flags: number,
): number {
  const kept: number[] = [];
  try {
    let name: Buffer | null = null;
    if (destination.kind === 'address') name = destination.address;
    if (destination.kind === 'file') {
      const copy = keepInReaper(broker, destination.fd);
      if (copy < 0) return copy;
      kept.push(copy);
      name = viaDescriptor(copy);
    }
    let on: number | { inReaper: number } = fd;
    if (new Set([fd, ...rights]).size > BROKER_MAX_FDS) {
      const copy = keepInReaper(broker, fd);
      if (copy < 0) return copy;
      kept.push(copy);
      on = { inReaper: copy };
    }
    const room = brokeredPayloadRoom({ name, fds: rights });
    let payload = data;
    if (data.length > room) {
      if (socket.type !== SOCK_STREAM) return -EMSGSIZE;
      payload = data.subarray(0, room);
    }
    const request = brokeredSendmsg(on, { name, payload, fds: rights }, flags | MSG_DONTWAIT);
    return broker.call(request).result;
  } finally {
    for (const copy of kept) dropInReaper(broker, copy);
  }
}
