// A path the merged walk took out of the workdir through what only the
// layer holds (a symlink the sandbox made there, `..` of a directory of the
// upper): the kernel's own lookup of the caller's path would not go there,
// so the call cannot be left to it. The rest of the walk is resolved by the
// sandbox's reaper (its Landlock domain, its ids, no capabilities), from the
// lower root's descriptor, with the text the merged walk read once: the
// object is what the policy lets the sandbox reach by that path, and the
// handlers act on that descriptor only.
import { readlinkSync } from 'node:fs';
import { type Answer, answer } from '@sandlock/dispatch/module';
import {
  AT_EMPTY_PATH,
  close,
  ERRNO,
  hostArch,
  openFlags,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  STATX_TYPE,
  trySyscall,
} from '@sandlock/sys';
import { brokerOf, type Ctx, type Session } from './call.js';
import { identify, type Kind, type Outside } from './resolve.js';

const O = openFlags(hostArch());
const EMPTY = Buffer.from('\0');

/**
 * openat(lowerRoot, rest, flags, mode) by the reaper: a descriptor of this
 * process, or -errno. The object must be the one the merged walk pinned
 * (when it found one), and never in the workdir or its layer (a path
 * changed between the two walks): else EAGAIN, nothing opened.
 */
export function openThroughLayer(
  ctx: Ctx,
  session: Session,
  outside: Outside & { readonly throughLayer: string },
  flags: number,
  mode = 0,
): number {
  const { workdir } = session;
  const reply = brokerOf(ctx).call({
    syscall: 'openat',
    args: [{ fd: workdir.lowerRoot }, { data: 0 }, flags, mode],
    data: Buffer.from(`${outside.throughLayer}\0`, 'latin1'),
    returnsFd: true,
  });
  if (reply.result < 0) return reply.result;
  const fd = reply.fd;
  const pinned = outside.walked.errno === 0 ? identify(outside.walked.fd) : null;
  const found = identify(fd);
  const same =
    typeof found !== 'number' &&
    (pinned === null || (typeof pinned !== 'number' && pinned.id === found.id));
  if (!same || inWorkdir(session, fd)) {
    close(fd);
    return -ERRNO.EAGAIN;
  }
  return fd;
}

/** Whether the kernel's path of a descriptor lies in the workdir or its layer. */
function inWorkdir(session: Session, fd: number): boolean {
  let path: string;
  try {
    path = readlinkSync(`/proc/thread-self/fd/${fd}`, 'latin1');
  } catch {
    return true;
  }
  const { lowerPath, upperPath } = session.workdir;
  return [lowerPath, upperPath].some((base) => path === base || path.startsWith(`${base}/`));
}

/** The object an O_PATH open by the reaper finds (not following a last symlink unless `follow`), or -errno. */
export function pinThroughLayer(
  ctx: Ctx,
  session: Session,
  outside: Outside & { readonly throughLayer: string },
  follow: boolean,
): number {
  return openThroughLayer(ctx, session, outside, O.O_PATH | (follow ? 0 : O.O_NOFOLLOW));
}

const statxBuffer = Buffer.alloc(256);

/** The kind of the object a descriptor refers to, or -errno. */
export function kindOf(fd: number): Kind | number {
  const got = trySyscall('statx', fd, EMPTY, AT_EMPTY_PATH, STATX_TYPE, statxBuffer);
  if (got < 0) return got;
  const type = statxBuffer.readUInt16LE(28) & S_IFMT;
  return type === S_IFDIR ? 'directory' : type === S_IFLNK ? 'symlink' : 'file';
}

/** Whether a resolved path left the workdir through the layer. */
export function throughLayer(
  resolved: Outside,
): resolved is Outside & { readonly throughLayer: string } {
  return resolved.throughLayer !== undefined;
}

/**
 * Answers a call whose walk left the workdir (`resolved`, closed here) with
 * `outside`: given the walk's errno alone when the kernel's own lookup leaves
 * the same way, else given the object the reaper's walk pins through the
 * layer (closed after).
 */
export function answerOutside(
  ctx: Ctx,
  session: Session,
  resolved: Outside,
  follow: boolean,
  outside: (errno: number, pinned?: number) => Answer,
): Answer {
  try {
    if (!throughLayer(resolved)) return outside(resolved.walked.errno);
    const pinned = pinThroughLayer(ctx, session, resolved, follow);
    if (pinned < 0) return answer.errno(-pinned);
    try {
      return outside(0, pinned);
    } finally {
      close(pinned);
    }
  } finally {
    resolved.walked.close();
  }
}
