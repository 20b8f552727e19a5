// A descriptor installed in a thread the Retargeter drives (a retarget
// apart, retarget.ts): the thread is made to run a call the filter
// notifies, and the worker answers that one notification by installing
// the descriptor (SECCOMP_ADDFD_FLAG_SEND: the call returns its number).
// ADDFD is the only way into another process's descriptor table, and it
// takes a notification of that process.
import { addFd } from './context.js';

interface Injection {
  readonly nr: number;
  readonly fd: number;
  readonly cloexec: boolean;
}

const pending = new Map<number, Injection>();

/** `tid`'s next call `nr` is answered with `fd` installed (the caller still owns `fd`). */
export function expectInjection(tid: number, nr: number, fd: number, cloexec: boolean): void {
  pending.set(tid, { nr, fd, cloexec });
}

export function cancelInjection(tid: number): void {
  pending.delete(tid);
}

/**
 * Answers the notification `id` of `tid`'s call `nr` when an injection
 * waits for it: true when answered (or the answer failed: the call is then
 * gone), false to go on as usual.
 */
export function answerInjection(listener: number, id: bigint, tid: number, nr: number): boolean {
  const injection = pending.get(tid);
  if (injection === undefined || injection.nr !== nr) return false;
  pending.delete(tid);
  addFd(listener, id, injection.fd, { targetFd: null, cloexec: injection.cloexec, send: true });
  return true;
}
