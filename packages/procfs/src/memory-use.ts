// What the sandbox uses of its memory limit, as the modules that show the
// limit count it: /proc/meminfo's MemFree (meminfo) and sysinfo(2)'s
// freeram (sysinfo), so the two agree. Worker thread only; no side effects
// at import.
import { readFileSync } from 'node:fs';
import type { HandlerContext } from '@sandlock/dispatch';
import { statusMemory } from '@sandlock/sys';
import type { ProcfsPolicy } from './content.js';

/**
 * What the sandbox uses now, in bytes: the sum over its processes (the
 * reaper's descendants, walked now) of what the memory limit counts.
 */
export function sandboxUse(ctx: HandlerContext<ProcfsPolicy>): number {
  let used = 0;
  for (const pid of ctx.session.processes.refresh()) {
    let status: string;
    try {
      status = readFileSync(`/proc/${pid}/status`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    used += statusMemory(status);
  }
  return used;
}
