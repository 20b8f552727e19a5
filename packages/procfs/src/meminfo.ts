// The sandbox's memory limit as its machine's memory: /proc/meminfo, as a
// handler module of @sandlock/dispatch. The supervisor imports this file in
// its worker threads by URL (MEMINFO_MODULE), so it has no side effects at import.
import { readFileSync } from 'node:fs';
import { type Answer, answer, defineModule, type HandlerContext } from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import { meminfoWith } from './content.js';
import { sandboxUse } from './memory-use.js';
import { OPEN_SYSCALLS, openRequest, serve } from './synthetic.js';

/** The syscalls the meminfo module is notified of. */
export const MEMINFO_SYSCALLS: readonly string[] = [...OPEN_SYSCALLS];

let realMeminfo: string | null = null;

/** Opens of /proc/meminfo (read-only): the limit as MemTotal, what is left of it as MemFree. */
function onOpen(ctx: HandlerContext<ModulePolicy>): Answer {
  const limit = ctx.session.policy.maxMemory!;
  const request = openRequest(ctx);
  if (request === null || request.path !== '/proc/meminfo') return answer.continue();
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
export default defineModule<unknown, ModulePolicy>({
  name: 'meminfo',
  syscalls: MEMINFO_SYSCALLS,
  enabled: (policy) => policy.maxMemory !== null,
  handlers: Object.fromEntries(OPEN_SYSCALLS.map((name) => [name, onOpen])),
});
