// inotify_add_watch of a path in the workdir. The watch is on what the
// sandbox sees there, in the layer: an object of the layer (a file or
// directory it made or copied up) is watched from the supervisor, on the
// caller's own inotify instance (a duplicate of its descriptor), by the
// magic link of a descriptor of the object, after the caller's read
// permission on it (inotify_find_inode() in fs/notify/inotify/
// inotify_user.c). The watch descriptor is the instance's, as the kernel
// numbers it. A directory or regular file of the lower is copied up first
// (a directory made in the layer): a watch on the lower file would not
// follow a later copy-up (its wd is the lower inode's, and a watch added on
// the copy would report under a wd the program does not know), where an
// overlayfs watch, on the overlay inode, does (docs/design.md). A path
// whose every name the kernel's lookup finds in the lower, to something
// else than a directory or regular file, is left to the kernel. Changes
// made to the lower tree from outside the sandbox are not seen in what is
// watched in the layer.

import { readlinkSync } from 'node:fs';
import { type Answer, answer } from '@sandlock/dispatch/module';
import {
  AT_FDCWD,
  close,
  IN_ALL_EVENTS,
  IN_DONT_FOLLOW,
  IN_ONLYDIR,
  R_OK,
  S_IFREG,
  trySyscall,
} from '@sandlock/sys';
import {
  brokerOf,
  type Ctx,
  copyPath,
  int,
  resolve,
  type Session,
  sessionOf,
  uint,
} from '../call.js';
import type { Outside } from '../resolve.js';
import { kindOf, pinThroughLayer, throughLayer } from '../through-layer.js';
import { access, copyUp, upperDir } from '../upper.js';

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
    try {
      if (!throughLayer(r)) return answer.continue();
      return watchOutside(ctx, session, r, mask);
    } finally {
      r.walked.close();
    }
  }
  try {
    // A directory or regular file is watched in the layer (made or copied
    // there if it is not yet: the sandbox's changes to it land there).
    const lowerFile = r.side === 'lower' && r.mode === S_IFREG;
    if (r.pure && r.kind !== 'directory' && !lowerFile) return answer.continue();
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
      let object = -1;
      if (r.kind === 'directory') {
        object = upperDir(session.workdir, broker, r.rel);
        if (object < 0) return answer.errno(-object);
      } else if (lowerFile) {
        const copy = copyUp(session.workdir, broker, r);
        if (typeof copy === 'number') return answer.errno(-copy);
        close(copy.dir);
        object = copy.fd;
        session.changed = true;
      }
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

/**
 * A watch through a link of the layer to outside the workdir: on the
 * object the reaper's walk pins (through-layer.ts), after the kernel's read
 * check of it for the sandbox (inotify_add_watch(2): read permission).
 */
function watchOutside(
  ctx: Ctx,
  session: Session,
  outside: Outside & { readonly throughLayer: string },
  mask: number,
): Answer {
  let instance: number;
  try {
    instance = ctx.getFd(int(ctx.args[0]));
  } catch {
    return answer.continue();
  }
  try {
    if (!isInotify(instance)) return answer.continue();
    const pinned = pinThroughLayer(ctx, session, outside, (mask & IN_DONT_FOLLOW) === 0);
    if (pinned < 0) return answer.errno(-pinned);
    try {
      if ((mask & IN_ONLYDIR) !== 0 && kindOf(pinned) !== 'directory') {
        return answer.errno('ENOTDIR');
      }
      const allowed = access(brokerOf(ctx), pinned, R_OK);
      if (allowed < 0) return answer.errno(-allowed);
      const target = Buffer.from(`/proc/self/fd/${pinned}\0`);
      const flags = mask & ~(IN_DONT_FOLLOW | IN_ONLYDIR);
      return answer.fromResult(trySyscall('inotify_add_watch', instance, target, flags));
    } finally {
      close(pinned);
    }
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
