// Every call of each architecture's table that takes a file name (a
// `const char __user *` the kernel walks from the caller's root or cwd, or
// a sockaddr_un path) is answered inside the root, denied by the default
// deny list or the sandbox's filter, or a socket call of the network
// modules (which walk it through PATH_VIEW), or names no file. A call added
// to a table (a new kernel) that takes a path and is none of these fails
// here, rather than being looked up from the host's root.
import { type Arch, hasSyscall, syscallNames, syscallNumber } from '@sandlock/sys';
import { describe, expect, it } from 'vitest';
import { BIND_SYSCALLS } from '../../network/src/binds.js';
import { DESTINATION_SYSCALLS } from '../../network/src/destinations.js';
import { defaultDenyList } from '../../seccomp/src/index.js';
import { chrootSyscallsOf } from '../src/index.js';

/**
 * The calls of Linux 6.18 (x86_64 and the generic table of aarch64) with a
 * path argument, from their SYSCALL_DEFINEs (fs/open.c, fs/stat.c,
 * fs/namei.c, fs/xattr.c, fs/exec.c, fs/statfs.c, fs/utimes.c,
 * fs/file_attr.c, fs/notify/, fs/namespace.c, fs/fhandle.c, fs/fsopen.c,
 * kernel/acct.c, mm/swapfile.c, fs/quota/quota.c, ipc/mqueue.c, mm/memfd.c,
 * kernel/bpf/syscall.c, net/socket.c).
 */
const PATH_TAKING = [
  // Walked inside the root by the chroot module.
  ...['open', 'openat', 'openat2', 'creat'],
  ...['stat', 'lstat', 'newfstatat', 'statx', 'statfs'],
  ...['access', 'faccessat', 'faccessat2', 'readlink', 'readlinkat'],
  ...['unlink', 'unlinkat', 'rmdir', 'mkdir', 'mkdirat', 'mknod', 'mknodat'],
  ...['symlink', 'symlinkat', 'link', 'linkat', 'rename', 'renameat', 'renameat2', 'truncate'],
  ...['chmod', 'fchmodat', 'fchmodat2', 'chown', 'lchown', 'fchownat'],
  ...['utime', 'utimes', 'futimesat', 'utimensat'],
  ...['getxattr', 'lgetxattr', 'listxattr', 'llistxattr'],
  ...['setxattr', 'lsetxattr', 'removexattr', 'lremovexattr'],
  ...['getxattrat', 'setxattrat', 'listxattrat', 'removexattrat'],
  ...['file_getattr', 'file_setattr', 'inotify_add_watch', 'fanotify_mark'],
  ...['execve', 'execveat', 'chdir', 'chroot', 'uselib'],
  // The mount API, handles, accounting, swap, quotas, BPF objects: the default deny list.
  ...['mount', 'umount2', 'pivot_root', 'open_tree', 'open_tree_attr', 'move_mount', 'fspick'],
  ...['fsconfig', 'mount_setattr', 'name_to_handle_at', 'acct', 'swapon', 'swapoff'],
  ...['quotactl', 'bpf'],
  // Unix socket paths: the network modules.
  ...['bind', 'connect', 'sendto', 'sendmsg', 'sendmmsg'],
  // Names that are no file of a file system the caller walks.
  ...['mq_open', 'mq_unlink', 'memfd_create'],
] as const;

/**
 * Names no file: POSIX message queues live in the IPC namespace's mqueue
 * mount (ipc/mqueue.c looks them up there, not from the caller's root: the
 * same under chroot(2)); memfd_create's name is only a label.
 */
const NO_FILE = new Set(['mq_open', 'mq_unlink', 'memfd_create']);

/** Refused by every sandbox's filter (sandbox-filter.ts of @sandlock/seccomp), inside a root too. */
const FILTER_REFUSED = new Set(['file_setattr']);

describe.each(['x86_64', 'aarch64'] as const)('path-taking calls of %s', (arch: Arch) => {
  const handled = new Set(chrootSyscallsOf(arch));
  const denied = new Set(defaultDenyList(arch));
  const network = new Set([...BIND_SYSCALLS, ...DESTINATION_SYSCALLS]);

  it('each is walked inside the root, denied, a socket call of the network modules, or names no file', () => {
    const present = PATH_TAKING.filter((name) => hasSyscall(name, arch));
    const left = present.filter(
      (name) =>
        !handled.has(name) &&
        !denied.has(name) &&
        !network.has(name) &&
        !FILTER_REFUSED.has(name) &&
        !NO_FILE.has(name),
    );
    expect(left).toEqual([]);
    // None is both walked and denied: the deny list would hide a handler.
    expect([...handled].filter((name) => denied.has(name))).toEqual([]);
  });

  it('the module answers only calls of the table', () => {
    const table = new Set(syscallNames(arch));
    expect([...handled].filter((name) => !table.has(name))).toEqual([]);
  });
});

/** The last call of the tables this list was checked against (listns, Linux 6.18). */
const CHECKED_UP_TO = 470;

describe('the list of path-taking calls', () => {
  it('was checked against every call of the tables (a new call: classify it, then raise CHECKED_UP_TO)', () => {
    for (const arch of ['x86_64', 'aarch64'] as const) {
      const newer = syscallNames(arch).filter((name) => syscallNumber(name, arch) > CHECKED_UP_TO);
      expect([arch, newer]).toEqual([arch, []]);
    }
  });

  it('names calls of at least one table', () => {
    const unknown = PATH_TAKING.filter(
      (name) => !hasSyscall(name, 'x86_64') && !hasSyscall(name, 'aarch64'),
    );
    expect(unknown).toEqual([]);
  });

  it('leaves aarch64 its *at forms only (no open, stat, unlink, uselib…)', () => {
    const x86Only = PATH_TAKING.filter(
      (name) => hasSyscall(name, 'x86_64') && !hasSyscall(name, 'aarch64'),
    );
    expect(x86Only).toEqual(
      expect.arrayContaining(['open', 'stat', 'unlink', 'rename', 'chmod', 'utime', 'uselib']),
    );
    const aarch64 = new Set(chrootSyscallsOf('aarch64'));
    for (const name of ['openat', 'newfstatat', 'renameat', 'renameat2', 'unlinkat', 'execveat']) {
      expect([name, aarch64.has(name)]).toEqual([name, true]);
    }
  });
});
