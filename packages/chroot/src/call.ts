// What every handler of the chroot module shares: the session's root, the
// caller's path copied once and walked inside the root with the caller's
// capabilities (none), and the reaper that makes every change.
import { readlinkSync } from 'node:fs';
import type { Answer, CallContext, HandlerContext, OnBehalf } from '@sandlock/dispatch/module';
import {
  answer,
  brokerOf as brokerIn,
  CallError,
  gatedBroker,
  narrowedCallerErrno,
  sessionOf as sessionIn,
} from '@sandlock/dispatch/module';
import {
  AT_EACCESS,
  AT_EMPTY_PATH,
  AT_FDCWD,
  type BrokerArg,
  bytePath,
  callAsCaller,
  close,
  ERRNO,
  pathWithin,
  R_OK,
  RESOLVE_BENEATH,
  RESOLVE_IN_ROOT,
} from '@sandlock/sys';
import type { InterpreterNames } from './interpreter-name.js';
import { narrowedBroker } from './narrowed-broker.js';
import type { Found, Root, WalkOptions } from './root.js';
import type { ScriptOpens } from './script-opens.js';

const FLOORED = RESOLVE_BENEATH | RESOLVE_IN_ROOT;

/** The policy fields the module reads. */
export interface ChrootPolicy {
  /** The root (canonical), or null: the module is off. */
  readonly chroot: string | null;
  /** `VIRT:HOST[:ro]`, HOST canonical. */
  readonly fsMount: readonly string[];
  /** What the sandbox may write and may not reach, as host paths (canonical). */
  readonly fsWrite: readonly string[];
  readonly fsDeny: readonly string[];
  readonly fsRead: readonly string[];
  /** Started inside another supervised sandbox: the reaper is the outer one's (narrowed-broker.ts). */
  readonly delegated?: boolean;
}

export type Ctx = HandlerContext<ChrootPolicy>;

export interface Session {
  readonly root: Root;
  /** The virtual path each process last executed (for /proc/<pid>/exe), by thread group. */
  readonly exes: Map<number, string>;
  /** The names scripts' interpreters are opened by. */
  readonly interpreters: InterpreterNames;
  /** The scripts executed from inside, for their interpreters' opens. */
  readonly scripts: ScriptOpens;
}

export const sessions = new Map<number, Session | Error>();

export function sessionOf(ctx: Ctx): Session {
  return sessionIn(sessions, ctx, 'the chroot');
}

const narrowedBrokers = new WeakMap<object, OnBehalf>();

/** The reaper's calls that change nothing and that Landlock does not mediate (access(2), reading xattrs). */
const UNMEDIATED = new Set(['faccessat2', 'getxattr', 'listxattr', 'fcntl', 'close']);

/**
 * A caller with a Landlock domain of its own: refused, fail closed
 * (narrowedCallerErrno of @sandlock/dispatch), 0 for any other caller. A
 * path into a mounted /proc is still the caller's own call. A delegated
 * sandbox (nested sandlock) is held to its own policy by narrowed-broker.ts
 * instead.
 */
export function narrowedErrno(ctx: Ctx): number {
  if (ctx.session.policy.delegated === true) return 0;
  return narrowedCallerErrno(ctx, 'inside the root');
}

/** {@link narrowedErrno} as the call's answer, or null. */
export function narrowedRefusal(ctx: Ctx): Answer | null {
  const errno = narrowedErrno(ctx);
  return errno === 0 ? null : answer.errno(errno);
}

/** The reaper: for a call (`ctx` a handler's), -errno to a narrowed caller (narrowedErrno) but for checks. */
export function brokerOf(ctx: Ctx | Pick<Ctx, 'session'>): OnBehalf {
  const broker = reaperOf(ctx);
  if (!('pid' in ctx)) return broker;
  return gatedBroker(broker, UNMEDIATED, () => narrowedErrno(ctx));
}

function reaperOf(ctx: Pick<Ctx, 'session'>): OnBehalf {
  const broker = brokerIn(ctx, 'chroot');
  const { policy } = ctx.session;
  if (policy.delegated !== true) return broker;
  let narrowed = narrowedBrokers.get(ctx.session);
  if (narrowed === undefined) {
    narrowed = narrowedBroker(broker, policy);
    narrowedBrokers.set(ctx.session, narrowed);
  }
  return narrowed;
}

/** Walks the caller's path inside the root, from its cwd or `dirfd` when relative. The result is the handler's to close. */
export function resolve(
  ctx: Pick<CallContext, 'openStart'>,
  session: Session,
  path: Buffer,
  dirfd: number,
  options: WalkOptions,
): Found {
  const text = path.toString('latin1');
  const found = callAsCaller(0n, () => {
    let start = null;
    // RESOLVE_BENEATH and RESOLVE_IN_ROOT start every path at the dirfd.
    if (!text.startsWith('/') || ((options.resolve ?? 0) & FLOORED) !== 0) {
      const fd = ctx.openStart(dirfd);
      try {
        start = session.root.levelsOf(fd);
      } finally {
        close(fd);
      }
    }
    return session.root.walk(text, start, options);
  });
  if (found === null) throw new CallError(ERRNO.EPERM, 'capabilities');
  return found.value;
}

/** Whether the policy lets the sandbox change the object the walk found. */
export function writable(ctx: Ctx, r: Found): boolean {
  let host: string;
  try {
    host = readlinkSync(`/proc/self/fd/${r.fd}`, 'latin1');
  } catch {
    return false;
  }
  const { fsWrite, fsDeny } = ctx.session.policy;
  if (!host.startsWith('/')) return false;
  if (fsDeny.some((entry) => pathWithin(host, bytePath(entry)))) return false;
  return fsWrite.some((entry) => pathWithin(host, bytePath(entry)));
}

/** A reaper call; `names` become `{ data }` arguments, each NUL-terminated, in order. */
export function reaper(
  broker: OnBehalf,
  syscall: string,
  build: (name: (text: string | Buffer) => { data: number }) => readonly BrokerArg[],
  extra?: Buffer,
): { result: number; data: Buffer; extraAt: number } {
  const chunks: Buffer[] = [];
  let size = 0;
  const name = (text: string | Buffer) => {
    const bytes = Buffer.concat([
      typeof text === 'string' ? Buffer.from(text, 'latin1') : text,
      Buffer.from([0]),
    ]);
    const at = size;
    chunks.push(bytes);
    size += bytes.length;
    return { data: at };
  };
  const args = build(name);
  const extraAt = size;
  if (extra !== undefined) chunks.push(extra);
  const reply = broker.call({ syscall, args, data: Buffer.concat(chunks) });
  return { result: reply.result, data: reply.data, extraAt };
}

/**
 * 0 when the caller may read the object behind the supervisor's descriptor
 * `fd` (the reaper's faccessat2, with the sandbox's credentials: the check
 * inotify and fanotify make on the object they watch), else -errno.
 */
export function readableByCaller(ctx: Ctx, fd: number): number {
  return reaper(brokerOf(ctx), 'faccessat2', (name) => [
    { fd },
    name(''),
    R_OK,
    AT_EMPTY_PATH | AT_EACCESS,
  ]).result;
}

export {
  int,
  threadGroupOf as threadGroup,
  uint,
  umaskOf,
} from '@sandlock/dispatch/module';
export { copyPath } from '@sandlock/dispatch/path-arg';
export { AT_FDCWD };
