// The root's view of paths, provided to the other modules of a session
// (PATH_VIEW of @sandlock/dispatch): a Unix socket's sun_path, which the
// network modules walk, is then the sandbox's path inside the root and its
// mounts, as every path of the chroot module is.
import { CallError, type PathView } from '@sandlock/dispatch/module';
import { ERRNO, F_DUPFD_CLOEXEC, S_IFDIR, S_IFLNK, trySyscall, Walked } from '@sandlock/sys';
import { resolve, type Session } from './call.js';

function duplicate(fd: number): number {
  if (fd < 0) return -1;
  const copy = trySyscall('fcntl', fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) throw new CallError(-copy, 'duplicating a descriptor of the walk');
  return copy;
}

/** A walk inside `session`'s root, as a {@link Walked} that owns its descriptors. */
export function pathView(session: Session): PathView {
  return {
    walk(ctx, path, options) {
      if (path.length === 0) {
        const walked = new Walked();
        walked.errno = ERRNO.ENOENT;
        return walked;
      }
      const found = resolve(ctx, session, path, options.dirfd, { followLast: options.followLast });
      const walked = new Walked();
      try {
        // A mounted /proc: its paths are the procfs modules' and the kernel's, not a socket's.
        if (found.proc) {
          walked.errno = ERRNO.EACCES;
          return walked;
        }
        walked.errno = found.errno;
        walked.readOnly = found.mount?.readOnly === true;
        walked.name = found.dotted || found.name === '' ? '.' : found.name;
        walked.parent = duplicate(found.parent);
        walked.fd = duplicate(found.fd);
        walked.kind =
          found.fd < 0
            ? 'missing'
            : found.mode === S_IFDIR
              ? 'directory'
              : found.mode === S_IFLNK
                ? 'symlink'
                : 'file';
        return walked;
      } catch (error) {
        walked.close();
        throw error;
      } finally {
        found.close();
      }
    },
    mountAt(virt) {
      const mount = session.root.mountAt(virt);
      return mount === null ? -1 : duplicate(mount.fd);
    },
  };
}

/** A view for a session whose root could not be opened: every walk fails closed. */
export function brokenView(error: Error): PathView {
  return {
    walk() {
      throw new CallError(ERRNO.EACCES, `the chroot: ${error.message}`);
    },
    mountAt() {
      throw new CallError(ERRNO.EACCES, `the chroot: ${error.message}`);
    },
  };
}
