// The supervisor's side of the reaper's broker: system calls a sandbox's
// reaper runs on the supervisor's behalf (stub/asm/*.S, `broker`), so they
// have no more authority than the sandbox: the reaper's Landlock domain, its
// credentials, no capabilities. The wire format is BROKER_REQUEST
// (stub/script.ts).

import { SOCK_CLOEXEC, SOCK_SEQPACKET } from './constants.js';
import { ERRNO } from './errno.js';
import { SysError } from './errors.js';
import { POLLFD_SIZE, POLLIN, POLLNVAL, POLLOUT, poll } from './io.js';
import { addressOf, close, trySyscall } from './libc.js';
import { decodeScmRights, encodeScmRights } from './structs/cmsghdr.js';
import { encodeIovecInto, IOVEC_SIZE } from './structs/iovec.js';
import {
  decodeMsghdr,
  encodeMsghdrInto,
  MSG_CMSG_CLOEXEC,
  MSG_CTRUNC,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  MSG_TRUNC,
  MSGHDR_OFFSETS,
  MSGHDR_SIZE,
} from './structs/msghdr.js';
import { AF_UNIX } from './structs/sockaddr.js';
import {
  BROKER_ARG,
  BROKER_MAX_FDS,
  BROKER_PATCH,
  BROKER_REQUEST,
  BROKER_REQUEST_MAX,
  BROKER_RETURNS_FD,
} from './stub/script.js';
import { hostArch, syscallNumber } from './syscalls/index.js';

/**
 * One argument of a brokered syscall: an integer passed as it is (negative
 * ones in two's complement), a descriptor of this process (the reaper gets
 * its own copy), or the address of byte `data` of the request's data.
 */
export type BrokerArg = number | bigint | { fd: number } | { data: number };

/**
 * A value inside a request's data that the reaper changes before the call,
 * as it changes arguments: the u32 at byte `at` becomes the reaper's copy of
 * descriptor `fd` (a cmsg's SCM_RIGHTS); the u64 at byte `at` becomes the
 * address of byte `data` (a msghdr's pointers). What was there is
 * overwritten.
 */
export type BrokerPatch = { at: number; fd: number } | { at: number; data: number };

export interface BrokerRequest {
  /** A syscall name (numbered for hostArch(), the reaper's architecture) or number. */
  syscall: string | number;
  /** Up to six arguments; missing ones are 0. */
  args?: readonly BrokerArg[];
  /**
   * What `{ data }` arguments point into: paths, structs, and room for what
   * the syscall writes, which comes back in the reply. A syscall must not
   * write past its end (it is not copied back). At most
   * {@link BROKER_DATA_MAX} bytes.
   */
  data?: Uint8Array;
  /** The result is a descriptor, to be sent back (and closed in the reaper). */
  returnsFd?: boolean;
  /** Values inside `data` that name descriptors or addresses (at most {@link BROKER_PATCHES_MAX}). */
  patches?: readonly BrokerPatch[];
}

export interface BrokerReply {
  /** The syscall's result, or -errno (-EBADF or -EINVAL for a request the reaper refused). */
  result: number;
  /** With `returnsFd` and a result >= 0: the descriptor, close-on-exec in this process; else -1. */
  fd: number;
  /** The request's data as the syscall left it (patches applied). */
  data: Buffer;
}

/** The request's number, after its data. */
const NONCE_SIZE = 8;

/** Room for data in one request, less {@link BROKER_PATCH}.size for each patch. */
export const BROKER_DATA_MAX = BROKER_REQUEST_MAX - BROKER_REQUEST.data - NONCE_SIZE;

/** The most patches one request may have (a u16 in the request; its data must hold them). */
export const BROKER_PATCHES_MAX = 0xffff;

/** A broker call that got no reply: the reaper is gone, or did not answer in time. */
export class BrokerError extends Error {
  override readonly name = 'BrokerError';

  constructor(
    /**
     * `closed`: the reaper's end is closed (it exited); `timeout`: no reply
     * in time (a late reply is dropped by the next call, which knows it by
     * its number); `mismatch`: a reply of this request brought the wrong
     * descriptors. After a mismatch the socket is out of step (a late reply would seem to
     * answer the next request): close it.
     */
    readonly reason: 'closed' | 'timeout' | 'mismatch',
    message: string,
  ) {
    super(`sandlock: broker: ${message}`);
  }
}

/**
 * A SOCK_SEQPACKET socketpair for a broker, close-on-exec in this process:
 * pass `reaper` as the `brokerFd` of a `forkReaper` launch step, close it
 * once launch() has returned (the child has its copy), and call
 * {@link brokerCall} on `supervisor`. The reaper reads only SCM_RIGHTS from
 * its end: give neither end SO_PASSCRED, SO_PASSPIDFD or SO_PASSSEC.
 */
export function brokerSocketPair(): { supervisor: number; reaper: number } {
  const fds = Buffer.alloc(8);
  const result = trySyscall('socketpair', AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds);
  if (result < 0) throw new SysError('socketpair', -result);
  return { supervisor: fds.readInt32LE(0), reaper: fds.readInt32LE(4) };
}

const U64_LIMIT = 1n << 64n;
const I64_MIN = -(1n << 63n);
const { EINTR, EAGAIN, EPIPE, ECONNRESET } = ERRNO;

interface Encoded {
  message: Buffer;
  fds: number[];
  /** Where the caller's data starts in the message (after the patch table). */
  start: number;
}

/** The last request's number (per thread: each worker has its own copy of this module). */
let nextNonce = 0n;

function literal(value: number | bigint, what: string): bigint {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new RangeError(`sandlock: broker ${what} must be an integer, got ${value}`);
  }
  const big = BigInt(value);
  if (big < I64_MIN || big >= U64_LIMIT) {
    throw new RangeError(`sandlock: broker ${what} does not fit in 64 bits: ${big}`);
  }
  return BigInt.asUintN(64, big);
}

function encodeRequest(request: BrokerRequest): Encoded {
  const args = request.args ?? [];
  const data = request.data ?? new Uint8Array(0);
  const patches = request.patches ?? [];
  if (args.length > 6) {
    throw new RangeError(`sandlock: a broker request has 6 arguments at most, got ${args.length}`);
  }
  if (patches.length > BROKER_PATCHES_MAX) {
    throw new RangeError(`sandlock: a broker request has ${BROKER_PATCHES_MAX} patches at most`);
  }
  // The patch table starts the data: the caller's data follows it.
  const start = BROKER_REQUEST.data + patches.length * BROKER_PATCH.size;
  if (data.length + patches.length * BROKER_PATCH.size > BROKER_DATA_MAX) {
    throw new RangeError(
      `sandlock: broker request data is ${data.length} bytes and ${patches.length} patches, more than ${BROKER_DATA_MAX} bytes`,
    );
  }
  const nr =
    typeof request.syscall === 'string'
      ? syscallNumber(request.syscall, hostArch())
      : request.syscall;
  // The request's own number after its data, which the reaper echoes: a
  // late reply to an earlier request is never taken for this one's.
  const message = Buffer.alloc(start + data.length + NONCE_SIZE);
  message.writeBigUInt64LE(literal(nr, 'syscall number'), BROKER_REQUEST.nr);
  message.set(data, start);
  nextNonce = (nextNonce + 1n) & 0xffffffffffffffffn;
  message.writeBigUInt64LE(nextNonce, message.length - NONCE_SIZE);
  message.writeUInt16LE(patches.length, BROKER_REQUEST.patches);
  if (request.returnsFd) message.writeBigUInt64LE(BigInt(BROKER_RETURNS_FD), BROKER_REQUEST.flags);
  const fds: number[] = [];
  const slotOf = (fd: number, what: string): number => {
    if (!Number.isInteger(fd) || fd < 0) {
      throw new RangeError(`sandlock: broker ${what} is not a descriptor: ${fd}`);
    }
    let slot = fds.indexOf(fd);
    if (slot < 0) slot = fds.push(fd) - 1;
    if (fds.length > BROKER_MAX_FDS) {
      throw new RangeError(`sandlock: a broker request brings ${BROKER_MAX_FDS} fds at most`);
    }
    return slot;
  };
  const offsetOf = (at: number, what: string): number => {
    if (!Number.isInteger(at) || at < 0 || at >= data.length) {
      throw new RangeError(
        `sandlock: broker ${what} points at byte ${at} of ${data.length} bytes of data`,
      );
    }
    return start + at;
  };
  args.forEach((arg, index) => {
    let value: bigint;
    let kind: number = BROKER_ARG.literal;
    if (typeof arg === 'object' && 'fd' in arg) {
      value = BigInt(slotOf(arg.fd, `argument ${index}`));
      kind = BROKER_ARG.fd;
    } else if (typeof arg === 'object') {
      value = BigInt(offsetOf(arg.data, `argument ${index}`));
      kind = BROKER_ARG.data;
    } else {
      value = literal(arg, `argument ${index}`);
    }
    message.writeBigUInt64LE(value, BROKER_REQUEST.args + index * 8);
    message[BROKER_REQUEST.kinds + index] = kind;
  });
  patches.forEach((patch, index) => {
    const entry = BROKER_REQUEST.data + index * BROKER_PATCH.size;
    const width = 'fd' in patch ? 4 : 8;
    if (!Number.isInteger(patch.at) || patch.at < 0 || patch.at + width > data.length) {
      throw new RangeError(
        `sandlock: broker patch ${index} at byte ${patch.at} does not fit in ${data.length} bytes of data`,
      );
    }
    const at = start + patch.at;
    message.writeUInt32LE(at, entry + BROKER_PATCH.at);
    if ('fd' in patch) {
      message.writeUInt32LE(BROKER_ARG.fd, entry + BROKER_PATCH.kind);
      message.writeUInt32LE(slotOf(patch.fd, `patch ${index}`), at);
    } else {
      message.writeUInt32LE(BROKER_ARG.data, entry + BROKER_PATCH.kind);
      message.writeBigUInt64LE(BigInt(offsetOf(patch.data, `patch ${index}`)), at);
    }
  });
  return { message, fds, start };
}

/**
 * A msghdr with one iovec over `buffer` and `control` (both kept alive by
 * the caller for the duration of the call), and the buffer holding both.
 */
function messageHeader(buffer: Buffer, length: number, control: Buffer | null): Buffer {
  const header = Buffer.alloc(MSGHDR_SIZE + IOVEC_SIZE);
  encodeIovecInto(header, MSGHDR_SIZE, { base: addressOf(buffer), len: BigInt(length) });
  encodeMsghdrInto(header, 0, {
    iov: addressOf(header) + BigInt(MSGHDR_SIZE),
    iovLen: 1n,
    control: control ? addressOf(control) : 0n,
    controlLen: BigInt(control?.length ?? 0),
  });
  return header;
}

/** Waits for `events` on `fd` until `deadline` (a performance.now() value); whether they came. */
function waitFor(fd: number, events: number, deadline: number): boolean {
  const pollfd = Buffer.alloc(POLLFD_SIZE);
  pollfd.writeInt32LE(fd, 0);
  pollfd.writeInt16LE(events, 4);
  for (;;) {
    const left = Math.max(0, Math.ceil(deadline - performance.now()));
    const ready = poll(pollfd, 1, left);
    if (ready === -EINTR) continue;
    if (ready < 0) throw new SysError('poll', -ready);
    if (ready === 0) return false;
    if (pollfd.readInt16LE(6) & POLLNVAL) throw new SysError('poll', ERRNO.EBADF);
    return true;
  }
}

// The reply's receive side, reused: brokerCall is synchronous, and each
// worker thread has its own copy of this module.
const replyBuffer = Buffer.alloc(BROKER_REQUEST_MAX);
const replyControl = Buffer.alloc(encodeScmRights(new Array(BROKER_MAX_FDS).fill(0)).length);
const replyHeader = messageHeader(replyBuffer, replyBuffer.length, replyControl);

function send(socket: number, encoded: Encoded, deadline: number): void {
  const control = encoded.fds.length > 0 ? encodeScmRights(encoded.fds) : null;
  const header = messageHeader(encoded.message, encoded.message.length, control);
  for (;;) {
    const sent = trySyscall('sendmsg', socket, header, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) return;
    if (sent === -EPIPE || sent === -ECONNRESET) {
      throw new BrokerError('closed', 'the reaper has closed its end');
    }
    if (sent !== -EAGAIN && sent !== -EINTR) throw new SysError('sendmsg', -sent);
    if (sent === -EAGAIN && !waitFor(socket, POLLOUT, deadline)) {
      throw new BrokerError('timeout', 'the reaper takes no request');
    }
  }
  // `control` and `header` stay referenced until sendmsg has copied them.
}

/** One reply: its length and the descriptors it brought. */
function receive(socket: number, deadline: number): { length: number; fds: number[] } {
  for (;;) {
    if (!waitFor(socket, POLLIN, deadline)) {
      throw new BrokerError('timeout', 'no reply from the reaper in time');
    }
    // recvmsg(2) sets msg_controllen to what it filled: reset it each time.
    replyHeader.writeBigUInt64LE(BigInt(replyControl.length), MSGHDR_OFFSETS.msg_controllen);
    const length = trySyscall('recvmsg', socket, replyHeader, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (length === -EAGAIN || length === -EINTR) continue;
    if (length < 0) throw new SysError('recvmsg', -length);
    const header = decodeMsghdr(replyHeader);
    const fds = decodeScmRights(replyControl, Number(header.controlLen));
    if (length === 0) {
      for (const fd of fds) close(fd);
      throw new BrokerError('closed', 'the reaper has closed its end');
    }
    if (header.flags & (MSG_TRUNC | MSG_CTRUNC)) {
      for (const fd of fds) close(fd);
      throw new BrokerError('mismatch', 'the reply was truncated');
    }
    return { length, fds };
  }
}

/**
 * Has the reaper behind `socket` (the supervisor's end of a
 * {@link brokerSocketPair}) run one syscall, and returns its result, waiting
 * up to `timeoutMs` for it. Synchronous: usable from a worker thread. The
 * reaper answers a socket's requests one at a time and in order, inline in
 * its loop (it reaps and forwards signals in between): ask only for calls
 * that do not block, and serialize the calls on one socket (one caller, or a
 * lock). A reply is known by the request's number, echoed: one that comes
 * after its call gave up (a timeout) is dropped by the next call.
 *
 * Throws a {@link BrokerError} when no reply comes (the reaper is gone, or
 * the timeout), a RangeError for a request that does not fit the format.
 */
export function brokerCall(socket: number, request: BrokerRequest, timeoutMs: number): BrokerReply {
  const encoded = encodeRequest(request);
  const deadline = performance.now() + timeoutMs;
  send(socket, encoded, deadline);
  const { message } = encoded;
  for (;;) {
    const { length, fds } = receive(socket, deadline);
    const reply = replyBuffer.subarray(0, length);
    // The reaper echoes the request: the fields after the result, and the
    // number after the data, must be this request's. Another is a late
    // reply to a request given up on (a timeout): dropped.
    const ours =
      length === message.length &&
      reply.subarray(length - NONCE_SIZE).equals(message.subarray(message.length - NONCE_SIZE)) &&
      reply
        .subarray(BROKER_REQUEST.args, BROKER_REQUEST.data)
        .equals(message.subarray(BROKER_REQUEST.args, BROKER_REQUEST.data));
    if (!ours) {
      for (const fd of fds) close(fd);
      continue;
    }
    const result = Number(reply.readBigInt64LE(BROKER_REQUEST.nr));
    const wantFd = request.returnsFd === true && result >= 0;
    if (fds.length !== (wantFd ? 1 : 0)) {
      for (const fd of fds) close(fd);
      throw new BrokerError('mismatch', 'the reply does not answer the request');
    }
    return {
      result,
      fd: wantFd ? fds[0]! : -1,
      data: Buffer.from(reply.subarray(encoded.start, length - NONCE_SIZE)),
    };
  }
}
