import type { Supervisor } from '@sandlock/dispatch';
import { resolveNetHosts } from '@sandlock/network';
import { type ModulePolicy, modulePolicy, netRulesOf } from '@sandlock/policy';
import { SandboxError } from './errors.js';
import { needsProxy } from './http.js';
import { SUPERVISOR_VARIABLE } from './nesting.js';
import type { Policy } from './policy.js';
import { descriptorRefusal, pidfdGetfdMissing } from './remote-access.js';
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
  // Address rules make a sandbox supervised (the destinations module); inside
  // a supervised sandbox, its supervisor resolves their host names
  // (nesting.ts) with the host's resolver, which this process, confined by
  // the sandbox around it, may not reach.
  const delegated = netRulesOf(policy) !== null && (process.env[SUPERVISOR_VARIABLE] ?? '') !== '';
  let view = modulePolicy(policy, undefined, delegated ? {} : await pinnedHosts(policy));
  if (needsProxy(policy)) {
    // Connects go to the proxy through the destinations module; the trust
    // bundles' opens are answered (their content is made with the proxy).
    view = { ...view, mediatesDestinations: true, trustBundles: {} };
  }
  const supervisor = await supervisorFor(policy.plugins);
  // Where pidfd_getfd is refused (a container's default seccomp profile),
  // nothing is connected or sent on the sandbox's behalf: a sandbox whose
  // policy has no address rules, unix paths or HTTP rules makes no Unix
  // socket instead, as one with no supervisor (its filter refuses them).
  const withoutDescriptors = pidfdGetfdMissing() !== null;
  if (withoutDescriptors && view.mediatesDestinations && !needsDestinations(policy)) {
    view = { ...view, mediatesDestinations: false };
  }
  let needed = supervisor.notifiedSyscalls({ policy: view });
  if (needed.length > 0 && !view.mediatesDestinations && !withoutDescriptors) {
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
  if (notify.length > 0) {
    const refusal = descriptorRefusal(
      supervisor.modulesTakingDescriptors({ policy: view }),
      policy.maxMemory !== null,
    );
    if (refusal !== null) throw new SandboxError(refusal, 'pidfd_getfd');
    // The listener then comes over a socket, sent by the child after its
    // filter is in place (launch's listenerTransfer).
    if (withoutDescriptors && notify.includes('sendmsg')) {
      throw new SandboxError(
        'sandlock: a module notifies sendmsg, which the launch needs to hand over the seccomp listener where pidfd_getfd is refused',
        'pidfd_getfd',
      );
    }
  }
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

/** The policy itself asks for connects and sends to be checked (not only a writable tree). */
function needsDestinations(policy: Policy): boolean {
  return netRulesOf(policy) !== null || policy.unix.length > 0 || needsProxy(policy);
}
