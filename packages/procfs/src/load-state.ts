// The sandbox's load, shared by the modules that show it: /proc/loadavg
// (proc-host) and sysinfo(2)'s `loads` and `procs` (sysinfo). The supervisor
// imports both module files in the same worker thread, where this file is one
// ES module instance, so both bring the same averages up to date and a
// `cat /proc/loadavg` agrees with an `os.getloadavg()` of the same sandbox.
// Worker thread only; no side effects at import.
import type { HandlerContext } from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import { readProc, threadsOf } from '@sandlock/sys';
import { decayLoad, type LoadAverages, ZERO_LOAD } from './host-content.js';

/** The averages of a session and when they were last brought up to date (performance.now()). */
interface LoadState {
  load: LoadAverages;
  at: number;
}

/** Per session (of this worker): the averages start at 0 when the session does. */
const loads = new Map<number, LoadState>();

/** The sandbox's tasks now: threads, those running (R), those counted in the load (R and D), the highest pid. */
export interface Tasks {
  total: number;
  running: number;
  active: number;
  last: number;
}

/**
 * Counts the threads of the sandbox's processes (the reaper's descendants,
 * walked now; the reaper is not one) by the state in their
 * /proc/<pid>/task/<tid>/stat. The caller's own thread is not judged by its
 * state: it waits for this very answer in seccomp_do_user_notification()
 * (kernel/seccomp.c), interruptibly until the supervisor receives the
 * notification, then, with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (which
 * sandlock sets), woken and put back to sleep killably, which /proc shows as
 * D: its state is the supervision's doing, not the program's. It counts
 * running (not in the averages), as the kernel counts its reader.
 */
export function sandboxTasks(ctx: HandlerContext<ModulePolicy>): Tasks {
  const tasks: Tasks = { total: 0, running: 0, active: 0, last: 0 };
  for (const pid of ctx.session.processes.refresh()) {
    let seen = false;
    for (const tid of threadsOf(pid)) {
      const stat = readProc(`/proc/${pid}/task/${tid}/stat`);
      if (stat === null) continue; // gone meanwhile
      seen = true;
      tasks.total++;
      if (tid === ctx.pid) {
        tasks.running++; // the reader, running as the kernel sees it
        continue;
      }
      // The state follows the command name, which may hold anything: after the last ')'.
      const state = stat.charAt(stat.lastIndexOf(')') + 2);
      if (state === 'R') tasks.running++;
      if (state === 'R' || state === 'D') tasks.active++;
    }
    if (seen && pid > tasks.last) tasks.last = pid;
  }
  return tasks;
}

/** Starts a session's averages at 0, now; a session already started keeps its own. */
export function startLoad(sessionId: number): void {
  if (!loads.has(sessionId)) loads.set(sessionId, { load: ZERO_LOAD, at: performance.now() });
}

/** Forgets a session's averages (sessionEnd; every module that shows them may call it). */
export function dropLoad(sessionId: number): void {
  loads.delete(sessionId);
}

/**
 * The sandbox's tasks now and its averages, brought up to date with the
 * count of its runnable and uninterruptible threads now (over the whole time
 * since the previous update, by either module).
 */
export function sandboxLoad(ctx: HandlerContext<ModulePolicy>): {
  load: LoadAverages;
  tasks: Tasks;
} {
  const tasks = sandboxTasks(ctx);
  const now = performance.now();
  let state = loads.get(ctx.session.id);
  if (state === undefined) {
    state = { load: ZERO_LOAD, at: now };
    loads.set(ctx.session.id, state);
  }
  state.load = decayLoad(state.load, tasks.active, now - state.at);
  state.at = now;
  return { load: state.load, tasks };
}
