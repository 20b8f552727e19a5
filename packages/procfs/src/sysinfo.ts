// sysinfo(2) for a sandbox, as a handler module of @sandlock/dispatch: the
// memory limit as the machine's memory (as /proc/meminfo shows it), and the
// sandbox's own load and thread count (as /proc/loadavg shows them). The
// supervisor imports this file in its worker threads by URL
// (SYSINFO_MODULE), so it has no side effects at import.
import {
  type Answer,
  answer,
  defineModule,
  type HandlerContext,
  type WorkerSession,
} from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import { trySyscall } from '@sandlock/sys';
import { dropLoad, sandboxLoad, startLoad } from './load-state.js';
import { sandboxUse } from './memory-use.js';
import { SYSINFO_SIZE, type SysinfoChanges, sysinfoWith } from './sysinfo-content.js';

/** The syscalls the sysinfo module is notified of. */
export const SYSINFO_SYSCALLS: readonly string[] = ['sysinfo'];

/**
 * sysinfo(info): the real struct sysinfo, run by the supervisor, with the
 * memory fields of the limit (`maxMemory`) and the load and thread count of
 * the sandbox (whenever the module is on: a sandbox that cannot read /proc
 * must not learn the host's load from here either), written on the caller's
 * behalf. `uptime` stays real: it must agree with the processes' start times
 * in /proc (see @sandlock/determinism's README).
 */
function onSysinfo(ctx: HandlerContext<ModulePolicy>): Answer {
  const limit = ctx.session.policy.maxMemory;
  const real = Buffer.alloc(SYSINFO_SIZE);
  const result = trySyscall('sysinfo', real);
  if (result < 0) return answer.errno(-result);
  const changes: SysinfoChanges = {};
  if (limit !== null) changes.memory = { limit, used: sandboxUse(ctx) };
  // The averages /proc/loadavg shows (load-state.ts), brought up to date now.
  const { load, tasks } = sandboxLoad(ctx);
  changes.tasks = { load, threads: tasks.total };
  // A bad pointer: write() throws CallError(EFAULT), which the call returns,
  // as the kernel's copy_to_user would.
  ctx.write(ctx.args[0] ?? 0n, sysinfoWith(real, changes));
  return answer.value(0);
}

/**
 * On for a sandbox whose policy has `maxMemory` or lets it read /proc
 * (`procReadable`, proc-pids' condition): glibc's sysconf(_SC_PHYS_PAGES)
 * and _SC_AVPHYS_PAGES, getloadavg() (glibc 2.36 asks sysinfo) and other
 * sysinfo users see the limit (with `maxMemory`) and the sandbox's load and
 * threads, as /proc/meminfo and /proc/loadavg show them.
 */
export default defineModule<unknown, ModulePolicy>({
  name: 'sysinfo',
  syscalls: SYSINFO_SYSCALLS,
  enabled: (policy) => policy.maxMemory !== null || policy.procReadable,
  handlers: { sysinfo: onSysinfo },
  sessionStart(session: WorkerSession<ModulePolicy>) {
    startLoad(session.id);
  },
  sessionEnd(session: WorkerSession<ModulePolicy>) {
    dropLoad(session.id);
  },
});
