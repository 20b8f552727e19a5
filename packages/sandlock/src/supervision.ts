import { readFileSync } from 'node:fs';
import { RANDOM_MODULE, TIME_MODULE } from '@sandlock/determinism';
import { type Session, Supervisor } from '@sandlock/dispatch';
import { FS_META_MODULE } from '@sandlock/fsmeta';
import type { ModulePolicy } from '@sandlock/policy';
import {
  DETERMINISTIC_DIRS_MODULE,
  HOSTNAME_MODULE,
  MEMINFO_MODULE,
  NUM_CPUS_MODULE,
  PROC_HOST_MODULE,
  PROC_PIDS_MODULE,
  SYSINFO_MODULE,
} from '@sandlock/procfs';
import { PROCESS_LIMIT_MODULE, SOCKET_BUFFERS_MODULE } from '@sandlock/resource';
import { defaultDenyList } from '@sandlock/seccomp';
import { hostArch } from '@sandlock/sys';
import { SandboxError } from './errors.js';
import type { PluginRef, Policy } from './policy.js';

// One supervisor per set of plugins, started on first use and kept for the
// life of this process (starting one costs tens of milliseconds; its worker
// threads do not keep the process alive).
const supervisors = new Map<string, Promise<Supervisor>>();

/** Built-in modules, in chain order; each turns itself off when its policy field is unset. */
// The time module comes before the procfs ones: its after-exec hooks answer
// continue, and num-cpus answers sched_getaffinity (aarch64's hook) itself.
const BUILT_IN_MODULES = [
  { module: PROCESS_LIMIT_MODULE },
  // On with maxMemory: socket buffers held to the kernel's default size.
  { module: SOCKET_BUFFERS_MODULE },
  { module: TIME_MODULE },
  { module: RANDOM_MODULE },
  // Before the other procfs modules: it hides outside processes first, and
  // hands them its resolved copy of the path.
  { module: PROC_PIDS_MODULE },
  // Right after it, on the same condition: it serves /proc/loadavg and the
  // mount tables on proc-pids' resolution of the path.
  { module: PROC_HOST_MODULE },
  { module: HOSTNAME_MODULE },
  { module: NUM_CPUS_MODULE },
  { module: MEMINFO_MODULE },
  // On with maxMemory or a readable /proc: the limit, and the load
  // proc-host's /proc/loadavg shows (they share its state).
  { module: SYSINFO_MODULE },
  { module: DETERMINISTIC_DIRS_MODULE },
  // Landlock does not mediate chmod, utimes and extended attributes: for a
  // root sandbox that may write somewhere they are done on behalf, on what
  // the policy lets it write (mediatesMetadata).
  { module: FS_META_MODULE },
];

/** Whether any feature of `policy` needs the seccomp supervisor. */
export function needsSupervisor(policy: ModulePolicy): boolean {
  return (
    policy.maxProcesses !== null ||
    policy.maxMemory !== null ||
    policy.hostname !== null ||
    policy.numCpus !== null ||
    policy.deterministicDirs ||
    policy.randomSeed !== null ||
    policy.timeStart !== null ||
    policy.procReadable ||
    policy.mediatesMetadata ||
    policy.plugins.length > 0
  );
}

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

export function supervisorFor(plugins: readonly PluginRef[]): Promise<Supervisor> {
  const key = JSON.stringify(plugins);
  let supervisor = supervisors.get(key);
  if (supervisor === undefined) {
    supervisor = Supervisor.start({
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
