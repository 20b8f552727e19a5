// The file a random device open is answered with: the read end of a pipe
// (or, for O_RDWR, one end of a Unix stream socketpair) whose other end the
// supervisor's main thread keeps full of the open's keystream. Any amount
// can be read; the feeder writes as the reader drains, through libuv
// (net.Socket on the fd: nonblocking writes, woken by epoll), and stops
// when the reader's end is closed (EPIPE; Node ignores SIGPIPE). Main thread
// only: the dispatch worker's loop never returns to its event loop.
import { Socket } from 'node:net';
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
  // The feeder must not keep the supervising process alive.
  socket.unref();
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

export interface DeviceFile {
  /** The fd to inject (the caller's end); the caller of `deviceFile` owns it. */
  readonly fd: number;
}

/**
 * A new endless file of the keystream under `key`: its reader's end (to
 * inject), nonblocking if `nonblock`. Throws FeedError.
 */
export function deviceFile(key: Buffer, readWrite: boolean, nonblock: boolean): DeviceFile {
  const [callerEnd, ourEnd] = fdPair(readWrite);
  try {
    if (nonblock) {
      const result = trySyscall('fcntl', callerEnd, F_SETFL, O.O_NONBLOCK);
      if (result < 0) throw new FeedError('fcntl(F_SETFL)', -result);
    }
    feed(ourEnd, key, readWrite);
  } catch (error) {
    close(callerEnd);
    close(ourEnd);
    throw error;
  }
  return { fd: callerEnd };
}

export { FeedError };
