// The feeder thread: makes the file a random device open is answered with,
// the read end of a pipe (or, for O_RDWR, one end of a Unix stream
// socketpair) whose other end it keeps full of the open's keystream. Any
// amount can be read; it writes as the reader drains, through libuv
// (net.Socket on the fd: nonblocking writes, woken by epoll), and stops when
// the reader's end is closed (EPIPE; Node ignores SIGPIPE).
//
// A thread of its own (./random-feeder.ts starts it): the dispatch worker's
// loop never returns to its event loop, and on the supervisor's main thread
// eight `cat /dev/urandom` kept timers, memory checks and every sandbox's
// output waiting for up to 0.9 s (docs/benchmarks.md). Here a drained pipe
// delays only the other pipes' refills.
import { Socket } from 'node:net';
import { parentPort } from 'node:worker_threads';
import { close, hostArch, openFlags, SOCK_STREAM, trySyscall } from '@sandlock/sys';
import { Keystream } from './random-stream.js';

const O = openFlags(hostArch());
// include/uapi/asm-generic/fcntl.h, include/uapi/linux/fcntl.h
const F_SETFL = 4;
const AF_UNIX = 1;
/** Bytes encrypted per write: the keystream is made as it is consumed. */
const CHUNK = 64 * 1024;
const EAGAIN = 11;
/**
 * Written before the open is answered: a default pipe's capacity (pipe(7)).
 * The pipe is not enlarged: whatever it holds is encrypted at once, and a
 * 1 MiB pipe made each open cost ~1 ms (64 KiB: ~0.2 ms) for no gain in
 * throughput (64 MiB in ~0.15 s either way, Linux 6.18).
 */
const PREFILL = 64 * 1024;

/** What the main thread asks for: a device file of the keystream under `key`. */
export interface FeedRequest {
  readonly id: number;
  readonly key: Uint8Array;
  readonly readWrite: boolean;
  readonly nonblock: boolean;
}

/** The caller's end (the fd to inject, now the main thread's), or why there is none. */
export type FeedReply =
  | { readonly id: number; readonly fd: number }
  | { readonly id: number; readonly what: string; readonly errno: number };

class FeedError extends Error {
  constructor(
    readonly what: string,
    readonly errno: number,
  ) {
    super(`sandlock: ${what} failed: errno ${errno}`);
  }
}

/** Two new fds from pipe2 or socketpair, close-on-exec in the supervisor. */
function fdPair(readWrite: boolean): [number, number] {
  const fds = Buffer.alloc(8);
  const result = readWrite
    ? trySyscall('socketpair', AF_UNIX, SOCK_STREAM | O.O_CLOEXEC, 0, fds)
    : trySyscall('pipe2', fds, O.O_CLOEXEC);
  if (result < 0) throw new FeedError(readWrite ? 'socketpair' : 'pipe2', -result);
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}

/**
 * Writes the first PREFILL bytes into `fd` (made nonblocking), so that the
 * first reads never wait for the feeder; returns the bytes of the stream not
 * written yet (often none), or null when the reader is already gone.
 */
function prefill(fd: number, stream: Keystream): Buffer | null {
  const result = trySyscall('fcntl', fd, F_SETFL, O.O_NONBLOCK);
  if (result < 0) throw new FeedError('fcntl(F_SETFL)', -result);
  // A nonblocking write may take part of the chunk (pipe(7)): the rest is returned.
  const chunk = stream.take(PREFILL);
  const count = trySyscall('write', fd, chunk, chunk.length);
  if (count === -EAGAIN) return chunk;
  return count >= 0 ? chunk.subarray(count) : null;
}

/** Feeds the keystream under `key` into `fd` until its reader is gone; takes ownership of `fd`. */
function feed(fd: number, key: Buffer, readWrite: boolean): void {
  const stream = new Keystream(key);
  const rest = prefill(fd, stream);
  if (rest === null) {
    close(fd);
    return;
  }
  // The reader's end keeps the mode the caller asked for: our nonblocking
  // end is its own open file description.
  const socket = new Socket({ fd, readable: readWrite, writable: true });
  const pump = (): void => {
    while (!socket.destroyed && socket.write(stream.take(CHUNK)));
  };
  socket.on('drain', pump);
  // EPIPE/ECONNRESET: the reader closed its end (or never got it).
  socket.on('error', () => socket.destroy());
  // What a process writes to an O_RDWR random device is dropped, as the
  // kernel mixes it into the pool without changing what reads return.
  if (readWrite) socket.on('data', () => {});
  if (rest.length === 0 || socket.write(rest)) pump();
}

/** A new endless file of the keystream under `key`: its reader's end, nonblocking if `nonblock`. */
function deviceFile(request: FeedRequest): number {
  const [callerEnd, ourEnd] = fdPair(request.readWrite);
  try {
    if (request.nonblock) {
      const result = trySyscall('fcntl', callerEnd, F_SETFL, O.O_NONBLOCK);
      if (result < 0) throw new FeedError('fcntl(F_SETFL)', -result);
    }
    feed(ourEnd, Buffer.from(request.key), request.readWrite);
  } catch (error) {
    close(callerEnd);
    close(ourEnd);
    throw error;
  }
  return callerEnd;
}

parentPort?.on('message', (request: FeedRequest) => {
  let reply: FeedReply;
  try {
    reply = { id: request.id, fd: deviceFile(request) };
  } catch (error) {
    if (!(error instanceof FeedError)) throw error;
    reply = { id: request.id, what: error.what, errno: error.errno };
  }
  parentPort?.postMessage(reply);
});
