// The main thread's side of the feeder thread (./random-feeder-thread.ts),
// which makes and feeds the files random device opens are answered with.
// Started when a seeded sandbox is about to start (warmUpFeeder) or at the
// first such open; it never keeps the process alive.
import { Worker } from 'node:worker_threads';
import { close } from '@sandlock/sys';
import type { FeedReply, FeedRequest } from './random-feeder-thread.js';

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

interface Pending {
  resolve(fd: number): void;
  reject(error: Error): void;
}

let feeder: Worker | null = null;
let nextId = 0;
const pending = new Map<number, Pending>();

function failAll(error: Error): void {
  feeder = null;
  for (const waiting of pending.values()) waiting.reject(error);
  pending.clear();
}

function started(): Worker {
  if (feeder !== null) return feeder;
  const worker = new Worker(feederEntry(), { name: 'sandlock-random-feeder' });
  worker.on('message', (reply: FeedReply) => {
    const waiting = pending.get(reply.id);
    pending.delete(reply.id);
    // Idle, it must not keep the process alive (the pipes it feeds do not need to).
    if (pending.size === 0) worker.unref();
    if (waiting === undefined) {
      if ('fd' in reply) close(reply.fd);
      return;
    }
    if ('fd' in reply) waiting.resolve(reply.fd);
    else waiting.reject(new FeedError(reply.what, reply.errno));
  });
  worker.on('error', (error) => failAll(error));
  worker.on('exit', (code) => {
    if (feeder === worker)
      failAll(new Error(`sandlock: the random feeder thread exited (${code})`));
  });
  feeder = worker;
  return worker;
}

/**
 * Starts the feeder thread now if it is not running: a thread takes tens of
 * milliseconds to start, which the first device open would otherwise wait.
 */
export function warmUpFeeder(): void {
  const worker = started();
  if (pending.size === 0) worker.unref();
}

/**
 * A new endless file of the keystream under `key`, made by the feeder
 * thread: the fd of its reader's end (to inject; the caller owns it),
 * nonblocking if `nonblock`. Rejects with a {@link FeedError}.
 */
export function deviceFile(
  key: Uint8Array,
  readWrite: boolean,
  nonblock: boolean,
): Promise<number> {
  const worker = started();
  const id = nextId++;
  const request: FeedRequest = { id, key, readWrite, nonblock };
  return new Promise<number>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.ref();
    worker.postMessage(request);
  });
}
