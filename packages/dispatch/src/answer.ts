import { errnoNumber as linuxErrno, MAX_ERRNO } from '@sandlock/sys/errno';

/**
 * What a handler decides for one intercepted syscall. Plain data, so an
 * answer can be built in either thread and logged or compared.
 */
export type Answer =
  /** Let the kernel run the syscall as the child asked (SECCOMP_USER_NOTIF_FLAG_CONTINUE). */
  | { readonly kind: 'continue' }
  /** The syscall fails with this errno and has no effect. */
  | { readonly kind: 'errno'; readonly errno: number }
  /** The syscall returns this value and has no effect (the handler did the work). */
  | { readonly kind: 'value'; readonly value: bigint }
  /** Install `fd` (a descriptor of the supervisor) in the child: see {@link answer.inject}. */
  | {
      readonly kind: 'inject';
      readonly fd: number;
      readonly cloexec: boolean;
      readonly targetFd: number | null;
      readonly keep: boolean;
    }
  /** Run another call in the caller's thread instead: see {@link answer.retarget}. */
  | {
      readonly kind: 'retarget';
      readonly syscall: string;
      readonly args: readonly RetargetArg[];
      readonly fd: number | null;
      readonly cloexec: boolean;
      readonly execArgs: readonly ExecArg[];
      readonly second: RetargetSecond | null;
      readonly apart: RetargetApart | null;
    }
  /** Kill the whole sandbox; the syscall fails with EPERM meanwhile. */
  | { readonly kind: 'kill'; readonly reason: string }
  /** Hand the notification to the module's main-thread handler (worker handlers only). */
  | { readonly kind: 'defer'; readonly payload: unknown };

export type AnswerKind = Answer['kind'];

/**
 * An argument of a retargeted call: an integer put in the register as it is
 * (a number, flags, an address in the caller's own memory), or `'fd'`, the
 * caller's number of the descriptor the answer injects.
 */
export type RetargetArg = bigint | 'fd';

/**
 * A second call the retargeted thread runs after the first succeeded, on
 * the descriptor that call returned (`'result'` in `args`), which is then
 * closed: e.g. openat(…, O_PATH) then fchdir. The caller gets the second
 * call's result. `sameAs`: the first call's descriptor must name this
 * object (device and inode, checked by the supervisor through
 * /proc/<tid>/fd) or the second call does not run and the caller gets EACCES.
 */
export interface RetargetSecond {
  readonly syscall: string;
  readonly args: readonly (bigint | 'fd' | 'result')[];
  readonly sameAs: { readonly dev: bigint; readonly ino: bigint } | null;
}

/**
 * The call runs apart from the caller's descriptor table: in a child the
 * caller's thread forks for it (clone with no exit signal: its own copy of
 * the table and of the memory, the caller's credentials and Landlock
 * domain), where the descriptor `fd` is installed; the caller never holds
 * `fd`, so none of its other threads can use it. The call must return a
 * descriptor naming `sameAs` (device and inode), which the caller then gets
 * (its close-on-exec flag `cloexec`); otherwise the caller gets EACCES, or
 * the call's errno. The child is gone before the caller's thread resumes.
 * The call must be one the seccomp filter notifies: the descriptors are
 * installed by answering a notification of that call (ADDFD).
 */
export interface RetargetApart {
  readonly sameAs: { readonly dev: bigint; readonly ino: bigint };
  readonly cloexec: boolean;
}

/** An argument string of the program an exec starts, replaced before it runs: argv[index] becomes `value`. */
export interface ExecArg {
  readonly index: number;
  readonly value: string;
}

export interface RetargetOptions {
  /**
   * A descriptor of the supervisor to install in the caller first (the
   * answer owns it and closes it); `'fd'` in the arguments is its number
   * there. It is closed in the caller once the call returned, unless the
   * call was an exec that succeeded (then close-on-exec decides).
   */
  fd?: number;
  /** Install it with O_CLOEXEC (default true). */
  cloexec?: boolean;
  /**
   * When the call is an exec that succeeds: these arguments of the new
   * program are replaced, in its fresh memory, before it runs one
   * instruction (the exec left it one thread, stopped; see retarget.ts).
   * An index past its argc is ignored.
   */
  execArgs?: readonly ExecArg[];
  /** A second call: see {@link RetargetSecond}. */
  second?: {
    syscall: string;
    args: readonly (number | bigint | 'fd' | 'result')[];
    sameAs?: { dev: bigint; ino: bigint };
  };
  /** Run it in a child of the caller, apart from its descriptor table: see {@link RetargetApart}. */
  apart?: { sameAs: { dev: bigint; ino: bigint }; cloexec: boolean };
}

const CONTINUE: Answer = Object.freeze({ kind: 'continue' });
const DEFER: Answer = Object.freeze({ kind: 'defer', payload: undefined });

function errnoNumber(code: number | string): number {
  if (typeof code === 'number') {
    if (!Number.isInteger(code) || code <= 0 || code > MAX_ERRNO) {
      throw new RangeError(`sandlock: errno must be an integer in 1..${MAX_ERRNO}, got ${code}`);
    }
    return code;
  }
  const value = linuxErrno(code);
  if (value === undefined) throw new RangeError(`sandlock: unknown errno name '${code}'`);
  return value;
}

export interface InjectOptions {
  /** Set O_CLOEXEC on the child's new descriptor (default false). */
  cloexec?: boolean;
  /** Install at this number, replacing what is there (SECCOMP_ADDFD_FLAG_SETFD). */
  targetFd?: number;
  /** Keep the supervisor's `fd` open afterwards (by default the answer closes it). */
  keep?: boolean;
}

/** Builders for {@link Answer}s. */
export const answer = Object.freeze({
  /** Let the syscall run. In a chain, the next handler is asked first. */
  continue(): Answer {
    return CONTINUE;
  },
  /** Fail the syscall with `code`: a number or a name such as 'EACCES'. */
  errno(code: number | string): Answer {
    return { kind: 'errno', errno: errnoNumber(code) };
  },
  /** Make the syscall return `value` without running it. */
  value(value: number | bigint): Answer {
    return { kind: 'value', value: BigInt(value) };
  },
  /**
   * Make the syscall return a new descriptor in the child that refers to the
   * supervisor's `fd` (SECCOMP_IOCTL_NOTIF_ADDFD). The answer owns `fd` and
   * closes it once applied, unless `keep`. If the injection fails (the child
   * is at RLIMIT_NOFILE, say) the syscall FAILS with the injection's errno:
   * it never falls back to running the original call.
   */
  inject(fd: number, options: InjectOptions = {}): Answer {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`sandlock: bad fd ${fd}`);
    return {
      kind: 'inject',
      fd,
      cloexec: options.cloexec ?? false,
      targetFd: options.targetFd ?? null,
      keep: options.keep ?? false,
    };
  },
  /**
   * The caller's thread runs `syscall(...args)` instead of the call it made,
   * in its own context (its credentials, Landlock domain, cwd), and gets that
   * call's result; its registers are as they were, but for the result.
   * Nothing is written in its memory: the thread is stopped for a moment by
   * a transient ptrace (seized, interrupted, the notification answered with
   * ERESTARTNOINTR, the registers set in the stop that follows, the call's
   * exit caught; docs/design.md). Arguments are integers only, read from
   * the answer, never from the caller's memory. The new call passes through
   * the seccomp filter and the handlers again. Worker handlers only. If the
   * thread cannot be traced (another tracer, an undumpable process of
   * another user, ptrace refused by a container's seccomp profile) the call
   * fails with that errno (EPERM) and nothing runs.
   */
  retarget(
    syscall: string,
    args: readonly (number | bigint | 'fd')[],
    options: RetargetOptions = {},
  ): Answer {
    if (args.length > 6) throw new RangeError('sandlock: a syscall takes at most 6 arguments');
    const fd = options.fd ?? null;
    if (fd !== null && (!Number.isInteger(fd) || fd < 0))
      throw new RangeError(`sandlock: bad fd ${fd}`);
    if (fd === null && args.includes('fd')) {
      throw new RangeError("sandlock: a retarget argument is 'fd' but no fd is injected");
    }
    if (options.apart !== undefined && (fd === null || options.second !== undefined)) {
      throw new RangeError('sandlock: a retarget apart injects an fd and has no second call');
    }
    return {
      kind: 'retarget',
      syscall,
      args: args.map((arg) => (arg === 'fd' ? arg : BigInt(arg))),
      fd,
      cloexec: options.cloexec ?? true,
      execArgs: options.execArgs ?? [],
      second:
        options.second === undefined
          ? null
          : {
              syscall: options.second.syscall,
              args: options.second.args.map((arg) => (typeof arg === 'string' ? arg : BigInt(arg))),
              sameAs: options.second.sameAs ?? null,
            },
      apart: options.apart ?? null,
    };
  },
  /** Kill every process of the sandbox (through its reaper); `reason` is reported. */
  kill(reason: string): Answer {
    return { kind: 'kill', reason };
  },
  /**
   * Answer later, on the main thread: the module's `deferred` handler for
   * this syscall receives `payload` (anything structured-clone can copy)
   * while the worker goes on receiving other notifications.
   */
  defer(payload?: unknown): Answer {
    return payload === undefined ? DEFER : { kind: 'defer', payload };
  },
  /** A raw syscall result as an answer: -errno fails, anything else is returned. */
  fromResult(result: number | bigint): Answer {
    const value = BigInt(result);
    if (value < 0n && value >= -4095n) return { kind: 'errno', errno: Number(-value) };
    return { kind: 'value', value };
  },
});

const KINDS: ReadonlySet<string> = new Set<AnswerKind>([
  'continue',
  'errno',
  'value',
  'inject',
  'retarget',
  'kill',
  'defer',
]);

/** Whether `value` is an {@link Answer} (handlers written in JavaScript may return anything). */
export function isAnswer(value: unknown): value is Answer {
  return (
    typeof value === 'object' &&
    value !== null &&
    KINDS.has((value as { kind?: unknown }).kind as string)
  );
}
