// file_getattr(2) and file_setattr(2) (Linux 6.17, fs/file_attr.c) of a
// path inside the root. The kernel's checks of the arguments come first, as
// it makes them: the same call made here with an empty path stops at the
// lookup (ENOENT) once they pass. Then the walk pins the object and the call
// is made on /proc/self/fd/N of that descriptor, a magic link that names the
// object whatever happens to the path (the calls take no O_PATH descriptor
// with AT_EMPTY_PATH: fdget() skips them). Reading the attributes asks no
// permission (vfs_fileattr_get()): the supervisor reads them. A change is
// the reaper's (its credentials, no capability: vfs_fileattr_set() asks
// ownership), and Landlock has no right for it, so the policy's write paths
// are checked here, as for chmod and the extended attributes.
import { type Answer, answer } from '@sandlock/dispatch/module';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  ERRNO,
  F_DUPFD_CLOEXEC,
  FILE_ATTR_SIZE_VER0,
  pageSize,
  trySyscall,
} from '@sandlock/sys';
import { brokerOf, type Ctx, int, uint, writable } from './call.js';
import { at, emptyPath } from './handlers.js';

const { EACCES, ENOENT, EROFS } = ERRNO;
const EMPTY = Buffer.from('\0');

export function onFileAttr(ctx: Ctx): Answer {
  const a = ctx.args;
  const set = ctx.syscall === 'file_setattr';
  // file_getattr(dfd, filename, ufattr, usize, at_flags), file_setattr likewise.
  const [dirfd, address, attr, size, flags] = [int(a[0]), a[1]!, a[2]!, a[3]!, uint(a[4])];
  if ((flags & AT_EMPTY_PATH) !== 0 && emptyPath(ctx, address)) return answer.continue();
  const usize = size > BigInt(pageSize()) ? pageSize() + 1 : Number(size);
  const known = (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) === 0;
  const sized = usize >= FILE_ATTR_SIZE_VER0 && usize <= pageSize();
  const given = set && known && sized ? ctx.read(attr, usize) : null;
  const out = Buffer.alloc(Math.min(Math.max(usize, 0), pageSize()));
  const checked = trySyscall(
    ctx.syscall,
    AT_FDCWD,
    EMPTY,
    given ?? out,
    size,
    flags & ~AT_EMPTY_PATH,
  );
  if (checked !== -ENOENT) return answer.errno(checked < 0 ? -checked : ERRNO.EIO);
  return at(ctx, address, dirfd, (flags & AT_SYMLINK_NOFOLLOW) === 0, (r) => {
    if (r.errno !== 0) return answer.errno(r.errno);
    if (!set) {
      const target = Buffer.from(`/proc/self/fd/${r.fd}\0`);
      const result = trySyscall('file_getattr', AT_FDCWD, target, out, usize, 0);
      if (result < 0) return answer.errno(-result);
      ctx.write(attr, out);
      return answer.value(result);
    }
    if (r.mount?.readOnly) return answer.errno(EROFS);
    if (!writable(ctx, r)) {
      ctx.refused({ what: () => `file_setattr ${r.path}`, rule: 'fsWrite' });
      return answer.errno(EACCES);
    }
    const broker = brokerOf(ctx);
    const copy = broker.call({ syscall: 'fcntl', args: [{ fd: r.fd }, F_DUPFD_CLOEXEC, 0] }).result;
    if (copy < 0) return answer.errno(-copy);
    try {
      const target = Buffer.from(`/proc/self/fd/${copy}\0`);
      const result = broker.call({
        syscall: 'file_setattr',
        args: [AT_FDCWD, { data: 0 }, { data: target.length }, usize, 0],
        data: Buffer.concat([target, given!]),
      }).result;
      return answer.fromResult(result);
    } finally {
      broker.call({ syscall: 'close', args: [copy] });
    }
  });
}
