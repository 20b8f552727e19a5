// sendmsg(2) made by the reaper: the msghdr, its iovec and its control data
// are built inside the request's data, and the patches turn their offsets
// into the reaper's addresses and the SCM_RIGHTS descriptors into the
// reaper's copies. The sender is then the reaper: the kernel charges the
// descriptors in flight to its user and holds them to its RLIMIT_NOFILE
// (too_many_unix_fds() in net/unix/af_unix.c), and attaches its credentials
// for a receiver with SO_PASSCRED (maybe_add_creds()).

import type { BrokerPatch, BrokerRequest } from './broker.js';
import { BROKER_DATA_MAX } from './broker.js';
import {
  CMSGHDR_SIZE,
  cmsgLen,
  cmsgSpace,
  encodeCmsghdrInto,
  SCM_RIGHTS,
  SOL_SOCKET,
} from './structs/cmsghdr.js';
import { encodeIovecInto, IOVEC_OFFSETS, IOVEC_SIZE } from './structs/iovec.js';
import { encodeMsghdrInto, MSGHDR_OFFSETS, MSGHDR_SIZE } from './structs/msghdr.js';
import { BROKER_MAX_FDS, BROKER_PATCH } from './stub/script.js';

export interface BrokeredMessage {
  /** The destination address (msg_name), or none. */
  name?: Uint8Array | null;
  /** The payload, one iovec. */
  payload: Uint8Array;
  /** Descriptors of this process, sent in one SCM_RIGHTS record (the reaper's copies of them). */
  fds?: readonly number[];
  /** Other control records, as sendmsg takes them (CMSG_SPACE each), after the SCM_RIGHTS one. */
  control?: Uint8Array | null;
}

/** How much payload fits in one brokered sendmsg beside the rest of `message`. */
export function brokeredPayloadRoom(message: Omit<BrokeredMessage, 'payload'>): number {
  const fds = message.fds?.length ?? 0;
  const controlLength = (fds > 0 ? cmsgSpace(4 * fds) : 0) + (message.control?.length ?? 0);
  const patches = 2 + (message.name ? 1 : 0) + (controlLength > 0 ? 1 : 0) + fds;
  const fixed =
    MSGHDR_SIZE +
    IOVEC_SIZE +
    controlLength +
    (message.name?.length ?? 0) +
    1 +
    patches * BROKER_PATCH.size;
  return Math.max(0, BROKER_DATA_MAX - fixed);
}

/**
 * The broker request for `sendmsg(socket, message, flags)` made by the
 * reaper: `socket` a descriptor of this process, or `{ inReaper }` one the
 * reaper already holds (when the message's descriptors leave no room for
 * it). Throws a RangeError when it does not fit one request (see
 * {@link brokeredPayloadRoom}) or brings more than the broker's descriptors
 * (BROKER_MAX_FDS, the socket counted).
 */
export function brokeredSendmsg(
  socket: number | { inReaper: number },
  message: BrokeredMessage,
  flags: number,
): BrokerRequest {
  const fds = message.fds ?? [];
  const name = message.name ?? null;
  const control = message.control ?? null;
  const distinct = new Set(typeof socket === 'number' ? [socket, ...fds] : fds).size;
  if (distinct > BROKER_MAX_FDS) {
    throw new RangeError(
      `sandlock: a brokered sendmsg brings ${BROKER_MAX_FDS} descriptors at most`,
    );
  }
  const rights = fds.length > 0 ? cmsgSpace(4 * fds.length) : 0;
  const controlLength = rights + (control?.length ?? 0);
  const iovAt = MSGHDR_SIZE;
  const controlAt = iovAt + IOVEC_SIZE;
  const nameAt = controlAt + controlLength;
  const payloadAt = nameAt + (name?.length ?? 0);
  // One byte past the payload: an empty payload's base still points into the data.
  const data = Buffer.alloc(payloadAt + message.payload.length + 1);
  const patches: BrokerPatch[] = [
    { at: MSGHDR_OFFSETS.msg_iov, data: iovAt },
    { at: iovAt + IOVEC_OFFSETS.iov_base, data: payloadAt },
  ];
  encodeMsghdrInto(data, 0, {
    nameLen: name?.length ?? 0,
    iovLen: 1n,
    controlLen: BigInt(controlLength),
  });
  encodeIovecInto(data, iovAt, { base: 0n, len: BigInt(message.payload.length) });
  if (name !== null) {
    data.set(name, nameAt);
    patches.push({ at: MSGHDR_OFFSETS.msg_name, data: nameAt });
  }
  if (controlLength > 0) patches.push({ at: MSGHDR_OFFSETS.msg_control, data: controlAt });
  if (fds.length > 0) {
    encodeCmsghdrInto(data, controlAt, {
      len: BigInt(cmsgLen(4 * fds.length)),
      level: SOL_SOCKET,
      type: SCM_RIGHTS,
    });
    fds.forEach((fd, index) => {
      patches.push({ at: controlAt + CMSGHDR_SIZE + 4 * index, fd });
    });
  }
  if (control !== null) data.set(control, controlAt + rights);
  data.set(message.payload, payloadAt);
  if (data.length + patches.length * BROKER_PATCH.size > BROKER_DATA_MAX) {
    throw new RangeError(
      `sandlock: a brokered sendmsg of ${message.payload.length} bytes does not fit one request`,
    );
  }
  const on = typeof socket === 'number' ? { fd: socket } : socket.inReaper;
  return { syscall: 'sendmsg', args: [on, { data: 0 }, flags], data, patches };
}
