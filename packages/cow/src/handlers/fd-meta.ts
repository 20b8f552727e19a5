// Metadata changes through a descriptor (fchmod, fchown, fsetxattr,
// fremovexattr, futimens, and the *at calls with AT_EMPTY_PATH or a NULL
// path). Landlock mediates none of them: on a descriptor the kernel opened
// on a file of the workdir (a read left to it), the change would reach the
// real file. Such a change is made on the file's copy in the upper instead;
// on a descriptor of the upper (one this module injected) it is made on the
// duplicate that was checked, never let through: the kernel would look the
// number up again, and another thread may have put a descriptor of the real
// file there meanwhile. Outside the workdir, a sandbox that may write
// nothing else has them refused, as its filter would without a workdir;
// one that may is answered by fs-meta where it is on, else by the same call
// made on the duplicate checked (never let through by number: a thread
// swapping a descriptor of a workdir file in would reach the real file).
import { readlinkSync } from 'node:fs';
import { type Answer, answer, type OnBehalf } from '@sandlock/dispatch/module';
import {
  AT_EMPTY_PATH,
  AT_SYMLINK_NOFOLLOW,
  type BrokerArg,
  callAsCaller,
  close,
  hostArch,
  openFlags,
  readCStringBytes,
  trySyscall,
} from '@sandlock/sys';
import { brokerOf, type Ctx, int, makerOf, type Session, sessionOf, uint } from '../call.js';
import { identify, insideAt, placeOf } from '../resolve.js';
import { chmodIn, cName, copyUp, openIn, reaperCall, upperDir, utimesIn } from '../upper.js';
import { xattrChangeOf } from './xattr-args.js';

const O = openFlags(hostArch());

/** A change on the upper's copy: `name` in `dir`. */
export type Change = (broker: OnBehalf, dir: number, name: string, isDirectory: boolean) => number;

/** A call made by this thread or by the reaper (`{ fd }`: a descriptor of this process; `{ data }`: an offset into `data`). */
type Run = (syscall: string, args: readonly BrokerArg[], data?: Buffer) => number;

/** The same change, made on a descriptor of the object itself. */
type OnObject = (run: Run, fd: number) => number;

interface DescriptorChange {
  readonly fd: number;
  readonly change: Change;
  readonly onObject: OnObject;
}

/** The change a descriptor call makes, or null when it is not one (a path is given). */
function changeOf(ctx: Ctx): DescriptorChange | null {
  const a = ctx.args;
  switch (ctx.syscall) {
    case 'fchmod': {
      const mode = uint(a[1]) & 0o7777;
      return {
        fd: int(a[0]),
        change: (b, dir, name) => chmodIn(b, dir, name, mode),
        onObject: (run, fd) => run('fchmod', [{ fd }, mode]),
      };
    }
    case 'fchmodat2': {
      if ((uint(a[3]) & AT_EMPTY_PATH) === 0 || !emptyPath(ctx, a[1]!)) return null;
      const mode = uint(a[2]) & 0o7777;
      return {
        fd: int(a[0]),
        change: (b, dir, name) => chmodIn(b, dir, name, mode),
        onObject: (run, fd) => run('fchmod', [{ fd }, mode]),
      };
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
        onObject: (run, fd) => run('fchown', [{ fd }, uid, gid]),
      };
    }
    case 'utimensat': {
      const flags = uint(a[3]);
      const byFd = a[1] === 0n || ((flags & AT_EMPTY_PATH) !== 0 && emptyPath(ctx, a[1]!));
      if (!byFd) return null;
      const times = a[2] === 0n ? null : Buffer.from(ctx.read(a[2]!, 32));
      return {
        fd: int(a[0]),
        change: (b, dir, name) => utimesIn(b, dir, name, times),
        // A NULL path: the descriptor's object (utimensat(2)).
        onObject: (run, fd) =>
          times === null
            ? run('utimensat', [{ fd }, 0, 0, 0])
            : run('utimensat', [{ fd }, 0, { data: 0 }, 0], times),
      };
    }
    case 'futimesat': {
      // A NULL path: the descriptor's object (do_utimes(), fs/utimes.c).
      if (a[1] !== 0n) return null;
      let times: Buffer | null = null;
      if (a[2] !== 0n) {
        const tv = ctx.read(a[2]!, 32); // struct timeval[2]
        times = Buffer.alloc(32);
        for (const i of [0, 1]) {
          const usec = tv.readBigInt64LE(16 * i + 8);
          if (usec < 0n || usec >= 1_000_000n) {
            return { fd: int(a[0]), change: () => -22 /* EINVAL */, onObject: () => -22 };
          }
          times.writeBigInt64LE(tv.readBigInt64LE(16 * i), 16 * i);
          times.writeBigInt64LE(usec * 1000n, 16 * i + 8);
        }
      }
      return {
        fd: int(a[0]),
        change: (b, dir, name) => utimesIn(b, dir, name, times),
        onObject: (run, fd) =>
          times === null
            ? run('utimensat', [{ fd }, 0, 0, 0])
            : run('utimensat', [{ fd }, 0, { data: 0 }, 0], times),
      };
    }
    case 'fsetxattr':
    case 'fremovexattr':
    case 'setxattrat':
    case 'removexattrat': {
      const call = xattrChangeOf(ctx);
      if (typeof call === 'number') {
        // An *at call's path handler answers its arguments' errno itself.
        if (ctx.syscall.endsWith('at')) return null;
        return { fd: int(a[0]), change: () => call, onObject: () => call };
      }
      if (!('fd' in call.target)) return null;
      const { name, value, size, flags } = call;
      const onObject: OnObject = (run, fd) =>
        call.remove
          ? run('fremovexattr', [{ fd }, { data: 0 }], name)
          : run(
              'fsetxattr',
              [{ fd }, { data: 0 }, { data: name.length }, size, flags],
              Buffer.concat([name, value]),
            );
      return {
        fd: call.target.fd,
        onObject,
        change: (b, dir, entry, isDirectory) => {
          const fd = openIn(b, dir, entry, isDirectory ? O.O_RDONLY | O.O_DIRECTORY : O.O_RDONLY);
          if (fd < 0) return fd;
          try {
            return onObject((syscall, args, data) => reaperCall(b, syscall, args, data), fd);
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
    if (inUpperTree(session.workdir, dup)) return onCheckedObject(ctx, dup, call.onObject);
    const place = placeOf(session.workdir, dup);
    if (place === null) {
      const policy = ctx.session.policy;
      if (policy.fsWrite.length === 0) return answer.errno('EACCES');
      // fs-meta takes it on, on a duplicate of its own.
      if (policy.mediatesMetadata === true) return answer.continue();
      return onCheckedObject(ctx, dup, call.onObject);
    }
    if (place.side === 'upper') return onCheckedObject(ctx, dup, call.onObject);
    return onLowerObject(ctx, session, place.rel, dup, call.change);
  } finally {
    close(dup);
  }
}

/**
 * Whether a descriptor's object lies in the layer's upper tree, by the
 * kernel's d_path of it (a removed one still names its old place there):
 * nothing else has a path beneath the upper, which the layer made new and
 * empty and which the sandbox cannot reach. Where it is exactly does not
 * matter to a change made on the object itself.
 */
function inUpperTree(workdir: Session['workdir'], fd: number): boolean {
  let path: string;
  try {
    path = readlinkSync(`/proc/thread-self/fd/${fd}`, 'latin1');
  } catch {
    return false;
  }
  return path.startsWith(`${workdir.upperPath}/`);
}

/**
 * A change on an object of the upper or outside the workdir, made on the
 * duplicate that was checked: by this thread with no capabilities where the
 * caller has its ids (makerOf), else by the reaper (the caller's ids, no
 * capabilities: the kernel's checks of the caller).
 */
function onCheckedObject(ctx: Ctx, dup: number, onObject: OnObject): Answer {
  if (makerOf(ctx).asWorker) {
    const done = callAsCaller(0n, () => onObject(runHere, dup));
    return done === null ? answer.errno('EPERM') : answer.fromResult(done.value);
  }
  const broker = brokerOf(ctx);
  return answer.fromResult(
    onObject((syscall, args, data) => reaperCall(broker, syscall, args, data), dup),
  );
}

/** A call made by this thread: `{ fd }` is the descriptor, `{ data: n }` the address of byte n of `data`. */
const runHere: Run = (syscall, args, data) =>
  trySyscall(
    syscall,
    ...args.map((arg) =>
      typeof arg !== 'object' ? arg : 'fd' in arg ? arg.fd : data!.subarray(arg.data),
    ),
  );

/**
 * A change on an object of the lower (`dup`, at `rel`): made on its copy in
 * the upper where the merged view shows it there, else nothing (the object
 * is shown nowhere).
 */
export function onLowerObject(
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
