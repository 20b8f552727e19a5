// inotify_add_watch of a path in the workdir. The watch is on what the
// sandbox sees there: a path whose every name the kernel's lookup finds in
// the lower, unchanged, is left to the kernel; an object of the layer (a
// file or directory it made or copied up) is watched from the supervisor,
// on the caller's own inotify instance (a duplicate of its descriptor), by
// the magic link of a descriptor of the object, after the caller's read
// permission on it (inotify_find_inode() in fs/notify/inotify/
// inotify_user.c). The watch descriptor is the instance's, as the kernel
// numbers it.
//
// A watch on a file does not follow a later copy-up: a lower file watched
// before it is first written keeps its watch on the lower file, and the
// writes land on its copy in the layer, unseen (docs/design.md). Changes
// made to the lower tree from outside the sandbox are not seen in a
// directory watched in the layer.

import { readlinkSync } from 'node:fs';
import { type Answer, answer } from '@sandlock/dispatch/module';
import {
  AT_FDCWD,
  close,
  IN_ALL_EVENTS,
  IN_DONT_FOLLOW,
  IN_ONLYDIR,
  R_OK,
  trySyscall,
} from '@sandlock/sys';
import { brokerOf, type Ctx, copyPath, int, resolve, sessionOf, uint } from '../call.js';
import { access, upperDir } from '../upper.js';

export function onWatch(ctx: Ctx): Answer {
  const a = ctx.args;
  const mask = uint(a[2]);
  // The kernel's EINVAL for a mask with no event, before the lookup.
  if ((mask & IN_ALL_EVENTS) === 0) return answer.continue();
  const path = copyPath(ctx, a[1]!);
  if (path.length === 0) return answer.continue();
  const session = sessionOf(ctx);
  const r = resolve(ctx, session, path, AT_FDCWD, (mask & IN_DONT_FOLLOW) === 0);
  if (r.where === 'outside') {
    r.walked.close();
    return answer.continue();
  }
  try {
    // A file every name of which the kernel finds in the lower, unchanged, is
    // the kernel's to watch; a directory is watched in the layer (made there
    // if it is not yet: the sandbox's changes in it land there).
    if (r.pure && r.kind !== 'directory') return answer.continue();
    // The descriptor first, as the kernel: EBADF, EINVAL for one that is not an instance.
    let instance: number;
    try {
      instance = ctx.getFd(int(a[0]));
    } catch {
      return answer.continue();
    }
    try {
      if (!isInotify(instance)) return answer.continue();
      if (r.errno !== 0) return answer.errno(r.errno);
      if ((mask & IN_ONLYDIR) !== 0 && r.kind !== 'directory') return answer.errno('ENOTDIR');
      const broker = brokerOf(ctx);
      const allowed = access(broker, r.fd, R_OK);
      if (allowed < 0) return answer.errno(-allowed);
      const object = r.kind === 'directory' ? upperDir(session.workdir, broker, r.rel) : -1;
      if (r.kind === 'directory' && object < 0) return answer.errno(-object);
      try {
        const target = Buffer.from(`/proc/self/fd/${object >= 0 ? object : r.fd}\0`);
        const flags = mask & ~(IN_DONT_FOLLOW | IN_ONLYDIR);
        return answer.fromResult(trySyscall('inotify_add_watch', instance, target, flags));
      } finally {
        if (object >= 0) close(object);
      }
    } finally {
      close(instance);
    }
  } finally {
    r.close();
  }
}

function isInotify(fd: number): boolean {
  try {
    return readlinkSync(`/proc/thread-self/fd/${fd}`) === 'anon_inode:inotify';
  } catch {
    return false;
  }
}
