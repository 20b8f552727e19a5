// chdir and getcwd. A process whose cwd is a directory of the upper (an
// fchdir to an injected descriptor) sees the workdir's path from getcwd,
// not the layer's.
import { type Answer, answer } from '@sandlock/dispatch/module';
import { AT_FDCWD, close } from '@sandlock/sys';
import { type Ctx, copyPath, resolve, sessionOf, uint } from '../call.js';
import { placeOf } from '../resolve.js';

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
    // The kernel's own lookup of the caller's path finds the same directory,
    // or one of the lower where the merged view has it too (lookups from
    // there are walked in the merged view again).
    return answer.continue();
  } finally {
    resolved.close();
  }
}
