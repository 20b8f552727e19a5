// The one place a TCP connect's destination may be changed after it was
// checked and before the reaper connects to it.
import type { WorkerSession } from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';

/**
 * The address the reaper connects to for a TCP connect to `address` (the
 * caller's sockaddr_in or sockaddr_in6, copied and checked against the
 * rules). Unchanged for now; port remapping maps a sandbox's virtual port
 * to the real one here. The rules are checked on the address the sandbox
 * named, before this.
 */
export function destinationFor(_session: WorkerSession<ModulePolicy>, address: Buffer): Buffer {
  return address;
}
