// The reaper of a sandbox started inside a sandbox with a root (delegated:
// `ModulePolicy.delegated`) is the outer sandbox's: its calls are checked by
// the outer Landlock domain only, never the inner one, which the inner
// launcher made for its own processes. What the module asks it for such a
// sandbox is checked here against the inner policy's paths (host paths,
// narrowed by the outer's: nesting.ts of sandlock), as Landlock would check
// them: reading beneath fsRead or fsWrite, changing beneath fsWrite, never
// beneath fsDeny. A call this does not know is refused.
import { readlinkSync } from 'node:fs';
import type { OnBehalf } from '@sandlock/dispatch/module';
import {
  type BrokerArg,
  type BrokerRequest,
  bytePath,
  ERRNO,
  F_DUPFD_CLOEXEC,
  hostArch,
  openFlags,
  pathWithin,
} from '@sandlock/sys';

const O = openFlags(hostArch());
const O_ACCMODE = 3;

/** The paths a delegated sandbox's policy grants, on the host's side. */
export interface GrantedPaths {
  readonly fsRead: readonly string[];
  readonly fsWrite: readonly string[];
  readonly fsDeny: readonly string[];
}

/** Calls that read or check, and change nothing. */
const READS = new Set(['faccessat2', 'getxattr', 'listxattr', 'close']);
/** Calls that change the names `[dir, name]` at these argument pairs. */
const NAMES: Readonly<Record<string, readonly (readonly [number, number])[]>> = {
  mkdirat: [[0, 1]],
  mknodat: [[0, 1]],
  unlinkat: [[0, 1]],
  symlinkat: [[1, 2]],
  renameat2: [
    [0, 1],
    [2, 3],
  ],
  linkat: [
    [0, 1],
    [2, 3],
  ],
};
/** Calls that change the object behind their first argument (a descriptor). */
const OBJECTS = new Set(['ftruncate', 'fchmodat2', 'fchownat', 'utimensat']);

function hostOf(fd: number): string | null {
  try {
    const path = readlinkSync(`/proc/self/fd/${fd}`, 'latin1');
    return path.startsWith('/') ? path : null;
  } catch {
    return null;
  }
}

function named(dir: string | null, name: string): string | null {
  if (dir === null || name.includes('/')) return null;
  if (name === '' || name === '.') return dir;
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

function nameAt(data: Uint8Array | undefined, arg: BrokerArg | undefined): string | null {
  if (data === undefined || typeof arg !== 'object' || !('data' in arg)) return null;
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const end = bytes.indexOf(0, arg.data);
  return end < 0 ? null : bytes.toString('latin1', arg.data, end);
}

function fdOf(arg: BrokerArg | undefined): number | null {
  return typeof arg === 'object' && 'fd' in arg ? arg.fd : null;
}

/** `broker` with every call checked against `granted`. */
export function narrowedBroker(broker: OnBehalf, granted: GrantedPaths): OnBehalf {
  const within = (path: string | null, list: readonly string[]) =>
    path !== null && list.some((entry) => pathWithin(path, bytePath(entry)));
  const denied = (path: string | null) => path === null || within(path, granted.fsDeny);
  const writable = (path: string | null) => !denied(path) && within(path, granted.fsWrite);
  const readable = (path: string | null) =>
    !denied(path) && (within(path, granted.fsRead) || within(path, granted.fsWrite));
  /** The reaper's duplicates (xattr.ts) by number: the host path of what they duplicate. */
  const duplicates = new Map<number, string | null>();
  const refused = (request: BrokerRequest) => ({
    result: -ERRNO.EACCES,
    fd: -1,
    data: Buffer.from(request.data ?? new Uint8Array()),
  });
  return {
    openat(dir, name, flags, mode) {
      const target = named(hostOf(dir), name.toString('latin1'));
      const changes = (flags & O_ACCMODE) !== O.O_RDONLY || (flags & (O.O_TRUNC | O.O_CREAT)) !== 0;
      if (!(changes ? writable(target) : readable(target))) return -ERRNO.EACCES;
      return broker.openat(dir, name, flags, mode);
    },
    call(request) {
      const syscall = String(request.syscall);
      const args = request.args ?? [];
      if (syscall === 'fcntl') {
        const source = fdOf(args[0]);
        if (source === null || args[1] !== F_DUPFD_CLOEXEC) return refused(request);
        const reply = broker.call(request);
        if (reply.result >= 0) duplicates.set(reply.result, hostOf(source));
        return reply;
      }
      if (syscall === 'close') duplicates.delete(Number(args[0]));
      if (READS.has(syscall)) return broker.call(request);
      let ok = false;
      if (syscall in NAMES) {
        ok = NAMES[syscall]!.every(([dir, name]) => {
          const fd = fdOf(args[dir]);
          const text = nameAt(request.data, args[name]);
          return fd !== null && text !== null && writable(named(hostOf(fd), text));
        });
      } else if (OBJECTS.has(syscall)) {
        const fd = fdOf(args[0]);
        ok = fd !== null && writable(hostOf(fd));
      } else if (syscall === 'setxattr' || syscall === 'removexattr') {
        // On /proc/self/fd/N of the reaper's duplicate (xattr.ts).
        const path = /^\/proc\/self\/fd\/(\d+)$/.exec(nameAt(request.data, args[0]) ?? '');
        ok = path !== null && writable(duplicates.get(Number(path[1])) ?? null);
      }
      return ok ? broker.call(request) : refused(request);
    },
  };
}
