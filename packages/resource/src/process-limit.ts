// The process limit as a handler module of @sandlock/dispatch. The supervisor
// imports this file in its worker threads by URL (PROCESS_LIMIT_MODULE), so
// it has no side effects at import and pulls nothing from @sandlock/dispatch
// at run time: its answers are plain Answer objects.
import type { DispatchModule, HandlerContext, WorkerSession } from '@sandlock/dispatch';
import { ERRNO, hasSyscall } from '@sandlock/sys';
import { ProcessCounter } from './processes.js';

/** The policy field the module reads (sandlock's Policy has it). */
export interface ProcessLimitPolicy {
  /** The most processes of the sandbox at once, the program included; null: no limit. */
  readonly maxProcesses?: number | null;
}

/**
 * The calls that create a process. `clone3` is not here: the sandbox filter
 * answers it ENOSYS (its flags are in memory, out of BPF's sight), so libc
 * falls back to `clone`; `clone` with CLONE_THREAD passes the filter without a
 * notification. aarch64 has no fork or vfork.
 */
export const PROCESS_LIMIT_SYSCALLS: readonly string[] = ['clone', 'fork', 'vfork'].filter((name) =>
  hasSyscall(name),
);

const CONTINUE = Object.freeze({ kind: 'continue' } as const);
// What fork(2) returns at RLIMIT_NPROC.
const REFUSE = Object.freeze({ kind: 'errno', errno: ERRNO.EAGAIN } as const);

function limitOf(policy: ProcessLimitPolicy | undefined | null): number | null {
  const max = policy?.maxProcesses;
  return typeof max === 'number' ? max : null;
}

/** One counter per supervised sandbox of this worker thread. */
const counters = new Map<number, ProcessCounter>();

function counterFor(session: WorkerSession<ProcessLimitPolicy>): ProcessCounter | undefined {
  let counter = counters.get(session.id);
  if (counter === undefined) {
    const max = limitOf(session.policy);
    if (max === null) return undefined;
    counter = new ProcessCounter(session.reaperPid, max);
    counters.set(session.id, counter);
  }
  return counter;
}

function onFork(ctx: HandlerContext<ProcessLimitPolicy>) {
  const counter = counterFor(ctx.session);
  if (counter === undefined) return CONTINUE;
  const verdict = counter.decide(ctx.pid, ctx.nr, ctx.args[0] ?? 0n);
  if (verdict === 'deny') return REFUSE;
  if (verdict === 'kill') {
    const failure = counter.failure!;
    const lasted = (performance.now() - failure.since) / 1000;
    return {
      kind: 'kill',
      reason: `the sandbox's processes could not be counted for ${lasted.toFixed(1)} s (${failure.message}), so maxProcesses could not be enforced`,
    } as const;
  }
  return CONTINUE;
}

/**
 * On for a sandbox whose policy has `maxProcesses`. Every clone (without
 * CLONE_THREAD), fork and vfork asks its sandbox's ProcessCounter; over the
 * cap the call fails with EAGAIN and nothing is created. So does a fork that
 * cannot be counted; when counting has failed for UNMEASURED_KILL_MS, the
 * sandbox is killed.
 */
const processLimit: DispatchModule<unknown, ProcessLimitPolicy> = {
  name: 'process-limit',
  syscalls: PROCESS_LIMIT_SYSCALLS,
  enabled: (policy) => limitOf(policy) !== null,
  handlers: Object.fromEntries(PROCESS_LIMIT_SYSCALLS.map((name) => [name, onFork])),
  sessionStart(session) {
    counterFor(session);
  },
  sessionEnd(session) {
    counters.get(session.id)?.close();
    counters.delete(session.id);
  },
};

export default processLimit;
