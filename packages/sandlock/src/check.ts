import { detectLandlock, FEATURES, type Feature } from '@sandlock/landlock';
import { compileSandboxFilter } from '@sandlock/seccomp';
import {
  close,
  hostArch,
  ioctl,
  LaunchError,
  launch,
  SECCOMP_FILTER_FLAG_NEW_LISTENER,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
  SECCOMP_IOCTL_NOTIF_SET_FLAGS,
  SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
} from '@sandlock/sys';

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
  pidfdGetfd: boolean;
  syncWakeUp: boolean;
  detail?: string;
}

/** Starts /bin/true under a notifying filter and tries each piece of the supervisor's kernel API. */
async function probeSeccomp(): Promise<SeccompProbe> {
  const probe: SeccompProbe = {
    listener: false,
    waitKillable: false,
    pidfdGetfd: false,
    syncWakeUp: false,
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
      return probe;
    }
    probe.listener = true;
    probe.waitKillable = waitKillable;
    try {
      const listener = launched.takeListener();
      probe.pidfdGetfd = true;
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
    { name: 'pidfd_getfd', ok: seccomp.pidfdGetfd, since: '5.6', required: true },
    {
      name: 'seccomp notification sync wake-up',
      ok: seccomp.syncWakeUp,
      since: '6.6',
      required: false,
    },
  );
  return {
    arch,
    landlockAbi: landlock.abi,
    features,
    ok: features.every((feature) => feature.ok || !feature.required),
  };
}
