// The process limit as a handler module of @sandlock/dispatch. The supervisor
// imports this file in its worker threads by URL (PROCESS_LIMIT_MODULE).
import {
  answer,
  defineModule,
  type HandlerContext,
  type WorkerSession,
} from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import { hasSyscall } from '@sandlock/sys';
import { ProcessCounter } from './processes.js';

/**
 * The calls that create a process. `clone3` is not here: the sandbox filter
 * answers it ENOSYS (its flags are in memory, out of BPF's sight), so libc
 * falls back to `clone`; `clone` with CLONE_THREAD passes the filter without a
 * notification. aarch64 has no fork or vfork.
 */
export const PROCESS_LIMIT_SYSCALLS: readonly string[] = ['clone', 'fork', 'vfork'].filter((name) =>
  hasSyscall(name),
);

/** One counter per supervised sandbox of this worker thread. */
const counters = new Map<number, ProcessCounter>();

function counterFor(session: WorkerSession<ModulePolicy>): ProcessCounter {
  let counter = counters.get(session.id);
  if (counter === undefined) {
    counter = new ProcessCounter(
      session.reaperPid,
      session.policy.maxProcesses!,
      undefined,
      undefined,
      session.policy.joinable === true ? session.programPid : null,
    );
    counters.set(session.id, counter);
  }
  return counter;
}

function onFork(ctx: HandlerContext<ModulePolicy>) {
  const counter = counterFor(ctx.session);
  // A running sandbox's limit may have changed (SandboxProcess.updateLimits).
  counter.max = ctx.session.policy.maxProcesses!;
  const verdict = counter.decide(ctx.pid, ctx.nr, ctx.args[0] ?? 0n);
  // What fork(2) returns at RLIMIT_NPROC.
  if (verdict === 'deny') {
    const { max } = counter;
    const { live, pending } = counter.count;
    ctx.refused(
      live + pending >= max
        ? {
            what: `${ctx.syscall}: a new process (${live + pending} of ${max})`,
            rule: `maxProcesses ${max}`,
          }
        : {
            what: `${ctx.syscall}: a new process (the sandbox's processes could not be counted: ${counter.failure?.message ?? 'unknown'})`,
            rule: `maxProcesses ${max}`,
          },
    );
    return answer.errno('EAGAIN');
  }
  if (verdict === 'kill') {
    const failure = counter.failure!;
    const lasted = (performance.now() - failure.since) / 1000;
    return answer.kill(
      `the sandbox's processes could not be counted for ${lasted.toFixed(1)} s (${failure.message}), so maxProcesses could not be enforced`,
    );
  }
  return answer.continue();
}

/**
 * On for a sandbox whose policy has `maxProcesses`. Every clone (without
 * CLONE_THREAD), fork and vfork asks its sandbox's ProcessCounter; over the
 * cap the call fails with EAGAIN and nothing is created. So does a fork that
 * cannot be counted; when counting has failed for UNMEASURED_KILL_MS, the
 * sandbox is killed.
 */
export default defineModule<unknown, ModulePolicy>({
  name: 'process-limit',
  syscalls: PROCESS_LIMIT_SYSCALLS,
  enabled: (policy) => policy.maxProcesses !== null,
  handlers: Object.fromEntries(PROCESS_LIMIT_SYSCALLS.map((name) => [name, onFork])),
  sessionStart(session) {
    counterFor(session);
  },
  sessionEnd(session) {
    counters.get(session.id)?.close();
    counters.delete(session.id);
  },
});
