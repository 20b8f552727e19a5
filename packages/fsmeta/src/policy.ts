// Which objects a sandbox may change the metadata of: what Landlock would
// let it write. Pure functions over the session policy, shared by the module
// and its tests.

import type { ModulePolicy } from '@sandlock/policy';
import { bytePath, pathWithin } from '@sandlock/sys';

/**
 * Whether the sandbox may change the metadata of the object `link` names:
 * `link` is the readlink of /proc/self/fd/<pinned> (bytes as latin1). A path
 * must lie in an `fsWrite` tree and in no `fsDeny` tree, and outside the
 * copy-on-write `workdir` (canonical) if there is one. An object without a
 * path (`pipe:[…]`, `socket:[…]`; memfds are told apart by the caller, which
 * has the descriptor) is the sandbox's own: allowed. Not `anon_inode:…`
 * (eventfd, epoll, timerfd…): they all share one inode of the kernel's,
 * owned by root (anon_inode_getfile() in fs/anon_inodes.c).
 */
export function writableByPolicy(
  policy: Pick<ModulePolicy, 'fsWrite' | 'fsDeny'> & { readonly workdir?: string | null },
  link: string,
  unlinked = false,
): boolean {
  if (link.startsWith('anon_inode:')) return false;
  if (!link.startsWith('/')) return true;
  // An unlinked file reads as the path it had plus " (deleted)" (d_path() in
  // fs/d_path.c); a live file may have such a name too: cut only when unlinked.
  const path = unlinked && link.endsWith(' (deleted)') ? link.slice(0, -' (deleted)'.length) : link;
  // A real file of a copy-on-write workdir is changed in its layer by the
  // cow module, never here: fs-meta meets one only when a thread put it
  // where cow had seen an object outside the workdir.
  if (policy.workdir != null && pathWithin(path, bytePath(policy.workdir))) return false;
  const denied = policy.fsDeny.map(bytePath);
  if (denied.some((tree) => pathWithin(path, tree))) return false;
  // An ancestor of a denied tree is not granted by Landlock either: sandlock
  // grants its entries around the denied one instead (fs-rules.ts, carve).
  if (denied.some((tree) => tree !== path && pathWithin(tree, path))) return false;
  return policy.fsWrite.map(bytePath).some((tree) => pathWithin(path, tree));
}
