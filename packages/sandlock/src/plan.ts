import type { Supervisor } from '@sandlock/dispatch';
import { resolveNetHosts } from '@sandlock/network';
import { type ModulePolicy, modulePolicy } from '@sandlock/policy';
import { SandboxError } from './errors.js';
import { needsProxy } from './http.js';
import { SUPERVISOR_VARIABLE } from './nesting.js';
import type { Policy } from './policy.js';
import { supervisorFor, withNesting } from './supervision.js';

/** How a sandbox of a policy is supervised, decided before anything starts. */
export interface SupervisionPlan {
  /** The policy as the modules see it. */
  view: ModulePolicy;
  supervisor: Supervisor;
  /** The socket of the supervisor of the sandbox this process runs in, which takes this policy on; null when this process supervises. */
  outerSupervisor: string | null;
  /** What this sandbox's own filter notifies (empty: no listener). */
  notify: string[];
  /** The reaper serves the calls a module makes on the sandbox's behalf. */
  broker: boolean;
  /** /proc's process directories are left out of the sandbox's Landlock rules: the supervisor hides processes. */
  hideProcesses: boolean;
  /**
   * The sandbox may make Unix sockets: a supervisor (its own or the one
   * around it) answers its connects and sends. Without one, nothing would
   * check which named socket it reaches.
   */
  unixSockets: boolean;
}

/** The addresses of the network rules' host names, resolved now and pinned for the sandbox's life. */
async function pinnedHosts(policy: Policy): Promise<Record<string, string[]>> {
  try {
    return await resolveNetHosts(policy);
  } catch (error) {
    throw new SandboxError((error as Error).message, 'resolve host names');
  }
}

export async function supervisionPlan(policy: Policy): Promise<SupervisionPlan> {
  let view = modulePolicy(policy, undefined, await pinnedHosts(policy));
  if (needsProxy(policy)) {
    // Connects go to the proxy through the destinations module; the trust
    // bundles' opens are answered (their content is made with the proxy).
    view = { ...view, mediatesDestinations: true, trustBundles: {} };
  }
  const supervisor = await supervisorFor(policy.plugins);
  let needed = supervisor.notifiedSyscalls({ policy: view });
  if (needed.length > 0 && !view.mediatesDestinations) {
    // Supervised anyway: its connects and sends are answered too (a sandbox
    // started inside reaches the delegation socket through them).
    view = { ...view, mediatesDestinations: true };
    needed = supervisor.notifiedSyscalls({ policy: view });
  }
  // Inside a supervised sandbox, its supervisor takes this policy on (nesting.ts).
  const outer = needed.length > 0 ? process.env[SUPERVISOR_VARIABLE] : undefined;
  const outerSupervisor = outer !== undefined && outer !== '' ? outer : null;
  const notify =
    outerSupervisor !== null || needed.length === 0 ? [] : withNesting(supervisor, needed);
  return {
    view,
    supervisor,
    outerSupervisor,
    notify,
    broker: notify.length > 0 && supervisor.actsOnBehalf({ policy: view }),
    unixSockets: outerSupervisor !== null || notify.includes('connect'),
    hideProcesses: view.hidesProcesses && (notify.length > 0 || outerSupervisor !== null),
  };
}
