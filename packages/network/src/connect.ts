// connect(2) made by the sandbox's reaper (the broker of @sandlock/dispatch)
// on the module's duplicate of the caller's socket: in the policy's
// Landlock domain, so its TCP port rules apply as they would to the sandbox
// (the reference's connect, made by its supervisor, bypassed them: its
// §7.17), with the sandbox's credentials (a Unix server's SO_PEERCRED names
// a process of the sandbox: init_peercred() in net/unix/af_unix.c takes the
// connecting task), and from a copy of the address that was checked.
//
// The reaper must not block: the description is made non-blocking for its
// call and put back at once (another thread of the sandbox that reads the
// flags in between sees O_NONBLOCK; one that sets them in between loses its
// change). A caller in blocking mode whose connect is in progress gets its
// answer later, from the main thread, when POLLOUT and SO_ERROR say how the
// connect ended, as inet_wait_for_connect() would have; the worker and the
// reaper go on serving meanwhile.
//
// Signals: the filter's SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV keeps the
// caller in a killable wait once its call is received, so a signal cannot
// interrupt it. The waiter reads the caller's pending signals instead; when
// one is pending, unblocked and caught, the kernel's connect would have
// returned what sock_intr_errno() gives (inet_wait_for_connect() in
// net/ipv4/af_inet.c): -ERESTARTSYS without SO_SNDTIMEO, which becomes a
// restart after a handler with SA_RESTART and EINTR otherwise (signal(7):
// connect is restarted "unless a timeout has been set on the socket"), and
// EINTR with one. The waiter answers -ERESTARTSYS itself, and the kernel
// does the rest, when the signal is pending for the caller's thread; one
// pending for its process may be taken by another thread, which would
// leave the caller errno 512: then EINTR, whatever the handler's flags. The
// connect goes on in the background, as the kernel's does; the restarted
// call (a new connect of the same socket) waits for it (EALREADY, waited on
// here like the kernel's) or says EISCONN. SO_SNDTIMEO bounds the wait as it
// bounds the kernel's (EINPROGRESS when it runs out).

import type { OnBehalf } from '@sandlock/dispatch/module';
import { type Answer, answer, type DeferredContext } from '@sandlock/dispatch/module';
import {
  close,
  ERESTARTSYS,
  ERRNO,
  F_DUPFD_CLOEXEC,
  F_GETFL,
  F_SETFL,
  hostArch,
  openFlags,
  SO_ERROR,
  SO_SNDTIMEO,
  SOL_SOCKET,
  trySyscall,
  writableNow,
} from '@sandlock/sys';
import { callerStatus } from './caller.js';
import { intOption } from './sockets.js';

const { EALREADY, EINPROGRESS, EINTR } = ERRNO;
const { O_NONBLOCK } = openFlags(hostArch());

/** The longest pause between two looks at a connect in progress. */
const LONGEST_PAUSE_MS = 20;

/** What the main thread needs to wait for a connect: a duplicate it owns, the caller's timeout. */
export interface PendingConnect {
  readonly fd: number;
  /** SO_SNDTIMEO in milliseconds; null: none. */
  readonly timeoutMs: number | null;
}

/**
 * connect(fd, address) by the reaper, the description non-blocking for
 * the call; the raw result. `fd` is this process's duplicate.
 */
export function reaperConnect(broker: OnBehalf, fd: number, address: Buffer): number {
  const flags = trySyscall('fcntl', fd, F_GETFL, 0);
  if (flags < 0) return flags;
  const blocking = (flags & O_NONBLOCK) === 0;
  if (blocking) {
    const set = trySyscall('fcntl', fd, F_SETFL, flags | O_NONBLOCK);
    if (set < 0) return set;
  }
  try {
    return broker.call({
      syscall: 'connect',
      args: [{ fd }, { data: 0 }, address.length],
      data: address,
    }).result;
  } finally {
    if (blocking) trySyscall('fcntl', fd, F_SETFL, flags);
  }
}

/** SO_SNDTIMEO of the socket in milliseconds; null when there is none. */
function sendTimeout(fd: number): number | null {
  const value = Buffer.alloc(16);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(16);
  if (trySyscall('getsockopt', fd, SOL_SOCKET, SO_SNDTIMEO, value, length) < 0) return null;
  const ms =
    Number(value.readBigInt64LE(0)) * 1000 + Math.ceil(Number(value.readBigInt64LE(8)) / 1000);
  return ms > 0 ? ms : null;
}

/** How a connect that ended went: 0, or -errno (SO_ERROR, read and cleared as the kernel's connect does). */
function outcome(fd: number): number {
  const error = intOption(fd, SO_ERROR);
  return error < 0 ? error : -error;
}

/**
 * The answer to a connect the reaper made for a caller of a
 * connection-oriented socket: the result as it is for a non-blocking
 * caller; for a blocking one, a connect in progress is waited for (now when
 * it has already ended, else on the main thread: a `defer` answer).
 */
export function answerConnect(fd: number, result: number, blocking: boolean): Answer {
  if (!blocking || (result !== -EINPROGRESS && result !== -EALREADY)) {
    return answer.fromResult(result);
  }
  // Over loopback the handshake has usually ended by now.
  if (writableNow(fd)) return answer.fromResult(outcome(fd));
  const owned = trySyscall('fcntl', fd, F_DUPFD_CLOEXEC, 0);
  if (owned < 0) return answer.fromResult(owned);
  return answer.defer({ fd: owned, timeoutMs: sendTimeout(fd) } satisfies PendingConnect);
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A blocking caller's connect in progress, waited for on the main thread:
 * looked at after 1, 2, 4… up to 20 ms (a poll without waiting and a read
 * of the caller's status each time), so that no thread is held.
 */
export async function waitForConnect(
  ctx: DeferredContext,
  pending = ctx.payload as PendingConnect,
): Promise<Answer> {
  const { fd, timeoutMs } = pending;
  const start = performance.now();
  let delay = 1;
  try {
    for (;;) {
      if (writableNow(fd)) return answer.fromResult(outcome(fd));
      // Withdrawn (the caller was killed): any answer is dropped.
      if (!ctx.valid()) return answer.errno(EINTR);
      const status = callerStatus(ctx.pid);
      if (status === null) return answer.errno(EINTR);
      if (status.interruptingThread !== 0n && timeoutMs === null) {
        return answer.errno(ERESTARTSYS);
      }
      if (status.interrupting !== 0n) return answer.errno(EINTR);
      if (timeoutMs !== null && performance.now() - start >= timeoutMs) {
        return answer.errno(EINPROGRESS);
      }
      await pause(delay);
      delay = Math.min(delay * 2, LONGEST_PAUSE_MS);
    }
  } finally {
    close(fd);
  }
}
