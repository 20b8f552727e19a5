// `/proc/<pid>/root` under a mounted procfs. The kernel follows that magic
// link to the process's real root (proc_root_link() in fs/proc/base.c),
// which for an emulated chroot is the host's `/`: stat, access or readlink
// of `/proc/self/root/etc/shadow` would look at the host's file. Under
// chroot(2) the link leads to the chroot, so the rest of such a path is
// walked inside the root here, as `/rest`.
import { ERRNO } from '@sandlock/sys';
import { type Ctx, type Session, threadGroup } from './call.js';

const { EACCES } = ERRNO;

/** Every process of the sandbox has the same root. */
function inSandbox(ctx: Ctx, pid: number): boolean {
  const { processes } = ctx.session;
  return processes.live.has(pid) || processes.refresh().has(pid);
}

/**
 * The path inside the root that `path` names through a `root` link of a
 * process of the sandbox in a mounted procfs (a Buffer), -EACCES through
 * another process's link, or null when `path` goes through no such link
 * (or names the link itself, not followed).
 */
export function throughProcRoot(
  ctx: Ctx,
  session: Session,
  path: Buffer,
  followLast: boolean,
): Buffer | number | null {
  const text = path.toString('latin1');
  if (!text.startsWith('/')) return null;
  const parts = text.split('/');
  const names: { name: string; at: number }[] = [];
  parts.forEach((name, at) => {
    if (name !== '' && name !== '.') names.push({ name, at });
  });
  const mount = session.root.mounts.find(
    (candidate) => candidate.proc && candidate.virt.every((name, i) => names[i]?.name === name),
  );
  if (mount === undefined) return null;
  const after = names.slice(mount.virt.length).map((entry) => entry.name);
  const own = threadGroup(ctx.pid);
  let link: number;
  let who: number | null;
  if (after[1] === 'root') {
    link = 1;
    who = /^\d+$/.test(after[0] ?? '') ? Number(after[0]) : null;
    if (after[0] !== 'self' && after[0] !== 'thread-self' && who === null) return null;
  } else if (after[1] === 'task' && /^\d+$/.test(after[2] ?? '') && after[3] === 'root') {
    link = 3;
    who = /^\d+$/.test(after[0] ?? '') ? Number(after[0]) : null;
    if (after[0] !== 'self' && who === null) return null;
    if (threadGroup(Number(after[2])) !== (who ?? own)) return -EACCES;
  } else {
    return null;
  }
  if (who !== null && threadGroup(who) !== own && !inSandbox(ctx, threadGroup(who))) return -EACCES;
  const rootAt = names[mount.virt.length + link]!.at;
  const rest = parts.slice(rootAt + 1).join('/');
  if (rest === '' && !followLast && !text.endsWith('/')) return null;
  return Buffer.from(`/${rest}`, 'latin1');
}
