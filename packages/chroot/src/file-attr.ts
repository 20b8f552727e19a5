// file_getattr(2) (Linux 6.17, fs/file_attr.c) of a path inside the root.
// The kernel's checks of the arguments come first, as it makes them: the
// same call made here with an empty path stops at the lookup (ENOENT) once
// they pass. Then the walk pins the object and the call is made on
// /proc/self/fd/N of that descriptor, a magic link that names the object
// whatever happens to the path (the call takes no O_PATH descriptor with
// AT_EMPTY_PATH: fdget() skips them). Reading the attributes asks no
// permission (vfs_fileattr_get()): the supervisor reads them. file_setattr
// never reaches here: every sandbox's filter refuses it, as it refuses
// FS_IOC_FSSETXATTR (@sandlock/seccomp's sandbox filter).
import { type Answer, answer } from '@sandlock/dispatch/module';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  ERRNO,
  pageSize,
  trySyscall,
} from '@sandlock/sys';
import { type Ctx, int, uint } from './call.js';
import { at, emptyPath } from './handlers.js';

const { ENOENT } = ERRNO;
const EMPTY = Buffer.from('\0');

export function onFileAttr(ctx: Ctx): Answer {
  const a = ctx.args;
  // file_getattr(dfd, filename, ufattr, usize, at_flags).
  const [dirfd, address, attr, size, flags] = [int(a[0]), a[1]!, a[2]!, a[3]!, uint(a[4])];
  if ((flags & AT_EMPTY_PATH) !== 0 && emptyPath(ctx, address)) return answer.continue();
  const usize = size > BigInt(pageSize()) ? pageSize() + 1 : Number(size);
  const out = Buffer.alloc(Math.min(Math.max(usize, 0), pageSize()));
  const checked = trySyscall(ctx.syscall, AT_FDCWD, EMPTY, out, size, flags & ~AT_EMPTY_PATH);
  if (checked !== -ENOENT) return answer.errno(checked < 0 ? -checked : ERRNO.EIO);
  return at(ctx, address, dirfd, (flags & AT_SYMLINK_NOFOLLOW) === 0, (r) => {
    if (r.errno !== 0) return answer.errno(r.errno);
    const target = Buffer.from(`/proc/self/fd/${r.fd}\0`);
    const result = trySyscall('file_getattr', AT_FDCWD, target, out, usize, 0);
    if (result < 0) return answer.errno(-result);
    ctx.write(attr, out);
    return answer.value(result);
  });
}
