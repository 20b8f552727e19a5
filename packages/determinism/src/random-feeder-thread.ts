// The feeder thread: keeps the pipes (or, for O_RDWR, the Unix stream
// socketpairs) random device opens are answered with full of their keystream,
// once the main thread made them and put their first 64 KiB in
// (./random-feeder.ts). Any amount can be read; it writes as the reader
// drains, through libuv (net.Socket on the fd: nonblocking writes, woken by
// epoll), and stops when the reader's end is closed (EPIPE; Node ignores
// SIGPIPE).
//
// A thread of its own: the dispatch worker's loop never returns to its event
// loop, and on the supervisor's main thread eight `cat /dev/urandom` kept
// timers, memory checks and every sandbox's output waiting for 50–190 ms at
// the 99th percentile (docs/benchmarks.md). Here a drained pipe delays only
// the other pipes' refills. It loads Node's own modules only (no koffi).
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { parentPort } from 'node:worker_threads';
import { Keystream } from './random-stream.js';

/** Bytes encrypted per write: the keystream is made as it is consumed. */
const CHUNK = 64 * 1024;

/** Feed `fd` (nonblocking, now this thread's): `rest` first, then the keystream under `key` from `fromBlock`. */
export interface FeedRequest {
  readonly fd: number;
  readonly key: Uint8Array;
  readonly fromBlock: number;
  readonly rest: Uint8Array;
  readonly readWrite: boolean;
}

function feed({ fd, key, fromBlock, rest, readWrite }: FeedRequest): void {
  const stream = new Keystream(Buffer.from(key), fromBlock);
  // The reader's end keeps the mode the caller asked for: our nonblocking
  // end is its own open file description.
  const socket = new Socket({ fd, readable: readWrite, writable: true });
  const pump = (): void => {
    while (!socket.destroyed && socket.write(stream.take(CHUNK)));
  };
  socket.on('drain', pump);
  // EPIPE/ECONNRESET: the reader closed its end.
  socket.on('error', () => socket.destroy());
  // What a process writes to an O_RDWR random device is dropped, as the
  // kernel mixes it into the pool without changing what reads return.
  if (readWrite) socket.on('data', () => {});
  if (rest.length === 0 || socket.write(Buffer.from(rest))) pump();
}

parentPort?.on('message', (request: FeedRequest) => {
  try {
    feed(request);
  } catch {
    // Not a descriptor libuv can write to (cannot happen): its reader sees the end of the file.
    try {
      closeSync(request.fd);
    } catch {}
  }
});
