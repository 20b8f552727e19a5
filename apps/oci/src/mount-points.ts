// A mount's destination inside the container's root, made as runc makes it
// before mounting: the image's own symlinks followed inside the root (the
// kernel's openat2(RESOLVE_IN_ROOT), never a string join), the missing
// directories made 0755 and a missing last name made as what is mounted
// there (an empty file for a file). Kubelet mounts beneath directories an
// image rarely has (/var/run/secrets/kubernetes.io/serviceaccount, where
// /var/run is a symlink to /run in most images): the emulated chroot shows a
// mount at the path its walk reaches, so the path given to it is the one
// found here.
import { readlinkSync, realpathSync } from 'node:fs';
import {
  close,
  ERRNO,
  encodeOpenHow,
  hostArch,
  OPEN_HOW_SIZE,
  openFlags,
  RESOLVE_IN_ROOT,
  trySyscall,
} from '@sandlock/sys';

const O = openFlags(hostArch());
const { EEXIST, ENOENT } = ERRNO;

const cName = (name: string) => Buffer.from(`${name}\0`, 'utf8');

/** openat2(root, path, O_PATH, RESOLVE_IN_ROOT): a descriptor or -errno. */
function inRoot(root: number, path: string): number {
  const how = encodeOpenHow({
    flags: BigInt(O.O_PATH | O.O_CLOEXEC),
    resolve: BigInt(RESOLVE_IN_ROOT),
  });
  return trySyscall('openat2', root, cName(path === '' ? '.' : path), how, OPEN_HOW_SIZE);
}

/**
 * The destination `target` (absolute, as config.json gives it) inside the
 * root directory `rootPath`, its missing components made: the path inside
 * the root it resolves to. Throws an Error naming the component that could
 * not be made (a read-only root, a file where a directory is needed).
 */
export function makeMountPoint(rootPath: string, target: string, kind: 'dir' | 'file'): string {
  const rootReal = realpathSync(rootPath);
  const root = trySyscall('open', cName(rootReal), O.O_PATH | O.O_DIRECTORY | O.O_CLOEXEC, 0);
  if (root < 0) throw new Error(`cannot open the root ${rootReal}: errno ${-root}`);
  try {
    const names = target.split('/').filter((name) => name !== '' && name !== '.');
    for (let i = 0; i < names.length; i++) {
      const prefix = names.slice(0, i + 1).join('/');
      const found = inRoot(root, prefix);
      if (found >= 0) {
        close(found);
        continue;
      }
      if (found !== -ENOENT) throw new Error(`${target}: /${prefix}: errno ${-found}`);
      const parent = inRoot(root, names.slice(0, i).join('/'));
      if (parent < 0) throw new Error(`${target}: /${prefix}: errno ${-parent}`);
      try {
        const name = cName(names[i]!);
        const last = i === names.length - 1;
        let made: number;
        if (last && kind === 'file') {
          made = trySyscall(
            'openat',
            parent,
            name,
            O.O_CREAT | O.O_EXCL | O.O_WRONLY | O.O_NOFOLLOW | O.O_CLOEXEC,
            0o644,
          );
          if (made >= 0) close(made);
        } else {
          made = trySyscall('mkdirat', parent, name, 0o755);
        }
        // EEXIST: a dangling symlink of the image's at this name, left as it is.
        if (made < 0 && made !== -EEXIST) {
          throw new Error(`${target}: cannot make /${prefix}: errno ${-made}`);
        }
        if (made === -EEXIST) return target;
      } finally {
        close(parent);
      }
    }
    const fd = inRoot(root, names.join('/'));
    if (fd < 0) return target;
    try {
      const real = readlinkSync(`/proc/self/fd/${fd}`);
      if (real === rootReal) return '/';
      return real.startsWith(`${rootReal}/`) ? real.slice(rootReal.length) : target;
    } finally {
      close(fd);
    }
  } finally {
    close(root);
  }
}
