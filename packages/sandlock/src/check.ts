import { existsSync, mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { privateTmpfsRefusal } from '@sandlock/cow';
import { patchVdso, type VdsoFunctions, vdsoFunctions } from '@sandlock/determinism';
import { detectLandlock, FEATURES, type Feature } from '@sandlock/landlock';
import { compileSandboxFilter } from '@sandlock/seccomp';
import {
  AT_FDCWD,
  close,
  detachMount,
  ERRNO,
  encodeOpenHow,
  encodeSeccompNotifAddfd,
  errnoName,
  errnoNumber,
  hostArch,
  ioctl,
  ioctlBuffer,
  LaunchError,
  launch,
  mountTmpfs,
  openFlags,
  PTRACE_SEIZE,
  pageSize,
  ptrace,
  RESOLVE_BENEATH,
  RESOLVE_NO_MAGICLINKS,
  remoteAccess,
  SECCOMP_FILTER_FLAG_NEW_LISTENER,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
  SECCOMP_IOCTL_NOTIF_ADDFD,
  SECCOMP_IOCTL_NOTIF_SET_FLAGS,
  SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
  trySyscall,
} from '@sandlock/sys';
import { SUPERVISOR_VARIABLE } from './nesting.js';
import { DESCRIPTOR_FEATURES } from './remote-access.js';

/** One kernel feature Sandlock uses, and whether this kernel has it. */
export interface KernelFeature {
  name: string;
  ok: boolean;
  /** The first Linux version that has it. */
  since: string;
  /** Whether Sandlock refuses to run without it (unless asked for best effort). */
  required: boolean;
  detail?: string;
}

export interface KernelCheck {
  arch: string;
  landlockAbi: number;
  features: KernelFeature[];
  /** Every required feature is there. */
  ok: boolean;
}

const LANDLOCK_LINUX: Record<number, string> = {
  1: '5.13',
  2: '5.19',
  3: '6.2',
  4: '6.7',
  5: '6.10',
  6: '6.12',
  7: '6.15',
};

interface SeccompProbe {
  listener: boolean;
  waitKillable: boolean;
  /** The listener reached this process (pidfd_getfd, or SCM_RIGHTS where that is refused). */
  taken: boolean;
  syncWakeUp: boolean;
  addFd: boolean;
  /** PTRACE_SEIZE of a process under the filter: 0, or -errno (null: not tried). */
  ptrace: number | null;
  /** Writing a process's read-only vDSO through /proc/PID/mem; null: not tried. */
  memWrite: { ok: boolean; detail: string } | null;
  detail?: string;
  /**
   * This process runs in a supervised sandbox: the kernel refused it a
   * listener (EBUSY) and a sandbox started here is taken on by the
   * supervisor around it (nesting.ts); null when it could be reached, else why not.
   */
  delegated?: { socket: string; error: string | null };
}

/**
 * SECCOMP_IOCTL_NOTIF_ADDFD (Linux 5.9) for an id no notification has: the
 * kernel looks the id up after checking the rest and answers ENOENT; a kernel
 * without the ioctl answers EINVAL (kernel/seccomp.c, seccomp_notify_ioctl()).
 */
function probeAddFd(listener: number): boolean {
  const request = encodeSeccompNotifAddfd({
    id: 0xffff_ffff_ffffn,
    flags: 0,
    srcfd: listener,
    newfd: 0,
    newfdFlags: 0,
  });
  return ioctlBuffer(listener, SECCOMP_IOCTL_NOTIF_ADDFD, request) === -ERRNO.ENOENT;
}

/**
 * The stub waiting for its release is a process with a vDSO of its own: patch
 * it as timeStart patches a program (its exec discards the patch).
 */
function probeMemWrite(pid: number): { ok: boolean; detail: string } {
  try {
    const outcome = patchVdso(pid, { arch: hostArch(), offsetSeconds: 0n, getrandom: true });
    return { ok: outcome !== 'no-vdso', detail: outcome === 'no-vdso' ? 'no vDSO' : 'writable' };
  } catch (error) {
    return { ok: false, detail: error instanceof Error ? error.message : String(error) };
  }
}

/** Null when a connection to the Unix socket `path` is accepted, else why not. */
function reachable(path: string): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = createConnection(path, () => {
      socket.destroy();
      resolve(null);
    });
    socket.on('error', (error) => resolve(error.message));
  });
}

/** Starts /bin/true under a notifying filter and tries each piece of the supervisor's kernel API. */
async function probeSeccomp(): Promise<SeccompProbe> {
  const probe: SeccompProbe = {
    listener: false,
    waitKillable: false,
    taken: false,
    syncWakeUp: false,
    addFd: false,
    ptrace: null,
    memWrite: null,
  };
  const program = compileSandboxFilter({ notify: ['getppid'] }).program;
  for (const waitKillable of [true, false]) {
    const flags =
      SECCOMP_FILTER_FLAG_NEW_LISTENER |
      (waitKillable ? SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV : 0);
    const launched = launch({
      path: '/bin/true',
      argv: ['true'],
      env: {},
      stdio: ['ignore', 'ignore', 'ignore'],
      steps: [{ kind: 'noNewPrivs' }, { kind: 'seccompFilter', program, flags, listener: true }],
    });
    try {
      await launched.ready;
    } catch (error) {
      launched.child.kill('SIGKILL');
      if (error instanceof LaunchError && error.code === 'EINVAL' && waitKillable) continue;
      probe.detail = error instanceof Error ? error.message : String(error);
      // A filter chain holds one listener (kernel/seccomp.c, has_duplicate_listener()).
      const socket = process.env[SUPERVISOR_VARIABLE] ?? '';
      if (error instanceof LaunchError && error.code === 'EBUSY' && socket !== '') {
        probe.delegated = { socket, error: await reachable(socket) };
      }
      return probe;
    }
    probe.listener = true;
    probe.waitKillable = waitKillable;
    probe.memWrite = probeMemWrite(launched.pid);
    // Retarget answers seize a sandboxed thread for a moment. Seized with no
    // stop asked for, the stub is let go when it exits.
    probe.ptrace = ptrace(PTRACE_SEIZE, launched.pid);
    try {
      const listener = launched.takeListener();
      probe.taken = true;
      probe.addFd = probeAddFd(listener);
      try {
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
        probe.syncWakeUp = true;
      } catch {
        // EINVAL before Linux 6.6.
      } finally {
        close(listener);
      }
    } catch (error) {
      probe.detail = error instanceof Error ? error.message : String(error);
    }
    await launched.release().catch(() => {});
    return probe;
  }
  return probe;
}

/** openat2(2) with RESOLVE_* (Linux 5.6): how hidden /proc paths are opened on a caller's behalf. */
function probeOpenat2(): boolean {
  const { O_PATH, O_CLOEXEC } = openFlags(hostArch());
  const how = encodeOpenHow({
    flags: BigInt(O_PATH | O_CLOEXEC),
    resolve: BigInt(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS),
  });
  const fd = trySyscall('openat2', AT_FDCWD, Buffer.from('.\0'), how, how.length);
  if (fd < 0) return false;
  close(fd);
  return true;
}

/** What the supervised features need beyond the supervisor itself, and whether it is here. */
function featureProbes(seccomp: SeccompProbe): KernelFeature[] {
  const readable = (path: string) => {
    try {
      readFileSync(path);
      return true;
    } catch {
      return false;
    }
  };
  let vdso: VdsoFunctions | null = null;
  try {
    vdso = vdsoFunctions(process.pid);
  } catch {
    // No vDSO, or /proc/self unreadable: reported below.
  }
  const memWrite = seccomp.memWrite ?? { ok: false, detail: 'not tried' };
  return [
    {
      name: 'SECCOMP_IOCTL_NOTIF_ADDFD',
      ok: seccomp.addFd,
      detail: 'virtual files: hostname, CPU count, meminfo, /dev/urandom, hidden /proc',
      since: '5.9',
      required: false,
    },
    {
      name: 'ptrace of a sandboxed process (PTRACE_SEIZE)',
      ok: seccomp.ptrace === 0,
      detail: `chdir into and exec from a copy-on-write layer (retarget answers; without it they fail with EPERM)${
        seccomp.ptrace === null
          ? ': not tried'
          : seccomp.ptrace < 0
            ? `: errno ${-seccomp.ptrace}`
            : ''
      }`,
      since: '3.4',
      required: false,
    },
    {
      name: 'openat2 with RESOLVE_*',
      ok: probeOpenat2(),
      detail: 'opens /proc on behalf of the sandbox',
      since: '5.6',
      required: false,
    },
    {
      name: '/proc/PID/task/TID/children',
      ok: existsSync(`/proc/self/task/${process.pid}/children`),
      detail: "finds a sandbox's processes (else: every /proc/PID/stat is read)",
      since: '3.5',
      required: false,
    },
    {
      name: 'vDSO clock functions (timeStart)',
      ok: vdso?.clock === true,
      since: '-',
      required: false,
      ...(vdso ? { detail: vdso.symbols.join(' ') } : {}),
    },
    {
      name: 'vDSO writable through /proc/PID/mem (timeStart, randomSeed)',
      ok: memWrite.ok,
      since: '-',
      required: false,
      detail: memWrite.detail,
    },
    {
      name: 'vDSO getrandom (randomSeed turns it off)',
      ok: true,
      since: '6.11',
      required: false,
      detail: vdso?.getrandom ? 'present' : 'absent',
    },
    {
      name: '/proc/sys/kernel/ns_last_pid',
      ok: readable('/proc/sys/kernel/ns_last_pid'),
      detail: 'randomSeed: which fork made which process',
      since: '3.3',
      required: false,
    },
  ];
}

/**
 * pidfd_getfd and process_vm_readv/writev, which a container's default
 * seccomp profile may refuse (Docker's, containerd's: without
 * CAP_SYS_PTRACE), and what goes without them.
 */
function remoteAccessFeatures(seccomp: SeccompProbe): KernelFeature[] {
  const access = remoteAccess();
  const needing = [...new Set(Object.values(DESCRIPTOR_FEATURES))].join('; ');
  return [
    {
      name: 'seccomp listener handed to the supervisor',
      ok: seccomp.taken,
      since: '5.6',
      required: true,
      detail: access.pidfdGetfd ? 'pidfd_getfd' : 'sent by the child (SCM_RIGHTS)',
    },
    {
      name: 'pidfd_getfd',
      ok: access.pidfdGetfd,
      since: '5.6',
      required: false,
      detail: access.pidfdGetfd
        ? `needed by: ${needing}`
        : `${access.detail.pidfdGetfd}; these do not start: ${needing}`,
    },
    {
      name: 'process_vm_readv/writev',
      ok: access.processVm,
      since: '3.2',
      required: false,
      detail: access.processVm
        ? "reads the sandbox's syscall arguments"
        : `${access.detail.processVm}; /proc/PID/mem is used instead`,
    },
  ];
}

/**
 * How a workdir's maxDisk is enforced here: a tmpfs of its own per layer
 * when this process may mount one, else one in a user namespace of its own
 * (each tried on a scratch directory), else measured.
 */
function diskBoundFeature(): KernelFeature {
  let mounted: number;
  let dir: string | null = null;
  let userns: string | null = 'not tried';
  try {
    dir = mkdtempSync(join(tmpdir(), 'sandlock-check-'));
    mounted = mountTmpfs(dir, {
      size: pageSize(),
      mode: 0o700,
      uid: process.geteuid?.() ?? 0,
      gid: process.getegid?.() ?? 0,
    });
    if (mounted === 0) detachMount(dir);
    else userns = privateTmpfsRefusal(dir, pageSize());
  } catch (error) {
    mounted = -(errnoNumber((error as NodeJS.ErrnoException).code ?? '') ?? ERRNO.EPERM);
  } finally {
    try {
      if (dir !== null) rmdirSync(dir);
    } catch {
      // Left in the temp dir: a mount that could not be detached is the kernel's to report.
    }
  }
  return {
    name: 'tmpfs mount (maxDisk: writes past it fail with ENOSPC)',
    ok: mounted === 0 || userns === null,
    since: '-',
    required: false,
    detail:
      mounted === 0
        ? 'each workdir layer with maxDisk is a tmpfs of that size (diskBound tmpfs)'
        : userns === null
          ? `${errnoName(-mounted)} here: each workdir layer with maxDisk is a tmpfs of that size in a user namespace of its own (diskBound userns-tmpfs)`
          : `${errnoName(-mounted)}, and ${userns}: maxDisk is measured (the sandbox killed past it, each file capped by RLIMIT_FSIZE)`,
  };
}

/** Features of a listener and of its sandboxed process: the outer supervisor's, when delegated. */
const LISTENER_FEATURES = new Set([
  'SECCOMP_IOCTL_NOTIF_ADDFD',
  'ptrace of a sandboxed process (PTRACE_SEIZE)',
  'vDSO writable through /proc/PID/mem (timeStart, randomSeed)',
]);

/** What this kernel offers of everything Sandlock uses. */
export async function checkKernel(): Promise<KernelCheck> {
  const features: KernelFeature[] = [];
  let arch: string = process.arch;
  try {
    arch = hostArch();
    features.push({ name: `architecture ${arch}`, ok: true, since: '-', required: true });
  } catch (error) {
    features.push({
      name: `architecture ${arch}`,
      ok: false,
      since: '-',
      required: true,
      detail: String(error),
    });
  }
  const landlock = detectLandlock();
  features.push({
    name: 'Landlock',
    ok: landlock.available,
    since: '5.13',
    required: true,
    ...(landlock.available ? { detail: `ABI ${landlock.abi}` } : { detail: landlock.reason }),
  });
  for (const [name, info] of Object.entries(FEATURES) as [Feature, (typeof FEATURES)[Feature]][]) {
    features.push({
      name: `Landlock ${info.category === 'log' ? 'flag' : info.category === 'scope' ? 'scope' : 'right'} ${name} (ABI ${info.abi})`,
      ok: landlock.abi >= info.abi,
      since: LANDLOCK_LINUX[info.abi] ?? '?',
      // Audit-log flags are optional; every right and scope is handled by default.
      required: info.category !== 'log',
    });
  }
  const seccomp = await probeSeccomp();
  const around = seccomp.delegated;
  if (around !== undefined) {
    // Served by the supervisor around: its kernel API is that process's to use.
    features.push(
      {
        name: 'seccomp user notification',
        ok: around.error === null,
        since: '5.0',
        required: true,
        detail: `inside a supervised sandbox (a second listener: EBUSY): sandboxes started here are taken on by the supervisor around it, ${SUPERVISOR_VARIABLE}=${around.socket}${around.error === null ? '' : `: ${around.error}`}`,
      },
      ...featureProbes(seccomp).filter((feature) => !LISTENER_FEATURES.has(feature.name)),
      diskBoundFeature(),
    );
    return {
      arch,
      landlockAbi: landlock.abi,
      features,
      ok: features.every((feature) => feature.ok || !feature.required),
    };
  }
  features.push(
    {
      name: 'seccomp user notification',
      ok: seccomp.listener,
      since: '5.0',
      required: true,
      ...(seccomp.detail ? { detail: seccomp.detail } : {}),
    },
    {
      name: 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV',
      ok: seccomp.waitKillable,
      since: '5.19',
      required: false,
    },
    ...remoteAccessFeatures(seccomp),
    {
      name: 'seccomp notification sync wake-up',
      ok: seccomp.syncWakeUp,
      since: '6.6',
      required: false,
    },
  );
  features.push(...featureProbes(seccomp), diskBoundFeature());
  return {
    arch,
    landlockAbi: landlock.abi,
    features,
    ok: features.every((feature) => feature.ok || !feature.required),
  };
}
