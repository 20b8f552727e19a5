import { type Arch, hasSyscall } from '@sandlock/sys';

/**
 * The reference's default deny list (sandlock 0.6 spec §3.5), minus the x86-only port I/O calls.
 * `nfsservctl` and `lookup_dcookie` are still numbered on both arches but the kernel no longer
 * implements them (sys_ni_syscall: ENOSYS); denying them only changes ENOSYS into EPERM.
 */
const REFERENCE_COMMON = [
  'mount',
  'umount2',
  'pivot_root',
  'swapon',
  'swapoff',
  'reboot',
  'sethostname',
  'setdomainname',
  'kexec_load',
  'init_module',
  'finit_module',
  'delete_module',
  'unshare',
  'setns',
  'perf_event_open',
  'bpf',
  'userfaultfd',
  'keyctl',
  'add_key',
  'request_key',
  'ptrace',
  'process_vm_readv',
  'process_vm_writev',
  'open_by_handle_at',
  'name_to_handle_at',
  'quotactl',
  'acct',
  'lookup_dcookie',
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  // The launcher sets the personality before the filter goes on; the sandbox filter still lets
  // the personality(0xffffffff) query through (see sandbox-filter.ts).
  'personality',
  'nfsservctl',
] as const;

/**
 * Ways around the list above that the reference leaves open: the file-descriptor mount API
 * (Linux 5.2+) mounts without `mount`, `kexec_file_load` loads a kernel without `kexec_load`,
 * and `quotactl_fd` is `quotactl` by descriptor.
 */
const REFERENCE_HOLES = [
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'move_mount',
  'open_tree',
  'open_tree_attr',
  'mount_setattr',
  'kexec_file_load',
  'quotactl_fd',
] as const;

/**
 * System V IPC: shared memory, message queues and semaphores live in the IPC namespace the
 * sandbox shares with the host (ipc_namespaces(7)), named by keys any process can guess and
 * guarded only by their mode bits; Landlock's IPC scoping covers abstract Unix sockets and
 * signals, not these. A sandbox running as the owner of a host segment could read or write it
 * (shmat), so they are refused, as sandlock 0.8 does. POSIX shared memory and semaphores are
 * files in /dev/shm, which Landlock governs.
 */
const SYSV_IPC = [
  'shmget',
  'shmat',
  'shmdt',
  'shmctl',
  'msgget',
  'msgsnd',
  'msgrcv',
  'msgctl',
  'semget',
  'semop',
  'semtimedop',
  'semctl',
] as const;

/** Calls that only exist on one architecture. */
const ARCH_ONLY: Readonly<Record<Arch, readonly string[]>> = {
  // Port I/O permission (arch/x86/kernel/ioport.c).
  x86_64: ['ioperm', 'iopl'],
  aarch64: [],
};

/**
 * Sandlock's default deny list for `arch`: every name exists in that arch's syscall table (an
 * entry missing there is a bug in this list and throws, rather than silently not being denied).
 */
export function defaultDenyList(arch: Arch): readonly string[] {
  const names = [...REFERENCE_COMMON, ...REFERENCE_HOLES, ...SYSV_IPC, ...ARCH_ONLY[arch]];
  for (const name of names) {
    if (!hasSyscall(name, arch))
      throw new Error(`default deny list: '${name}' does not exist on ${arch}`);
  }
  return Object.freeze(names);
}
