// A private tmpfs of a bounded size, and its removal (mount(2), umount2(2),
// tmpfs(5)).
import { MNT_DETACH, MS_NODEV, MS_NOSUID, UMOUNT_NOFOLLOW } from './fs-constants.js';
import { trySyscall } from './libc.js';

export interface TmpfsOptions {
  /** Bytes: tmpfs rounds `size=` up to whole pages, and size=0 means no bound at all (tmpfs(5)). */
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

const cString = (text: string) => Buffer.from(`${text}\0`, 'utf8');

/**
 * Mounts a tmpfs (nosuid, nodev) on the directory `target`; 0 or -errno
 * (EPERM without CAP_SYS_ADMIN in the mount namespace's user namespace).
 */
export function mountTmpfs(target: string, options: TmpfsOptions): number {
  if (!(Number.isSafeInteger(options.size) && options.size > 0)) {
    throw new RangeError(
      `sandlock: a tmpfs size must be a positive whole number, got ${options.size}`,
    );
  }
  const data = `size=${options.size},mode=${options.mode.toString(8)},uid=${options.uid},gid=${options.gid}`;
  return trySyscall(
    'mount',
    cString('sandlock'),
    cString(target),
    cString('tmpfs'),
    MS_NOSUID | MS_NODEV,
    cString(data),
  );
}

/** Detaches the mount on `target` (never through a symlink); 0 or -errno (EINVAL: not a mount point). */
export function detachMount(target: string): number {
  return trySyscall('umount2', cString(target), MNT_DETACH | UMOUNT_NOFOLLOW);
}
