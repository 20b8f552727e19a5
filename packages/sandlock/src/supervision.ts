import { readFileSync } from 'node:fs';
import { CHROOT_MODULES } from '@sandlock/chroot';
import { COW_MODULES } from '@sandlock/cow';
import { DETERMINISM_MODULES } from '@sandlock/determinism';
import { type Session, Supervisor } from '@sandlock/dispatch';
import { FSMETA_MODULES } from '@sandlock/fsmeta';
import { NETWORK_MODULES } from '@sandlock/network';
import { PROCFS_MODULES } from '@sandlock/procfs';
import { RESOURCE_MODULES } from '@sandlock/resource';
import { defaultDenyList } from '@sandlock/seccomp';
import { hostArch } from '@sandlock/sys';
import { SandboxError } from './errors.js';
import type { PluginRef, Policy } from './policy.js';

// One supervisor per set of plugins, started on first use and kept for the
// life of this process (starting one costs tens of milliseconds; its worker
// threads do not keep the process alive).
const supervisors = new Map<string, Promise<Supervisor>>();

/**
 * Built-in modules, each on when its policy field says so. Their order in
 * the chains is the supervisor's, from the modules' own `after` and
 * `before`: this list is in no particular order.
 */
const BUILT_IN_MODULES = [
  ...RESOURCE_MODULES,
  ...DETERMINISM_MODULES,
  ...PROCFS_MODULES,
  ...FSMETA_MODULES,
  ...NETWORK_MODULES,
  ...COW_MODULES,
  ...CHROOT_MODULES,
];

/**
 * The limits read the sandbox's processes from /proc (tree walks, memory and
 * CPU counters, pidfds). Where this process cannot read its own entries there
 * — inside another sandbox that does not grant /proc — they could not see a
 * thing: refuse, rather than enforce nothing.
 */
export function assertProcReadable(policy: Policy): void {
  const limits = (['maxProcesses', 'maxMemory', 'maxCpu'] as const).filter(
    (field) => policy[field] !== null,
  );
  if (limits.length === 0) return;
  try {
    readFileSync(`/proc/${process.pid}/task/${process.pid}/children`);
    readFileSync(`/proc/${process.pid}/status`);
  } catch (error) {
    throw new SandboxError(
      `sandlock: ${limits.join(', ')} ${limits.length === 1 ? 'needs' : 'need'} /proc, which this process cannot read (${(error as NodeJS.ErrnoException).code}); inside another sandbox, grant it /proc`,
      'read /proc',
    );
  }
}

/**
 * Calls every supervised sandbox's filter notifies, whether its own policy
 * needs them or not, so that a sandbox started inside it can have its process
 * limit, host name, CPU count, and memory and load as sysinfo(2) tells them,
 * enforced by this supervisor (nesting.ts), and its socket buffers held
 * under a memory limit. Each is made a few times per process at most (glibc
 * asks sysinfo for sysconf(_SC_PHYS_PAGES) and getloadavg(); setsockopt a
 * few times per socket). Frequent calls (opens,
 * directory reads, getrandom, clocks) are notified only when this policy
 * needs them; a nested policy that needs them then is refused, naming them.
 */
const NESTING_CALLS: readonly string[] = [
  'clone',
  'fork',
  'vfork',
  'uname',
  'sched_getaffinity',
  'sysinfo',
  'setsockopt',
];

/** What a supervised sandbox's filter notifies: what its policy needs, and the nesting calls. */
export function withNesting(supervisor: Supervisor, needed: readonly string[]): string[] {
  const builtIn = new Set(
    supervisor.modules.slice(0, BUILT_IN_MODULES.length).flatMap((module) => module.syscalls),
  );
  const names = new Set(needed);
  for (const name of NESTING_CALLS) if (builtIn.has(name)) names.add(name);
  return [...names].sort();
}

/**
 * The supervisor of sandboxes with these plugins, its modules loaded on this
 * thread; its worker threads start at its first sandbox that needs one
 * (Supervisor.ready).
 */
export function supervisorFor(plugins: readonly PluginRef[]): Promise<Supervisor> {
  const key = JSON.stringify(plugins);
  let supervisor = supervisors.get(key);
  if (supervisor === undefined) {
    supervisor = Supervisor.load({
      modules: BUILT_IN_MODULES,
      plugins: plugins.map((plugin) => ({ module: plugin.module, options: plugin.options })),
      deny: defaultDenyList(hostArch()),
    });
    supervisors.set(key, supervisor);
    supervisor.catch(() => supervisors.delete(key));
  }
  return supervisor;
}

export type { Session };
