// Metadata changes through a descriptor (fchmod, fchown, fsetxattr,
// fremovexattr, futimens, and the *at calls with AT_EMPTY_PATH or a NULL
// path). Landlock mediates none of them: on a descriptor the kernel opened
// on a file of the workdir (a read left to it), the change would reach the
// real file. Such a change is made on the file's copy in the upper instead;
// on a descriptor of the upper (one this module injected) it is the
// kernel's. Outside the workdir, a sandbox that may write nothing else has
// them refused, as its filter would without a workdir.
import { type Answer, answer, type OnBehalf } from '@sandlock/dispatch/module';
import {
  AT_EMPTY_PATH,
  AT_SYMLINK_NOFOLLOW,
  close,
  hostArch,
  openFlags,
  readCStringBytes,
  S_IFDIR,
  XATTR_NAME_MAX,
  XATTR_SIZE_MAX,
} from '@sandlock/sys';
import { brokerOf, type Ctx, int, type Session, sessionOf, uint } from '../call.js';
import { identify, insideAt, placeOf } from '../resolve.js';
import { chmodIn, cName, copyUp, openIn, reaperCall, upperDir, utimesIn } from '../upper.js';

const O = openFlags(hostArch());

type Change = (broker: OnBehalf, dir: number, name: string, isDirectory: boolean) => number;

/** The change a descriptor call makes, or null when it is not one (a path is given). */
function changeOf(ctx: Ctx): { fd: number; change: Change } | null {
  const a = ctx.args;
  switch (ctx.syscall) {
    case 'fchmod': {
      const mode = uint(a[1]) & 0o7777;
      return { fd: int(a[0]), change: (b, dir, name) => chmodIn(b, dir, name, mode) };
    }
    case 'fchmodat2': {
      if ((uint(a[3]) & AT_EMPTY_PATH) === 0 || !emptyPath(ctx, a[1]!)) return null;
      const mode = uint(a[2]) & 0o7777;
      return { fd: int(a[0]), change: (b, dir, name) => chmodIn(b, dir, name, mode) };
    }
    case 'fchown':
    case 'fchownat': {
      const at = ctx.syscall === 'fchownat';
      if (at && ((uint(a[4]) & AT_EMPTY_PATH) === 0 || !emptyPath(ctx, a[1]!))) return null;
      const uid = uint(at ? a[2] : a[1]);
      const gid = uint(at ? a[3] : a[2]);
      return {
        fd: int(a[0]),
        change: (b, dir, name) =>
          reaperCall(
            b,
            'fchownat',
            [{ fd: dir }, { data: 0 }, uid, gid, AT_SYMLINK_NOFOLLOW],
            cName(name),
          ),
      };
    }
    case 'utimensat': {
      const flags = uint(a[3]);
      const byFd = a[1] === 0n || ((flags & AT_EMPTY_PATH) !== 0 && emptyPath(ctx, a[1]!));
      if (!byFd) return null;
      const times = a[2] === 0n ? null : Buffer.from(ctx.read(a[2]!, 32));
      return { fd: int(a[0]), change: (b, dir, name) => utimesIn(b, dir, name, times) };
    }
    case 'fsetxattr':
    case 'fremovexattr': {
      const remove = ctx.syscall === 'fremovexattr';
      let name: Buffer;
      try {
        name = Buffer.concat([readCStringBytes(ctx.pid, a[1]!, XATTR_NAME_MAX), Buffer.from([0])]);
      } catch {
        return { fd: int(a[0]), change: () => -34 /* ERANGE */ };
      }
      const size = remove ? 0 : Number(a[3] ?? 0n);
      if (size > XATTR_SIZE_MAX) return { fd: int(a[0]), change: () => -7 /* E2BIG */ };
      const value = size > 0 ? Buffer.from(ctx.read(a[2]!, size)) : Buffer.alloc(1);
      const flags = remove ? 0 : uint(a[4]);
      return {
        fd: int(a[0]),
        change: (b, dir, entry, isDirectory) => {
          const fd = openIn(b, dir, entry, isDirectory ? O.O_RDONLY | O.O_DIRECTORY : O.O_RDONLY);
          if (fd < 0) return fd;
          try {
            return remove
              ? reaperCall(b, 'fremovexattr', [{ fd }, { data: 0 }], name)
              : reaperCall(
                  b,
                  'fsetxattr',
                  [{ fd }, { data: 0 }, { data: name.length }, size, flags],
                  Buffer.concat([name, value]),
                );
          } finally {
            close(fd);
          }
        },
      };
    }
    default:
      return null;
  }
}

function emptyPath(ctx: Ctx, address: bigint): boolean {
  try {
    return readCStringBytes(ctx.pid, address, 1).length === 0;
  } catch {
    return false;
  }
}

/**
 * A descriptor call: its change made on the upper copy when the descriptor
 * is on the lower; null when this is not a descriptor call (the path
 * handlers take it).
 */
export function onDescriptorMetadata(ctx: Ctx): Answer | null {
  const call = changeOf(ctx);
  if (call === null) return null;
  const session = sessionOf(ctx);
  const dup = ctx.getFd(call.fd); // EBADF as the kernel
  try {
    const place = placeOf(session.workdir, dup);
    if (place === null) {
      return ctx.session.policy.fsWrite.length === 0 ? answer.errno('EACCES') : answer.continue();
    }
    if (place.side === 'upper') return onUpperObject(ctx, session, place.rel, dup, call.change);
    return onLowerObject(ctx, session, place.rel, dup, call.change);
  } finally {
    close(dup);
  }
}

/**
 * A descriptor of the layer's own file: changed by the reaper by its name
 * in the upper (fs-meta, on for a root sandbox that may write elsewhere,
 * would refuse the store's path, which is in no writable tree of the policy).
 */
function onUpperObject(
  ctx: Ctx,
  session: Session,
  rel: string[],
  dup: number,
  change: Change,
): Answer {
  const own = identify(dup);
  if (rel.length === 0 || typeof own === 'number') return answer.continue();
  const broker = brokerOf(ctx);
  const dir = upperDir(session.workdir, broker, rel.slice(0, -1));
  if (dir < 0) return answer.errno(-dir);
  try {
    session.changed = true;
    return answer.fromResult(change(broker, dir, rel.at(-1)!, own.mode === S_IFDIR));
  } finally {
    close(dir);
  }
}

function onLowerObject(
  ctx: Ctx,
  session: Session,
  rel: string[],
  dup: number,
  change: Change,
): Answer {
  if (rel.length === 0) return answer.errno('EPERM'); // the workdir's own metadata is not the layer's
  const r = insideAt(session.workdir, rel);
  try {
    const own = identify(dup);
    const shown = r.errno === 0 && r.side === 'lower' ? identify(r.lower) : null;
    const same =
      typeof own !== 'number' && shown !== null && typeof shown !== 'number' && shown.id === own.id;
    // Copied up already (by this session): its copy is what the view shows.
    const copied =
      typeof own !== 'number' &&
      r.errno === 0 &&
      r.side === 'upper' &&
      session.workdir.copies.get(own.id) === r.path;
    // Otherwise the file was replaced or removed in the merged view: what
    // the descriptor holds is shown nowhere, and stays as it is.
    if (!same && !copied) return answer.value(0);
    const broker = brokerOf(ctx);
    let dir: number;
    if (copied) {
      dir = upperDir(session.workdir, broker, r.rel.slice(0, -1));
    } else if (r.kind === 'directory') {
      const made = upperDir(session.workdir, broker, r.rel);
      if (made < 0) return answer.errno(-made);
      close(made);
      dir = upperDir(session.workdir, broker, r.rel.slice(0, -1));
    } else {
      const copy = copyUp(session.workdir, broker, r);
      if (typeof copy === 'number') return answer.errno(-copy);
      close(copy.fd);
      dir = copy.dir;
    }
    if (dir < 0) return answer.errno(-dir);
    try {
      session.changed = true;
      return answer.fromResult(change(broker, dir, r.name, r.kind === 'directory'));
    } finally {
      close(dir);
    }
  } finally {
    r.close();
  }
}

/** The descriptor calls with no path form among the module's handlers. */
export function onDescriptorOnly(ctx: Ctx): Answer {
  return onDescriptorMetadata(ctx) ?? answer.continue();
}
