import {
  MAX_ERRNO,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_KILL_THREAD,
  SECCOMP_RET_LOG,
  SECCOMP_RET_TRAP,
  SECCOMP_RET_USER_NOTIF,
} from '@sandlock/sys';

/** What the filter answers for a syscall. */
export type Action =
  | { readonly kind: 'allow' }
  /** The call fails with `errno` without running. */
  | { readonly kind: 'errno'; readonly errno: number }
  /** The call waits for the supervisor's answer on the listener fd (seccomp_unotify(2)). */
  | { readonly kind: 'notify' }
  | { readonly kind: 'killProcess' }
  | { readonly kind: 'killThread' }
  /** SIGSYS to the thread, `data` in si_errno. */
  | { readonly kind: 'trap'; readonly data: number }
  /** Allowed, and logged by the audit subsystem. */
  | { readonly kind: 'log' };

// The kernel caps an ERRNO action's data at MAX_ERRNO (kernel/seccomp.c, __seccomp_filter), so
// a larger number would silently become 4095: errno() refuses it instead.

export const allow: Action = Object.freeze({ kind: 'allow' });
export const notify: Action = Object.freeze({ kind: 'notify' });
export const killProcess: Action = Object.freeze({ kind: 'killProcess' });
export const killThread: Action = Object.freeze({ kind: 'killThread' });
export const log: Action = Object.freeze({ kind: 'log' });

export function errno(value: number): Action & { kind: 'errno' } {
  if (!Number.isInteger(value) || value < 0 || value > MAX_ERRNO) {
    throw new RangeError(`errno ${value} is outside 0..${MAX_ERRNO}`);
  }
  return Object.freeze({ kind: 'errno', errno: value });
}

export function trap(data = 0): Action & { kind: 'trap' } {
  if (!Number.isInteger(data) || data < 0 || data > 0xffff) {
    throw new RangeError(`trap data ${data} does not fit in 16 bits`);
  }
  return Object.freeze({ kind: 'trap', data });
}

/** The 32-bit value a BPF `RET` gives the kernel for `action`. */
export function actionValue(action: Action): number {
  switch (action.kind) {
    case 'allow':
      return SECCOMP_RET_ALLOW;
    case 'errno':
      return (SECCOMP_RET_ERRNO | errno(action.errno).errno) >>> 0;
    case 'notify':
      return SECCOMP_RET_USER_NOTIF;
    case 'killProcess':
      return SECCOMP_RET_KILL_PROCESS;
    case 'killThread':
      return SECCOMP_RET_KILL_THREAD;
    case 'trap':
      return (SECCOMP_RET_TRAP | trap(action.data).data) >>> 0;
    case 'log':
      return SECCOMP_RET_LOG;
  }
}

export function sameAction(a: Action, b: Action): boolean {
  return actionValue(a) === actionValue(b);
}

/** A short text for messages and test names: `allow`, `errno(1)`, `notify`, … */
export function describeAction(action: Action): string {
  switch (action.kind) {
    case 'errno':
      return `errno(${action.errno})`;
    case 'trap':
      return `trap(${action.data})`;
    default:
      return action.kind;
  }
}
