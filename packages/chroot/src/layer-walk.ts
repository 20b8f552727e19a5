// The walks of an exec inside the root (the program, its `#!` interpreter,
// its loader) when a copy-on-write layer lies over it: the kernel would
// find each by path in the merged view, so the layer's view (LAYER_VIEW,
// the cow module's) walks the path first, and the root's own walk only
// what the layer's directory does not hold (a path outside the workdir, in
// a mount, in /proc).
import { LAYER_VIEW } from '@sandlock/dispatch/module';
import { type Ctx, narrowedErrno, resolve, type Session } from './call.js';
import { Found } from './root.js';

/**
 * `path` walked for an exec by the caller of `ctx` (from its cwd or
 * `dirfd` when relative). A file of the layer's own runs from a copy (a
 * memfd, which Landlock does not judge): refused to a caller with a
 * Landlock domain of its own, as the cow module refuses it.
 */
export function execWalk(
  ctx: Ctx,
  session: Session,
  path: Buffer,
  dirfd: number,
  followLast: boolean,
): Found {
  const view = ctx.session.provided(LAYER_VIEW);
  const seen = view?.walk(ctx, path, { dirfd, followLast }) ?? null;
  if (seen === null) return resolve(ctx, session, path, dirfd, { followLast });
  const { walked } = seen;
  const found = new Found(new Set());
  found.errno = walked.errno;
  found.fd = walked.fd;
  found.parent = walked.parent;
  found.name = walked.name;
  found.mode = seen.mode;
  found.virt = [...seen.path];
  found.layered = seen.layered;
  walked.fd = walked.parent = -1; // now the Found's
  walked.close();
  const narrowed = found.layered ? narrowedErrno(ctx) : 0;
  if (narrowed !== 0) {
    found.close();
    found.errno = narrowed;
  }
  return found;
}
