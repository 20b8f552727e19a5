// Directory listings in a deterministic order, as a handler module of
// @sandlock/dispatch: getdents64 (and the legacy getdents, in its own
// record format) return the entries of every directory sorted by name. The
// supervisor imports this file in its worker threads by URL
// (DETERMINISTIC_DIRS_MODULE), so it has no side effects at import. How a
// listing is read, cached and served: listing.ts.
import { fstatSync } from 'node:fs';
import {
  type Answer,
  answer,
  defineModule,
  type HandlerContext,
  type WorkerSession,
} from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import { close, hasSyscall } from '@sandlock/sys';
import { ListingCache, sortEntries } from './listing.js';

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
function onGetdents(ctx: HandlerContext<ModulePolicy>): Answer {
  const fd = Number(BigInt.asIntN(32, ctx.args[0] ?? 0n));
  // A bad fd: getFd throws CallError(EBADF), the kernel's answer.
  const dup = ctx.getFd(fd);
  try {
    // O_PATH descriptors: the kernel's EBADF. Not a directory: its ENOTDIR.
    if (ListingCache.readableFlags(dup) === null) return answer.continue();
    const stat = fstatSync(dup, { bigint: true });
    if (!stat.isDirectory()) return answer.continue();
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
export default defineModule<unknown, ModulePolicy>({
  name: 'deterministic-dirs',
  syscalls: DETERMINISTIC_DIRS_SYSCALLS,
  enabled: (policy) => policy.deterministicDirs,
  // A listing's offset is the caller's description's, set through a duplicate.
  takesDescriptors: () => true,
  handlers: Object.fromEntries(DETERMINISTIC_DIRS_SYSCALLS.map((name) => [name, onGetdents])),
  processExit(session: WorkerSession<ModulePolicy>, pid: number) {
    cache.forgetProcess(session.id, pid);
  },
  sessionEnd(session: WorkerSession<ModulePolicy>) {
    cache.forgetSession(session.id);
  },
});
