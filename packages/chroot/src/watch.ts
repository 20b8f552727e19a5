// inotify_add_watch of a path inside the root. The kernel would look the
// path up from the host's root, so the call is never let through: the walk
// finds the object inside the root and its mounts, the caller's read
// permission on it is checked by the reaper (inotify_find_inode() in
// fs/notify/inotify/inotify_user.c asks MAY_READ with the caller's fsuid),
// and the watch is added from the supervisor on the caller's own instance (a
// duplicate of its descriptor: the same instance) by the magic link of the
// object's descriptor. The watch descriptor is the instance's, as the kernel
// numbers it. A path into a mounted /proc is the kernel's (`at`).
import { readlinkSync } from 'node:fs';
import { type Answer, answer, CallError } from '@sandlock/dispatch/module';
import {
  AT_FDCWD,
  close,
  ERRNO,
  IN_ALL_EVENTS,
  IN_DONT_FOLLOW,
  IN_ONLYDIR,
  S_IFDIR,
  trySyscall,
} from '@sandlock/sys';
import { type Ctx, int, readableByCaller, uint } from './call.js';
import { at } from './handlers.js';

const { EBADF, EINVAL, ENOTDIR } = ERRNO;

export function onWatch(ctx: Ctx): Answer {
  const a = ctx.args;
  const mask = uint(a[2]);
  // The kernel's order (inotify_add_watch()): the mask, the descriptor, then the lookup.
  if ((mask & IN_ALL_EVENTS) === 0) return answer.errno(EINVAL);
  let instance: number;
  try {
    instance = ctx.getFd(int(a[0]));
  } catch (error) {
    if (error instanceof CallError) return answer.errno(EBADF);
    throw error;
  }
  try {
    if (!isInotify(instance)) return answer.errno(EINVAL);
    return at(ctx, a[1]!, AT_FDCWD, (mask & IN_DONT_FOLLOW) === 0, (r) => {
      if (r.errno !== 0) return answer.errno(r.errno);
      if ((mask & IN_ONLYDIR) !== 0 && r.mode !== S_IFDIR) return answer.errno(ENOTDIR);
      const allowed = readableByCaller(ctx, r.fd);
      if (allowed < 0) return answer.errno(-allowed);
      const target = Buffer.from(`/proc/self/fd/${r.fd}\0`);
      const flags = mask & ~(IN_DONT_FOLLOW | IN_ONLYDIR);
      return answer.fromResult(trySyscall('inotify_add_watch', instance, target, flags));
    });
  } finally {
    close(instance);
  }
}

function isInotify(fd: number): boolean {
  try {
    return readlinkSync(`/proc/thread-self/fd/${fd}`) === 'anon_inode:inotify';
  } catch {
    return false;
  }
}
