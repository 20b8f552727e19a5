import { type Session, Supervisor } from '@sandlock/dispatch';
import { PROCESS_LIMIT_MODULE } from '@sandlock/resource';
import { defaultDenyList } from '@sandlock/seccomp';
import { hostArch } from '@sandlock/sys';
import type { PluginRef, Policy } from './policy.js';

// One supervisor per set of plugins, started on first use and kept for the
// life of this process (starting one costs tens of milliseconds; its worker
// threads do not keep the process alive).
const supervisors = new Map<string, Promise<Supervisor>>();

/** Whether any feature of `policy` needs the seccomp supervisor. */
export function needsSupervisor(policy: Policy): boolean {
  return policy.maxProcesses !== null || policy.plugins.length > 0;
}

export function supervisorFor(plugins: readonly PluginRef[]): Promise<Supervisor> {
  const key = JSON.stringify(plugins);
  let supervisor = supervisors.get(key);
  if (supervisor === undefined) {
    supervisor = Supervisor.start({
      modules: [{ module: PROCESS_LIMIT_MODULE }],
      plugins: plugins.map((plugin) => ({ module: plugin.module, options: plugin.options })),
      deny: defaultDenyList(hostArch()),
    });
    supervisors.set(key, supervisor);
    supervisor.catch(() => supervisors.delete(key));
  }
  return supervisor;
}

export type { Session };
