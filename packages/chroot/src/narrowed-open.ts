// An open by a process that narrowed itself with Landlock
// (landlock_restrict_self) inside the root. The reaper cannot open for it:
// it holds the sandbox's domain, not the caller's, and no other process can
// ask the caller's domain. So the caller opens the file itself: the walk
// inside the root finds the object and its directory, the reaper opens that
// directory (read-only: ADDFD takes no O_PATH file, fget() skips them) and
// it is injected, and the caller's call is retargeted to
// openat(dir, name, flags | O_NOFOLLOW, mode), `name` the last name of its
// own path string. The kernel then checks the caller's own domain on the
// file (security/landlock/fs.c, hook_file_open()), as under chroot(2). The
// descriptor it returns must name the object the walk found (device and
// inode), or the caller gets EACCES and it is closed; else the caller gets
// a duplicate of it (fcntl F_DUPFD, its close-on-exec flag as asked).
//
// The injected directory is readable, which the caller's domain may not
// allow (no READ_DIR there). A caller alone with its descriptor table (one
// thread, sharing the table with no other process: kcmp KCMP_FILES) gets
// it, stopped in the retarget meanwhile, so nothing can list it before it
// is closed. Any other caller's open runs apart (the retarget's `apart`): in
// a child its thread forks, which alone holds the directory; the caller
// gets the checked result. Its other threads could take the directory from
// that child with pidfd_getfd: refused to a narrowed caller.
import { fstatSync } from 'node:fs';
import { type Answer, answer, expectRetargetedOpen, readStatus } from '@sandlock/dispatch/module';
import {
  close,
  ERRNO,
  F_DUPFD,
  F_DUPFD_CLOEXEC,
  hostArch,
  KCMP_FILES,
  openFlags,
  S_IFDIR,
  S_IFREG,
  trySyscall,
} from '@sandlock/sys';
import { brokerOf, type Ctx, threadGroup } from './call.js';
import type { Found } from './root.js';

const O = openFlags(hostArch());

/** Whether the caller has a Landlock domain of its own (a delegated sandbox aside: narrowed-broker.ts). */
export function narrowedCaller(ctx: Ctx): boolean {
  return ctx.session.policy.delegated !== true && ctx.session.narrowed(ctx.pid);
}

/** Whether no other thread or process shares the caller's descriptor table. */
function aloneWithItsTable(ctx: Ctx): boolean {
  try {
    if (!/^Threads:\s+1$/m.test(readStatus(ctx.pid))) return false;
  } catch {
    return false;
  }
  const own = threadGroup(ctx.pid);
  for (const pid of ctx.session.processes.refresh()) {
    if (pid === own) continue;
    const same = trySyscall('kcmp', own, pid, KCMP_FILES, 0, 0);
    // 0: the same table; a process that ended meanwhile (ESRCH) shares nothing.
    if (same === 0 || (same < 0 && same !== -ERRNO.ESRCH)) return false;
  }
  return true;
}

/**
 * The caller's own open of `r` (found by the walk of `path`, the string at
 * `address`), or null when it cannot be served this way (the caller is then
 * refused, fail closed).
 */
export function narrowedOpen(
  ctx: Ctx,
  r: Found,
  path: Buffer,
  address: bigint,
  flags: number,
  mode: number,
): Answer | null {
  if (r.parent < 0 || r.dotted || (r.mode !== S_IFREG && r.mode !== S_IFDIR)) return null;
  const text = path.toString('latin1');
  const bare = text.replace(/(.)\/+$/, '$1');
  if (bare !== r.name && !bare.endsWith(`/${r.name}`)) return null;
  const alone = aloneWithItsTable(ctx);
  // The reaper, not gated: the directory is the caller's only for the lookup.
  const dir = brokerOf({ session: ctx.session }).openat(
    r.parent,
    Buffer.from('.'),
    O.O_RDONLY | O.O_DIRECTORY | O.O_CLOEXEC,
  );
  if (dir < 0) return null;
  let stat: ReturnType<typeof fstatSync>;
  let parent: ReturnType<typeof fstatSync>;
  try {
    stat = fstatSync(r.fd, { bigint: true });
    parent = fstatSync(dir, { bigint: true });
  } catch (error) {
    close(dir);
    throw error;
  }
  const name = address + BigInt(bare.length - r.name.length);
  const how = flags | O.O_NOFOLLOW;
  const sameAs = { dev: stat.dev, ino: stat.ino };
  if (!alone) {
    // In a child of the caller, apart from the table its other threads use.
    const cloexec = (flags & O.O_CLOEXEC) !== 0;
    return answer.retarget('openat', ['fd', name, how, mode], {
      fd: dir,
      apart: { sameAs, cloexec },
    });
  }
  // The retargeted openat comes back through the filter, from this thread, in the retarget.
  expectRetargetedOpen(ctx.pid, { name, flags: how, dev: parent.dev, ino: parent.ino });
  const dup = (flags & O.O_CLOEXEC) !== 0 ? F_DUPFD_CLOEXEC : F_DUPFD;
  return answer.retarget('openat', ['fd', name, how, mode], {
    fd: dir,
    second: {
      syscall: 'fcntl',
      args: ['result', dup, 0],
      sameAs,
    },
  });
}

/**
 * pidfd_getfd by a caller that narrowed itself: EPERM. The child a
 * multithreaded caller's open runs in holds the lookup's directory for a
 * moment, and the caller's other threads pass pidfd_getfd's ptrace check
 * on it (the same credentials and Landlock domain; PR_SET_DUMPABLE is
 * refused in every sandbox).
 */
export function onPidfdGetfd(ctx: Ctx): Answer {
  return narrowedCaller(ctx) ? answer.errno(ERRNO.EPERM) : answer.continue();
}
