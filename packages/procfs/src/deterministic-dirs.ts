// Directory listings in a deterministic order, as a handler module of
// @sandlock/dispatch: getdents64 (and the legacy getdents, in its own
// record format) return the entries of every directory sorted by name. The
// supervisor imports this file in its worker threads by URL
// (DETERMINISTIC_DIRS_MODULE), so it has no side effects at import and pulls
// nothing from @sandlock/dispatch at run time. How a listing is read, cached
// and served: listing.ts.
import { fstatSync } from 'node:fs';
import type { DispatchModule, HandlerContext, WorkerSession } from '@sandlock/dispatch';
import { close, hasSyscall } from '@sandlock/sys';
import { deterministicDirsOf, type ProcfsPolicy } from './content.js';
import { ListingCache, sortEntries } from './listing.js';
import { CONTINUE, type PlainAnswer } from './synthetic.js';

export {
  type DirEntry,
  type DirentFormat,
  packRecords,
  parseDirent64,
  recordLength,
  sortEntries,
} from './listing.js';

/** The directory listing calls of this architecture (aarch64 has no legacy getdents). */
export const DETERMINISTIC_DIRS_SYSCALLS: readonly string[] = ['getdents64', 'getdents'].filter(
  (name) => hasSyscall(name),
);

const cache = new ListingCache();

/** getdents64 / getdents(fd, dirp, count): the directory's entries sorted by name. */
function onGetdents(ctx: HandlerContext<ProcfsPolicy>): PlainAnswer {
  if (!deterministicDirsOf(ctx.session.policy)) return CONTINUE;
  const fd = Number(BigInt.asIntN(32, ctx.args[0] ?? 0n));
  // A bad fd: getFd throws CallError(EBADF), the kernel's answer.
  const dup = ctx.getFd(fd);
  try {
    // O_PATH descriptors: the kernel's EBADF. Not a directory: its ENOTDIR.
    if (ListingCache.readableFlags(dup) === null) return CONTINUE;
    const stat = fstatSync(dup, { bigint: true });
    if (!stat.isDirectory()) return CONTINUE;
    return cache.serve(ctx, { fd, dup, stat }, sortEntries);
  } finally {
    close(dup);
  }
}

/**
 * On for a sandbox whose policy has `deterministicDirs: true`: every
 * directory listing (ls, readdir, Python's os.listdir and os.scandir, Node's
 * fs.readdir) comes sorted by name, the same from run to run.
 */
const deterministicDirsModule: DispatchModule<unknown, ProcfsPolicy> = {
  name: 'deterministic-dirs',
  syscalls: DETERMINISTIC_DIRS_SYSCALLS,
  enabled: (policy) => deterministicDirsOf(policy),
  handlers: Object.fromEntries(DETERMINISTIC_DIRS_SYSCALLS.map((name) => [name, onGetdents])),
  processExit(session: WorkerSession<ProcfsPolicy>, pid: number) {
    cache.forgetProcess(session.id, pid);
  },
  sessionEnd(session: WorkerSession<ProcfsPolicy>) {
    cache.forgetSession(session.id);
  },
};

export default deterministicDirsModule;
