// The layer's merged view, provided to the other modules of a session
// (LAYER_VIEW of @sandlock/dispatch): the emulated chroot finds a program,
// its `#!` interpreter and its loader there before it runs them, so what
// the layer wrote is found and what it deleted is not, as the files the
// sandbox opens are.
import type { HandlerContext, LayerView } from '@sandlock/dispatch/module';
import { CallError } from '@sandlock/dispatch/module';
import { ERRNO, F_DUPFD_CLOEXEC, trySyscall, Walked } from '@sandlock/sys';
import { type Ctx, resolve, type Session } from './call.js';

function duplicate(fd: number): number {
  if (fd < 0) return -1;
  const copy = trySyscall('fcntl', fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) throw new CallError(-copy, 'duplicating a descriptor of the walk');
  return copy;
}

/** The workdir's own path as the sandbox names it: beneath the emulated chroot's root when there is one. */
function workdirComponents(session: Session): string[] {
  const { chroot, lowerPath } = session.workdir;
  const path = chroot ? lowerPath.slice(chroot.path.length) : lowerPath;
  return path.split('/').filter((part) => part !== '');
}

/** The merged view of `session`'s layer. */
export function layerView(session: Session): LayerView {
  return {
    walk(ctx: HandlerContext, path, options) {
      const resolved = resolve(ctx as Ctx, session, path, options.dirfd, options.followLast);
      if (resolved.where === 'outside') {
        resolved.walked.close();
        return null;
      }
      const walked = new Walked();
      try {
        walked.errno = resolved.errno;
        walked.kind = resolved.kind;
        walked.name = resolved.dotted || resolved.rel.length === 0 ? '.' : resolved.name;
        walked.fd = duplicate(resolved.fd);
        const parent = resolved.parent;
        if (parent !== null && !resolved.dotted) {
          walked.parent = duplicate(
            resolved.side === 'upper' || (resolved.side === null && parent.upper >= 0)
              ? parent.upper
              : parent.lower,
          );
        }
        return {
          walked,
          path: [...workdirComponents(session), ...resolved.rel],
          mode: resolved.errno === 0 ? resolved.mode : 0,
          layered: resolved.side === 'upper',
        };
      } catch (error) {
        walked.close();
        throw error;
      } finally {
        resolved.close();
      }
    },
  };
}

/** A view for a session whose layer could not be opened: every walk fails closed. */
export function brokenLayerView(error: Error): LayerView {
  return {
    walk() {
      throw new CallError(ERRNO.EACCES, `the copy-on-write layer: ${error.message}`);
    },
  };
}
