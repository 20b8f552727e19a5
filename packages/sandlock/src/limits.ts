import { type FieldName, PolicyDraft } from '@sandlock/policy';
import { cpuAffinityOf, setCpuAffinity, threadsOf, walkTree } from '@sandlock/sys';
import { SandboxError } from './errors.js';

/**
 * Limits of a running sandbox to change ({@link SandboxProcess.updateLimits}):
 * each as the policy field of the same name takes it; a field left out stays
 * as it is.
 */
export interface LimitUpdate {
  /** Bytes, or a size such as `'512M'`. */
  maxMemory?: number | string | null;
  maxProcesses?: number | null;
  /** Percent of one CPU. */
  maxCpu?: number | null;
  /** null: every CPU this process may run on. */
  cpuCores?: readonly number[] | null;
}

/** The limits in force on a running sandbox (null: none). */
export interface SandboxLimits {
  maxMemory: number | null;
  maxProcesses: number | null;
  maxCpu: number | null;
  cpuCores: readonly number[] | null;
}

export const LIMIT_FIELDS = ['maxMemory', 'maxProcesses', 'maxCpu', 'cpuCores'] as const;

/**
 * The fields of `update` checked as the policy checks them (the same
 * PolicyError, naming the field); a TypeError for a field that is not a limit.
 */
export function checkLimitUpdate(update: LimitUpdate): Partial<SandboxLimits> {
  if (typeof update !== 'object' || update === null) {
    throw new TypeError('sandlock: updateLimits: expected an object of limits');
  }
  for (const key of Object.keys(update)) {
    if (!(LIMIT_FIELDS as readonly string[]).includes(key)) {
      throw new TypeError(
        `sandlock: updateLimits: '${key}' is not a limit a running sandbox can change (${LIMIT_FIELDS.join(', ')})`,
      );
    }
  }
  const draft = new PolicyDraft();
  const given = LIMIT_FIELDS.filter((name) => update[name] !== undefined);
  for (const name of given) draft.add(name as FieldName, update[name]);
  const policy = draft.resolve();
  const checked: Partial<SandboxLimits> = {};
  for (const name of given) (checked as Record<string, unknown>)[name] = policy[name];
  return checked;
}

/** How many walks of the tree cpuCores may take before a sandbox that forks all the time is given up on. */
const AFFINITY_WALKS = 100;

/**
 * Lets every thread of the reaper and of every process below it run only on `cpus`,
 * all or none: when a thread refuses, those already changed get their CPUs
 * back. Walks the tree until a walk finds no thread it has not set: a thread
 * or child created from one already set inherits the new CPUs
 * (sched_setaffinity(2)), one created earlier turns up in the next walk.
 */
export function setSandboxAffinity(reaperPid: number, cpus: readonly number[]): void {
  const before = new Map<number, number[]>();
  try {
    for (let walk = 0; walk < AFFINITY_WALKS; walk++) {
      let found = false;
      // The reaper too: it is the sandbox's, and what it forks inherits its CPUs.
      for (const pid of [reaperPid, ...(walkTree(reaperPid) ?? []).map((entry) => entry.pid)]) {
        for (const tid of threadsOf(pid)) {
          if (before.has(tid)) continue;
          const old = cpuAffinityOf(tid);
          if (old === null) continue;
          before.set(tid, old);
          found = true;
          setCpuAffinity(tid, cpus);
        }
      }
      if (!found) return;
    }
    throw new SandboxError(
      `sandlock: cannot update limits: cpuCores: the sandbox made new threads faster than ${AFFINITY_WALKS} walks of its processes could set them`,
      'update limits',
    );
  } catch (error) {
    for (const [tid, old] of before) {
      try {
        setCpuAffinity(tid, old);
      } catch {
        // A thread that lets no one set it back refused the change too.
      }
    }
    if (!(error instanceof SandboxError)) {
      throw new SandboxError(
        `sandlock: cannot update limits: cpuCores: ${(error as Error).message.replace(/^sandlock: /, '')}`,
        'update limits',
        { cause: error },
      );
    }
    throw error;
  }
}
