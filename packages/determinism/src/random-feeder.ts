// The files random device opens are answered with: the read end of a pipe
// (or, for O_RDWR, one end of a Unix stream socketpair) whose other end holds
// the open's keystream. Made here, on the supervisor's main thread, with the
// first 64 KiB written (bounded work per open, so that the first reads never
// wait); then the feeder thread (./random-feeder-thread.ts) keeps it full.
// The thread is started when a seeded sandbox is about to start
// (warmUpFeeder) or at the first open; it never keeps the process alive.
import { Worker } from 'node:worker_threads';
import {
  AF_UNIX,
  close,
  ERRNO,
  F_SETFL,
  hostArch,
  openFlags,
  SOCK_STREAM,
  trySyscall,
} from '@sandlock/sys';
import type { FeedRequest } from './random-feeder-thread.js';
import { CHACHA_BLOCK, Keystream } from './random-stream.js';

const O = openFlags(hostArch());
// include/uapi/asm-generic/fcntl.h, include/uapi/linux/fcntl.h
const { EAGAIN } = ERRNO;
/**
 * Written before the open is answered: a default pipe's capacity (pipe(7)).
 * The pipe is not enlarged: whatever it holds is encrypted at once, and a
 * 1 MiB pipe made each open cost ~1 ms (64 KiB: ~0.2 ms) for no gain in
 * throughput (64 MiB in ~0.15 s either way, Linux 6.18). A whole number of
 * keystream blocks, so that the feeder thread starts at a block.
 */
const PREFILL = 64 * 1024;

export class FeedError extends Error {
  constructor(
    readonly what: string,
    readonly errno: number,
  ) {
    super(`sandlock: ${what} failed: errno ${errno}`);
  }
}

function feederEntry(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts')
    ? new URL('./dev/random-feeder-thread.mjs', here)
    : new URL('./random-feeder-thread.js', here);
}

let feeder: Worker | null = null;

function started(): Worker {
  if (feeder !== null) return feeder;
  const worker = new Worker(feederEntry(), { name: 'sandlock-random-feeder' });
  // The pipes it feeds do not keep the process alive, nor does it.
  worker.unref();
  // Its pipes die with it (their readers see the end of the file); the next open starts another.
  const gone = () => {
    if (feeder === worker) feeder = null;
  };
  worker.on('error', gone);
  worker.on('exit', gone);
  feeder = worker;
  return worker;
}

/**
 * Starts the feeder thread now if it is not running: a thread takes a few
 * milliseconds to start, which the first refill would otherwise wait.
 */
export function warmUpFeeder(): void {
  started();
}

function setFlags(fd: number, flags: number): void {
  const result = trySyscall('fcntl', fd, F_SETFL, flags);
  if (result < 0) throw new FeedError('fcntl(F_SETFL)', -result);
}

/**
 * A new endless file of the keystream under `key`: the fd of its reader's
 * end (to inject; the caller owns it), nonblocking if `nonblock`, its first
 * 64 KiB already in. Throws a {@link FeedError}.
 */
export function deviceFile(key: Uint8Array, readWrite: boolean, nonblock: boolean): number {
  const fds = Buffer.alloc(8);
  const made = readWrite
    ? trySyscall('socketpair', AF_UNIX, SOCK_STREAM | O.O_CLOEXEC, 0, fds)
    : trySyscall('pipe2', fds, O.O_CLOEXEC);
  if (made < 0) throw new FeedError(readWrite ? 'socketpair' : 'pipe2', -made);
  const callerEnd = fds.readInt32LE(0);
  const ourEnd = fds.readInt32LE(4);
  try {
    if (nonblock) setFlags(callerEnd, O.O_NONBLOCK);
    setFlags(ourEnd, O.O_NONBLOCK);
    // A nonblocking write may take part of the chunk (pipe(7)): the feeder writes the rest.
    const first = new Keystream(Buffer.from(key)).take(PREFILL);
    const wrote = trySyscall('write', ourEnd, first, first.length);
    if (wrote < 0 && wrote !== -EAGAIN) throw new FeedError('write', -wrote);
    const request: FeedRequest = {
      fd: ourEnd,
      key,
      fromBlock: PREFILL / CHACHA_BLOCK,
      rest: new Uint8Array(first.subarray(Math.max(wrote, 0))),
      readWrite,
    };
    started().postMessage(request);
  } catch (error) {
    close(callerEnd);
    close(ourEnd);
    throw error;
  }
  return callerEnd;
}
