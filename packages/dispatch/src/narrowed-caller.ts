// A caller with a Landlock domain of its own (`session.narrowed`): what a
// module would do for it with the sandbox's authority (the reaper's opens
// and changes, a file made by the worker, a descriptor injected) may be more
// than that domain grants, and no other process can ask the domain. The
// modules that act on a caller's behalf refuse such work, fail closed.
import { ERRNO } from '@sandlock/sys/errno';
import type { HandlerContext } from './context.js';
import type { OnBehalf } from './on-behalf.js';

/** Landlock answers a rename or link it refuses with EXDEV (current_check_refer_path() in security/landlock/fs.c). */
const REFERS = new Set(['rename', 'renameat', 'renameat2', 'link', 'linkat']);

/**
 * 0 for a caller without a domain of its own; else, after a `refused`
 * report naming `where`, the errno Landlock gives (EACCES; EXDEV for a
 * rename or a link).
 */
export function narrowedCallerErrno<P>(ctx: HandlerContext<P>, where: string): number {
  if (!ctx.session.narrowed(ctx.pid)) return 0;
  ctx.refused({
    what: `${ctx.syscall} ${where} from a process with a Landlock domain of its own`,
    rule: 'made by the supervisor with the sandbox’s authority',
  });
  return REFERS.has(ctx.syscall) ? ERRNO.EXDEV : ERRNO.EACCES;
}

/**
 * The reaper for one call: -errno (from `errnoOf`, 0 to go on) for every
 * request but the `unmediated` ones, calls that change nothing and that
 * Landlock does not mediate.
 */
export function gatedBroker(
  broker: OnBehalf,
  unmediated: ReadonlySet<string>,
  errnoOf: () => number,
): OnBehalf {
  return {
    openat(dir, name, flags, mode) {
      const errno = errnoOf();
      return errno !== 0 ? -errno : broker.openat(dir, name, flags, mode);
    },
    call(request) {
      const errno = unmediated.has(String(request.syscall)) ? 0 : errnoOf();
      if (errno === 0) return broker.call(request);
      return { result: -errno, fd: -1, data: Buffer.from(request.data ?? new Uint8Array()) };
    },
  };
}
