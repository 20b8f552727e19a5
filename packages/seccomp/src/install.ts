import {
  type LaunchStep,
  SECCOMP_FILTER_FLAG_NEW_LISTENER,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
} from '@sandlock/sys';
import type { CompiledFilter } from './compiler.js';

export interface FilterStepOptions {
  /** Ask for a notification listener fd (SECCOMP_FILTER_FLAG_NEW_LISTENER). */
  listener?: boolean;
  /**
   * With a listener (the default: true): once the supervisor has received a notification, only a
   * fatal signal interrupts the waiting caller (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, Linux
   * 5.19+). Without it, a runtime that signals its threads often (Go's SIGURG preemption) keeps
   * restarting notified calls. The kernel refuses this flag without NEW_LISTENER.
   */
  waitKillableRecv?: boolean;
}

/** The exec-stub step that installs `filter` (run after a `noNewPrivs` step). */
export function seccompFilterStep(
  filter: CompiledFilter,
  options: FilterStepOptions = {},
): LaunchStep {
  const listener = options.listener ?? false;
  let flags = 0;
  if (listener) {
    flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    if (options.waitKillableRecv ?? true) flags |= SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
  }
  return { kind: 'seccompFilter', program: filter.program, flags, listener };
}
