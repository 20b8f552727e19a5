// A handler may retarget its caller to an openat of its own, by a name in
// the caller's memory beneath a directory the handler injected: chdir to a
// directory the caller may search but not read (openat(O_PATH) then
// fchdir), an open by a caller with a Landlock domain of its own (its
// domain then takes the final open). That openat comes back through the
// filter, from the same thread, and every module of the chain that walks
// paths (cow, then chroot) must leave it to the kernel. One registry, so
// each handler of the chain answers the same for that one notification.
import { fstatSync, statSync } from 'node:fs';
import { type Answer, answer } from './answer.js';

/** What the handler retargeted the thread to: the name's address, the flags, the injected directory. */
export interface RetargetedOpen {
  readonly name: bigint;
  readonly flags: number;
  readonly dev: bigint;
  readonly ino: bigint;
}

const pending = new Map<number, RetargetedOpen>();
/** The notification each thread's pending open was matched to (the rest of the chain sees the same id). */
const matched = new Map<number, bigint>();

/** Records that `tid` runs `open` next, in the retarget the handler answers with. */
export function expectRetargetedOpen(tid: number, open: RetargetedOpen): void {
  matched.delete(tid);
  pending.set(tid, open);
}

/** Whether this call is the openat a handler retargeted its thread to: then the kernel's, for every module of the chain. */
export function isRetargetedOpen(ctx: {
  readonly id: bigint;
  readonly pid: number;
  readonly syscall: string;
  readonly args: readonly bigint[];
}): boolean {
  if (matched.get(ctx.pid) === ctx.id) return true;
  matched.delete(ctx.pid);
  const open = pending.get(ctx.pid);
  if (open === undefined) return false;
  pending.delete(ctx.pid);
  if (ctx.syscall !== 'openat' || ctx.args[1] !== open.name) return false;
  if (Number(ctx.args[2]! & 0xffffffffn) !== open.flags) return false;
  const dirfd = Number(BigInt.asIntN(32, ctx.args[0]!));
  try {
    const dir = statSync(`/proc/${ctx.pid}/fd/${dirfd}`, { bigint: true });
    if (dir.dev !== open.dev || dir.ino !== open.ino) return false;
  } catch {
    return false;
  }
  matched.set(ctx.pid, ctx.id);
  return true;
}

/**
 * The answer that moves the caller's cwd to the directory `target` (a
 * descriptor of it) by the two-step way: the caller's own openat(dir,
 * name, flags) of the name at `at` in its memory, beneath `dir` (injected,
 * then closed), then fchdir of the result, which must be `target` (device
 * and inode; fchdir does not run otherwise: EACCES). `flags` are O_PATH |
 * O_DIRECTORY | O_CLOEXEC of the caller's architecture.
 */
export function chdirBeneath(
  tid: number,
  dir: number,
  target: number,
  at: bigint,
  flags: number,
): Answer {
  const stat = fstatSync(target, { bigint: true });
  const parent = fstatSync(dir, { bigint: true });
  // The retargeted openat comes back through the filter, from this thread, in the retarget.
  expectRetargetedOpen(tid, { name: at, flags, dev: parent.dev, ino: parent.ino });
  return answer.retarget('openat', ['fd', at, flags, 0], {
    fd: dir,
    second: { syscall: 'fchdir', args: ['result'], sameAs: { dev: stat.dev, ino: stat.ino } },
  });
}
