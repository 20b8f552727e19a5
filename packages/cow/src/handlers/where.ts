// chdir and getcwd. A directory the layer made, or that it changed (copied
// up, renamed, re-created), is not where the kernel's lookup of the caller's
// path would go: chdir is retargeted to fchdir of a descriptor of it
// (answer.retarget of @sandlock/dispatch: the caller's thread runs the
// fchdir, its memory untouched, the descriptor closed after). A process
// whose cwd is then a directory of the upper sees the workdir's path from
// getcwd, not the layer's, and its relative paths resolve in the merged
// view (placeOf).
import { type Answer, answer, chdirBeneath } from '@sandlock/dispatch/module';
import {
  AT_FDCWD,
  callAsCaller,
  close,
  ERRNO,
  hostArch,
  openFlags,
  trySyscall,
} from '@sandlock/sys';
import { type Ctx, copyPath, narrowedRefusal, resolve, sessionOf, uint } from '../call.js';
import { type Inside, placeOf } from '../resolve.js';
import { openThroughLayer, throughLayer } from '../through-layer.js';

const O = openFlags(hostArch());
const DOT = Buffer.from('.\0');

export function onGetcwd(ctx: Ctx): Answer {
  const session = sessionOf(ctx);
  const cwd = ctx.openStart(AT_FDCWD);
  let place: ReturnType<typeof placeOf>;
  try {
    place = placeOf(session.workdir, cwd);
  } finally {
    close(cwd);
  }
  if (place === null || place.side === 'lower') return answer.continue();
  let shown = [session.workdir.lowerPath, ...place.rel].join('/').replace(/^\/\//, '/');
  const chroot = session.workdir.chroot ?? null;
  if (chroot !== null) {
    // Inside an emulated chroot: the path as the sandbox sees it.
    const inside = shown === chroot.path || shown.startsWith(`${chroot.path}/`);
    shown = inside ? shown.slice(chroot.path.length) || '/' : '/';
  }
  const text = Buffer.from(shown, 'latin1');
  const size = uint(ctx.args[1]);
  if (text.length + 1 > size) return answer.errno('ERANGE');
  ctx.write(ctx.args[0]!, Buffer.concat([text, Buffer.from([0])]));
  return answer.value(text.length + 1);
}

export function onChdir(ctx: Ctx): Answer {
  const path = copyPath(ctx, ctx.args[0]!);
  if (path.length === 0) return answer.continue();
  const session = sessionOf(ctx);
  const resolved = resolve(ctx, session, path, AT_FDCWD, true);
  if (resolved.where === 'outside') {
    try {
      if (!throughLayer(resolved)) return answer.continue();
      const narrowed = narrowedRefusal(ctx);
      if (narrowed !== null) return narrowed;
      // Through a link of the layer: the reaper's open of the directory
      // (through-layer.ts). A directory it may search but not read is
      // EACCES here, where the kernel's chdir would succeed.
      const fd = openThroughLayer(ctx, session, resolved, O.O_RDONLY | O.O_DIRECTORY);
      if (fd < 0) return answer.errno(-fd);
      return answer.retarget('fchdir', ['fd'], { fd });
    } finally {
      resolved.walked.close();
    }
  }
  try {
    if (resolved.errno !== 0) return answer.errno(resolved.errno);
    if (resolved.kind !== 'directory') return answer.errno('ENOTDIR');
    // Every name found in the lower and none changed by the layer: the
    // kernel's own lookup of the caller's path finds the same directory
    // (lookups from there are walked in the merged view again).
    if (resolved.pure) return answer.continue();
    const narrowed = narrowedRefusal(ctx);
    if (narrowed !== null) return narrowed;
    // ADDFD refuses O_PATH descriptors (fget() skips them: EBADF, measured),
    // so the directory is opened again, read-only, with the caller's
    // capabilities (none): a directory it may search but not read is then
    // the two-step way.
    const fd = openAsCaller(resolved.fd);
    if (fd === -ERRNO.EACCES) return searchOnly(ctx, session, resolved, path, ctx.args[0]!);
    if (fd < 0) return answer.errno(-fd);
    return answer.retarget('fchdir', ['fd'], { fd });
  } finally {
    resolved.close();
  }
}

/** `dir` opened read-only with the caller's capabilities (none), as a descriptor to inject; or -errno. */
function openAsCaller(dir: number): number {
  const opened = callAsCaller(0n, () =>
    trySyscall('openat', dir, DOT, O.O_RDONLY | O.O_DIRECTORY | O.O_CLOEXEC, 0),
  );
  return opened === null ? -ERRNO.EPERM : opened.value;
}

/**
 * chdir to a directory of the merged view the caller may search but not
 * read, as the chroot module's: the caller's own openat(dir, name, O_PATH |
 * O_DIRECTORY) then fchdir of what it returned (one retarget), `name` the
 * last name of the caller's path string and `dir` what the path before it
 * names, on the side of the layer the directory is on (injected, read by
 * the caller). The kernel's lookup of `name` there must give the directory
 * found (device and inode), or fchdir does not run (EACCES).
 */
function searchOnly(
  ctx: Ctx,
  session: ReturnType<typeof sessionOf>,
  target: Inside,
  path: Buffer,
  address: bigint,
): Answer {
  const text = path.toString('latin1').replace(/(.)\/+$/, '$1');
  const slash = text.lastIndexOf('/');
  const name = text.slice(slash + 1);
  if (name === '' || name === '.' || target.side === null) return answer.errno('EACCES');
  const before = slash < 0 ? '.' : slash === 0 ? '/' : text.slice(0, slash);
  const base = resolve(ctx, session, Buffer.from(before, 'latin1'), AT_FDCWD, true);
  let dir: number;
  try {
    if (base.where === 'outside' || base.errno !== 0 || base.kind !== 'directory') {
      return answer.errno('EACCES');
    }
    const side = target.side === 'upper' ? base.upper : base.lower;
    dir = side < 0 ? -ERRNO.EACCES : openAsCaller(side);
  } finally {
    if (base.where === 'outside') base.walked.close();
    else base.close();
  }
  if (dir < 0) return answer.errno('EACCES');
  const flags = O.O_PATH | O.O_DIRECTORY | O.O_CLOEXEC;
  return chdirBeneath(ctx.pid, dir, target.fd, address + BigInt(slash + 1), flags);
}
