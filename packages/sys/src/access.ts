// Which of the calls that reach into another process this process may make.
// A container's default seccomp profile refuses some of them whatever the
// target: Docker's and containerd's (Kubernetes' RuntimeDefault) allow
// pidfd_getfd only with CAP_SYS_PTRACE (moby#45622), and Docker 20.10 and
// containerd 1.6 allow process_vm_readv/writev only with it too. Opening
// /proc/<pid>/mem is a file open, which no profile refuses: the kernel's own
// ptrace-mode check (PTRACE_MODE_ATTACH_FSCREDS, proc_mem_open() in
// fs/proc/base.c) is the one process_vm_readv makes.
import { ERRNO } from './errno.js';
import { errnoName } from './errors.js';
import { addressOf, close, trySyscall } from './libc.js';

export interface RemoteAccess {
  /** pidfd_getfd(2) works: a caller's descriptor can be duplicated (its open file description). */
  readonly pidfdGetfd: boolean;
  /** process_vm_readv(2) and process_vm_writev(2) work; else memory goes through /proc/<pid>/mem. */
  readonly processVm: boolean;
  /** Why each missing one is missing: the errno its probe met. */
  readonly detail: { readonly pidfdGetfd?: string; readonly processVm?: string };
}

let probed: RemoteAccess | null = null;

/** pidfd_getfd of this process's own descriptor 0 … 2 (a ptrace check on oneself always passes). */
function probePidfdGetfd(): number {
  const pidfd = trySyscall('pidfd_open', process.pid, 0);
  if (pidfd < 0) return pidfd;
  try {
    for (const target of [0, 1, 2, pidfd]) {
      const copy = trySyscall('pidfd_getfd', pidfd, target, 0);
      if (copy >= 0) {
        close(copy);
        return 0;
      }
      if (copy !== -ERRNO.EBADF) return copy;
    }
    return 0;
  } finally {
    close(pidfd);
  }
}

/** process_vm_readv and process_vm_writev of one byte of this process's own memory. */
function probeProcessVm(): number {
  const source = Buffer.from([0x5a]);
  const target = Buffer.alloc(1);
  const iov = (buffer: Buffer) => {
    const entry = Buffer.alloc(16);
    entry.writeBigUInt64LE(addressOf(buffer), 0);
    entry.writeBigUInt64LE(1n, 8);
    return entry;
  };
  const read = trySyscall('process_vm_readv', process.pid, iov(target), 1, iov(source), 1, 0);
  if (read < 0) return read;
  const written = trySyscall('process_vm_writev', process.pid, iov(source), 1, iov(target), 1, 0);
  return Math.min(written, 0);
}

function reason(result: number): string {
  const name = errnoName(-result);
  return name === 'EPERM'
    ? 'EPERM: refused by a seccomp filter (a container default profile without CAP_SYS_PTRACE)'
    : name;
}

/**
 * What this process may reach in another, probed once (per thread: each
 * worker probes for itself, and gets the same answer, as a seccomp filter
 * is the whole process's once it is in place before the threads start).
 */
export function remoteAccess(): RemoteAccess {
  if (probed !== null) return probed;
  const getfd = probePidfdGetfd();
  const vm = probeProcessVm();
  probed = {
    pidfdGetfd: getfd === 0,
    processVm: vm === 0,
    detail: {
      ...(getfd === 0 ? {} : { pidfdGetfd: reason(getfd) }),
      ...(vm === 0 ? {} : { processVm: reason(vm) }),
    },
  };
  return probed;
}
