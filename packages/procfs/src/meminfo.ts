// The sandbox's memory limit as its machine's memory: /proc/meminfo, as a
// handler module of @sandlock/dispatch. The supervisor imports this file in
// its worker threads by URL (MEMINFO_MODULE), so it has no side effects at
// import and pulls nothing from @sandlock/dispatch at run time.
import { readFileSync } from 'node:fs';
import type { DispatchModule, HandlerContext } from '@sandlock/dispatch';
import { maxMemoryOf, meminfoWith, type ProcfsPolicy } from './content.js';
import { sandboxUse } from './memory-use.js';
import { CONTINUE, OPEN_SYSCALLS, openRequest, type PlainAnswer, serve } from './synthetic.js';

/** The syscalls the meminfo module is notified of. */
export const MEMINFO_SYSCALLS: readonly string[] = [...OPEN_SYSCALLS];

let realMeminfo: string | null = null;

/** Opens of /proc/meminfo (read-only): the limit as MemTotal, what is left of it as MemFree. */
function onOpen(ctx: HandlerContext<ProcfsPolicy>): PlainAnswer {
  const limit = maxMemoryOf(ctx.session.policy);
  if (limit === null) return CONTINUE;
  const request = openRequest(ctx);
  if (request === null || request.path !== '/proc/meminfo') return CONTINUE;
  // The real file gives the lines and their layout; its values are not used
  // (but for two sizes), so it is read once per worker.
  realMeminfo ??= readFileSync('/proc/meminfo', 'utf8');
  return serve(meminfoWith(realMeminfo, limit, sandboxUse(ctx)), request.cloexec);
}

/**
 * On for a sandbox whose policy has `maxMemory`: /proc/meminfo shows the
 * limit as the machine's memory (free, top, Node's os.totalmem() and
 * os.freemem(), psutil), rebuilt at each open from the sandbox's current use.
 */
const meminfoModule: DispatchModule<unknown, ProcfsPolicy> = {
  name: 'meminfo',
  syscalls: MEMINFO_SYSCALLS,
  enabled: (policy) => maxMemoryOf(policy) !== null,
  handlers: Object.fromEntries(OPEN_SYSCALLS.map((name) => [name, onOpen])),
};

export default meminfoModule;
