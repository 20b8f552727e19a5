// fanotify_mark(2) of a path inside the root. The kernel's checks of the
// flags, the mask and the instance come first, as it makes them
// (do_fanotify_mark() in fs/notify/fanotify/fanotify_user.c): the same call
// made here on a duplicate of the caller's instance with an empty path stops
// at the lookup (ENOENT) once they pass. Then the walk finds the object
// inside the root and its mounts, the caller's read permission on it is
// checked by the reaper (fanotify_find_path() asks MAY_READ with the
// caller's credentials), and the mark is made from the supervisor on the
// caller's own instance by the magic link of the object's descriptor, with
// this thread's capabilities lowered to the caller's.
//
// Only inode marks: a mount or file system mark would report the events of
// the whole host mount or file system the root lies in, with descriptors of
// its files outside the root. The kernel refuses them to a caller without
// CAP_SYS_ADMIN, which the sandbox never has (EPERM); here they are refused
// whatever the instance. A call without a path (the dirfd's object) or a
// flush is the kernel's: it names no path.
import { type Answer, answer, CallError } from '@sandlock/dispatch/module';
import {
  AT_FDCWD,
  callAsCaller,
  close,
  ERRNO,
  FAN_MARK_DONT_FOLLOW,
  FAN_MARK_FLUSH,
  FAN_MARK_ONLYDIR,
  FAN_MARK_TYPE_BITS,
  S_IFDIR,
  trySyscall,
} from '@sandlock/sys';
import { type Ctx, int, readableByCaller, uint } from './call.js';
import { at } from './handlers.js';

const { ENOENT, ENOTDIR, EPERM } = ERRNO;
const EMPTY = Buffer.from('\0');

/** A call with this thread's capabilities lowered to the caller's (none): the kernel checks CAP_SYS_ADMIN of the marker. */
function asCaller(call: () => number): number {
  return callAsCaller(0n, call)?.value ?? -EPERM;
}

export function onFanotifyMark(ctx: Ctx): Answer {
  const a = ctx.args;
  // fanotify_mark(fanotify_fd, flags, mask, dirfd, pathname): the mask is one register on 64-bit.
  const flags = uint(a[1]);
  const mask = a[2]!;
  const path = a[4]!;
  if (path === 0n && (flags & FAN_MARK_TYPE_BITS) === 0) return answer.continue();
  if ((flags & FAN_MARK_FLUSH) !== 0) return answer.continue();
  let instance: number;
  try {
    instance = ctx.getFd(int(a[0]));
  } catch (error) {
    if (!(error instanceof CallError)) throw error;
    // The flags and the mask are checked before the descriptor: the kernel's errno, on -1.
    return answer.fromResult(trySyscall('fanotify_mark', -1, flags, mask, AT_FDCWD, EMPTY));
  }
  try {
    const checked = asCaller(() =>
      trySyscall('fanotify_mark', instance, flags, mask, AT_FDCWD, EMPTY),
    );
    if (checked !== -ENOENT) return answer.errno(checked < 0 ? -checked : ERRNO.EIO);
    if ((flags & FAN_MARK_TYPE_BITS) !== 0) {
      ctx.refused({ what: 'a fanotify mount or file system mark', rule: 'chroot' });
      return answer.errno(EPERM);
    }
    return at(ctx, path, int(a[3]), (flags & FAN_MARK_DONT_FOLLOW) === 0, (r) => {
      if (r.errno !== 0) return answer.errno(r.errno);
      if ((flags & FAN_MARK_ONLYDIR) !== 0 && r.mode !== S_IFDIR) return answer.errno(ENOTDIR);
      const allowed = readableByCaller(ctx, r.fd);
      if (allowed < 0) return answer.errno(-allowed);
      const target = Buffer.from(`/proc/self/fd/${r.fd}\0`);
      const how = flags & ~(FAN_MARK_DONT_FOLLOW | FAN_MARK_ONLYDIR);
      return answer.fromResult(
        asCaller(() => trySyscall('fanotify_mark', instance, how, mask, AT_FDCWD, target)),
      );
    });
  } finally {
    close(instance);
  }
}
