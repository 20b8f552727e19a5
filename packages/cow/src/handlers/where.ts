// chdir and getcwd. A directory the layer made, or that it changed (copied
// up, renamed, re-created), is not where the kernel's lookup of the caller's
// path would go: chdir is retargeted to fchdir of a descriptor of it
// (answer.retarget of @sandlock/dispatch: the caller's thread runs the
// fchdir, its memory untouched, the descriptor closed after). A process
// whose cwd is then a directory of the upper sees the workdir's path from
// getcwd, not the layer's, and its relative paths resolve in the merged
// view (placeOf).
import { type Answer, answer } from '@sandlock/dispatch/module';
import { AT_FDCWD, close, hostArch, openFlags, trySyscall } from '@sandlock/sys';
import { type Ctx, copyPath, narrowedRefusal, resolve, sessionOf, uint } from '../call.js';
import { placeOf } from '../resolve.js';

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
    resolved.walked.close();
    return answer.continue();
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
    // so the directory is opened again, read-only.
    const fd = trySyscall('openat', resolved.fd, DOT, O.O_RDONLY | O.O_DIRECTORY | O.O_CLOEXEC, 0);
    if (fd < 0) return answer.errno(-fd);
    return answer.retarget('fchdir', ['fd'], { fd });
  } finally {
    resolved.close();
  }
}
