// brokerCall()'s side of the broker protocol against a peer played by the
// test: replies are queued on the peer's end before the call, and the request
// read from it afterwards. The reaper's side runs in stub-broker.test.ts.

import { spawn } from 'node:child_process';
import { fstatSync, readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BROKER_DATA_MAX,
  BrokerError,
  type BrokerRequest,
  brokerCall,
  brokerSocketPair,
} from '../src/broker.js';
import { openFlags } from '../src/constants.js';
import { F_GETFD, FD_CLOEXEC, SO_TYPE, SOCK_SEQPACKET, SOL_SOCKET } from '../src/index.js';
import { addressOf, close, fcntl, openAt, syscall, trySyscall } from '../src/libc.js';
import { decodeScmRights, encodeScmRights } from '../src/structs/cmsghdr.js';
import { encodeIovecInto, IOVEC_SIZE } from '../src/structs/iovec.js';
import { decodeMsghdr, encodeMsghdrInto, MSGHDR_SIZE } from '../src/structs/msghdr.js';
import {
  BROKER_ARG,
  BROKER_PATCH,
  BROKER_REQUEST,
  BROKER_REQUEST_MAX,
  BROKER_RETURNS_FD,
} from '../src/stub/script.js';
import { hostArch, syscallNumber } from '../src/syscalls/index.js';

const O = openFlags(hostArch());

const open: number[] = [];
afterEach(() => {
  for (const fd of open.splice(0)) trySyscall('close', fd);
});

function pair() {
  const ends = brokerSocketPair();
  open.push(ends.supervisor, ends.reaper);
  return ends;
}

function msghdr(buffer: Buffer, control: Buffer | null): { header: Buffer; keep: Buffer[] } {
  const iovec = Buffer.alloc(IOVEC_SIZE);
  encodeIovecInto(iovec, 0, { base: addressOf(buffer), len: BigInt(buffer.length) });
  const header = Buffer.alloc(MSGHDR_SIZE);
  encodeMsghdrInto(header, 0, {
    iov: addressOf(iovec),
    iovLen: 1n,
    control: control ? addressOf(control) : 0n,
    controlLen: BigInt(control?.length ?? 0),
  });
  return { header, keep: [iovec, buffer, ...(control ? [control] : [])] };
}

/** Queues `message` (with `fds`) for the other end to receive. */
function queue(socket: number, message: Buffer, fds: readonly number[] = []): void {
  const { header } = msghdr(message, fds.length ? encodeScmRights(fds) : null);
  syscall('sendmsg', socket, header, 0);
}

/** The next message on `socket`, and the descriptors it brought. */
function take(socket: number): { message: Buffer; fds: number[] } {
  const buffer = Buffer.alloc(BROKER_REQUEST_MAX);
  const control = Buffer.alloc(64);
  const { header } = msghdr(buffer, control);
  const length = syscall('recvmsg', socket, header, 0x40 /* MSG_DONTWAIT */);
  const fds = decodeScmRights(control, Number(decodeMsghdr(header).controlLen));
  open.push(...fds);
  return { message: buffer.subarray(0, length), fds };
}

/**
 * The reply to the next call of the same request: `message` (what the call
 * before it sent) echoed with the result, the data, and the next call's
 * number (each call numbers its request one more than the last, after its data).
 */
function reply(message: Buffer, result: bigint, data?: Buffer): Buffer {
  const answer = Buffer.from(message);
  answer.writeBigInt64LE(result, BROKER_REQUEST.nr);
  data?.copy(answer, BROKER_REQUEST.data);
  const at = answer.length - 8;
  answer.writeBigUInt64LE(answer.readBigUInt64LE(at) + 1n, at);
  return answer;
}

/** The request brokerCall sends, found by a call that times out on a silent peer. */
function sentBytes(request: BrokerRequest): { message: Buffer; fds: number[] } {
  const { supervisor, reaper } = pair();
  expect(() => brokerCall(supervisor, request, 0)).toThrow(BrokerError);
  return take(reaper);
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

function brokerError(call: () => unknown): BrokerError {
  try {
    call();
  } catch (error) {
    if (error instanceof BrokerError) return error;
    throw error;
  }
  throw new Error('no BrokerError');
}

describe('brokerSocketPair', () => {
  it('makes a close-on-exec SOCK_SEQPACKET pair', () => {
    const { supervisor, reaper } = pair();
    for (const fd of [supervisor, reaper]) {
      expect(fcntl(fd, F_GETFD) & FD_CLOEXEC).toBe(FD_CLOEXEC);
      const type = Buffer.alloc(4);
      const length = Buffer.alloc(4);
      length.writeUInt32LE(4);
      syscall('getsockopt', fd, SOL_SOCKET, SO_TYPE, type, length);
      expect(type.readInt32LE(0)).toBe(SOCK_SEQPACKET);
      expect(fstatSync(fd).isSocket()).toBe(true);
    }
  });
});

describe('brokerCall', () => {
  it('encodes the syscall, the three kinds of argument, the flag and the data', () => {
    const dir = openAt('/', O.O_PATH | O.O_CLOEXEC);
    open.push(dir);
    const data = Buffer.from('name\0....');
    const { message, fds } = sentBytes({
      syscall: 'openat',
      args: [{ fd: dir }, { data: 0 }, -100, 2n ** 64n - 1n, { fd: dir }, { data: 5 }],
      data,
      returnsFd: true,
    });
    expect(message.length).toBe(BROKER_REQUEST.data + data.length + 8);
    expect(message.readBigUInt64LE(BROKER_REQUEST.nr)).toBe(BigInt(syscallNumber('openat')));
    const args = [0, 1, 2, 3, 4, 5].map((index) =>
      message.readBigUInt64LE(BROKER_REQUEST.args + index * 8),
    );
    const start = BigInt(BROKER_REQUEST.data);
    expect(args).toEqual([0n, start, 2n ** 64n - 100n, 2n ** 64n - 1n, 0n, start + 5n]);
    expect([...message.subarray(BROKER_REQUEST.kinds, BROKER_REQUEST.kinds + 6)]).toEqual([
      BROKER_ARG.fd,
      BROKER_ARG.data,
      BROKER_ARG.literal,
      BROKER_ARG.literal,
      BROKER_ARG.fd,
      BROKER_ARG.data,
    ]);
    expect(message.readUInt16LE(BROKER_REQUEST.patches)).toBe(0);
    expect(message.readBigUInt64LE(BROKER_REQUEST.flags)).toBe(BigInt(BROKER_RETURNS_FD));
    expect(message.subarray(BROKER_REQUEST.data, -8)).toEqual(data);
    // The same descriptor twice is sent once.
    expect(fds).toHaveLength(1);
    expect(fstatSync(fds[0]!).ino).toBe(fstatSync(dir).ino);
  });

  it('encodes patches: a table before the data, which moves the data offsets', () => {
    const dir = openAt('/', O.O_PATH | O.O_CLOEXEC);
    const other = openAt('/', O.O_PATH | O.O_CLOEXEC);
    open.push(dir, other);
    const data = Buffer.alloc(24, 0xee);
    const { message, fds } = sentBytes({
      syscall: 'sendmsg',
      args: [{ fd: dir }, { data: 0 }],
      data,
      patches: [
        { at: 8, data: 16 },
        { at: 16, fd: other },
        { at: 20, fd: dir },
      ],
    });
    const start = BROKER_REQUEST.data + 3 * BROKER_PATCH.size;
    expect(message.length).toBe(start + data.length + 8);
    expect(message.readUInt16LE(BROKER_REQUEST.patches)).toBe(3);
    const table = [0, 1, 2].map((index) => {
      const entry = BROKER_REQUEST.data + index * BROKER_PATCH.size;
      return [
        message.readUInt32LE(entry + BROKER_PATCH.at),
        message.readUInt32LE(entry + BROKER_PATCH.kind),
      ];
    });
    expect(table).toEqual([
      [start + 8, BROKER_ARG.data],
      [start + 16, BROKER_ARG.fd],
      [start + 20, BROKER_ARG.fd],
    ]);
    expect(message.readBigUInt64LE(BROKER_REQUEST.args + 8)).toBe(BigInt(start));
    // What the reaper patches: offsets into the message, indexes into the fds.
    expect(message.readBigUInt64LE(start + 8)).toBe(BigInt(start + 16));
    expect([message.readUInt32LE(start + 16), message.readUInt32LE(start + 20)]).toEqual([1, 0]);
    expect(message.subarray(start, start + 8)).toEqual(data.subarray(0, 8));
    expect(fds.map((fd) => fstatSync(fd).ino)).toEqual([dir, other].map((fd) => fstatSync(fd).ino));
  });

  it('returns the result, the descriptor and the data of the reply', () => {
    const { supervisor, reaper } = pair();
    const request: BrokerRequest = {
      syscall: 'openat',
      args: [-100, { data: 0 }, 0],
      data: Buffer.from('/\0\0\0'),
      returnsFd: true,
    };
    const { message } = sentBytes(request);
    const dir = openAt('/', O.O_PATH | O.O_CLOEXEC);
    open.push(dir);
    queue(reaper, reply(message, 7n, Buffer.from('/ok')), [dir]);
    const answer = brokerCall(supervisor, request, 10_000);
    open.push(answer.fd);
    expect(answer.result).toBe(7);
    expect(answer.data).toEqual(Buffer.from('/ok\0'));
    expect(answer.fd).not.toBe(dir);
    expect(fstatSync(answer.fd).ino).toBe(fstatSync(dir).ino);
    expect(fcntl(answer.fd, F_GETFD) & FD_CLOEXEC).toBe(FD_CLOEXEC);
  });

  it('gives -errno with no descriptor', () => {
    const { supervisor, reaper } = pair();
    const request: BrokerRequest = { syscall: 'getpid', returnsFd: true };
    queue(reaper, reply(sentBytes(request).message, -13n));
    expect(brokerCall(supervisor, request, 10_000)).toEqual({
      result: -13,
      fd: -1,
      data: Buffer.alloc(0),
    });
  });

  it('drops a reply that is not the request echoed, closing what it brought', () => {
    const { supervisor, reaper } = pair();
    const request: BrokerRequest = { syscall: 'getpid', args: [1] };
    const { message } = sentBytes(request);
    const dir = openAt('/', O.O_PATH | O.O_CLOEXEC);
    open.push(dir);
    // Another request's, a late reply to the call before (its number), a
    // short one: each dropped, then the call's own reply is taken.
    const other = reply(message, 0n);
    other.writeBigUInt64LE(2n, BROKER_REQUEST.args);
    const late = Buffer.from(message);
    queue(reaper, other, [dir]);
    queue(reaper, late, [dir]);
    queue(reaper, Buffer.alloc(4));
    queue(reaper, reply(message, 42n));
    const before = fdCount();
    expect(brokerCall(supervisor, request, 10_000).result).toBe(42);
    expect(fdCount()).toBe(before);
    // Only those: the next call waits for its own.
    expect(brokerError(() => brokerCall(supervisor, request, 20)).reason).toBe('timeout');
  });

  it('refuses its own reply bringing a descriptor not asked for, closing it', () => {
    const { supervisor, reaper } = pair();
    const request: BrokerRequest = { syscall: 'getpid', args: [1] };
    const { message } = sentBytes(request);
    const dir = openAt('/', O.O_PATH | O.O_CLOEXEC);
    open.push(dir);
    queue(reaper, reply(message, 0n), [dir]);
    const before = fdCount();
    expect(brokerError(() => brokerCall(supervisor, request, 10_000)).reason).toBe('mismatch');
    expect(fdCount()).toBe(before);
  });

  it('times out when no reply comes', () => {
    const { supervisor } = pair();
    const timeout = brokerError(() => brokerCall(supervisor, { syscall: 'getpid' }, 20));
    expect(timeout.reason).toBe('timeout');
  });

  it('says when the peer is gone, before the request or while it waits', async () => {
    const { supervisor, reaper } = pair();
    // A process that holds the peer's end, reads the request and ends.
    const holder = spawn('head', ['-c', '1'], { stdio: [reaper, 'ignore', 'ignore'] });
    const ended = new Promise((resolve) => holder.on('exit', resolve));
    close(reaper);
    open.splice(open.indexOf(reaper), 1);
    const waiting = brokerError(() => brokerCall(supervisor, { syscall: 'getpid' }, 10_000));
    expect(waiting.reason).toBe('closed');
    await ended;
    const before = brokerError(() => brokerCall(supervisor, { syscall: 'getpid' }, 10_000));
    expect(before.reason).toBe('closed');
  });

  it('refuses requests that do not fit the format', () => {
    const { supervisor } = pair();
    const call = (request: BrokerRequest) => () => brokerCall(supervisor, request, 10_000);
    expect(call({ syscall: 'getpid', args: [0, 0, 0, 0, 0, 0, 0] })).toThrow(/6 arguments/);
    expect(call({ syscall: 'getpid', data: Buffer.alloc(BROKER_DATA_MAX + 1) })).toThrow(
      /more than/,
    );
    expect(call({ syscall: 'getpid', args: [{ data: 4 }], data: Buffer.alloc(4) })).toThrow(
      /byte 4 of 4/,
    );
    expect(call({ syscall: 'getpid', args: [{ fd: -1 }] })).toThrow(/not a descriptor/);
    expect(call({ syscall: 'getpid', args: [1.5] })).toThrow(/integer/);
    expect(call({ syscall: 'getpid', args: [2n ** 64n] })).toThrow(/64 bits/);
    // Descriptors counted once each, from the arguments and the patches.
    const many = Array.from({ length: 253 }, (_, index) => ({ at: 0, fd: index }));
    expect(
      call({ syscall: 'getpid', args: [{ fd: 253 }], data: Buffer.alloc(4), patches: many }),
    ).toThrow(/253 fds at most/);
    expect(
      call({ syscall: 'getpid', data: Buffer.alloc(4), patches: [{ at: 0, data: 0 }] }),
    ).toThrow(/patch 0 at byte 0 does not fit in 4 bytes/);
    expect(
      call({ syscall: 'getpid', data: Buffer.alloc(8), patches: [{ at: 0, data: 8 }] }),
    ).toThrow(/byte 8 of 8/);
    expect(call({ syscall: 'getpid', data: Buffer.alloc(4), patches: [{ at: 1, fd: 0 }] })).toThrow(
      /patch 0 at byte 1/,
    );
    expect(
      call({
        syscall: 'getpid',
        data: Buffer.alloc(BROKER_DATA_MAX - 8),
        patches: [
          { at: 0, data: 0 },
          { at: 8, data: 0 },
        ],
      }),
    ).toThrow(/more than/);
    expect(call({ syscall: 'no_such_call' })).toThrow();
  });
});
