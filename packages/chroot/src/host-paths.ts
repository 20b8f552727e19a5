// A policy with a root, as the host sees it: what Landlock grants is the
// root itself (read and execute), the mounts, and the read, write and deny
// paths, which the policy writes as the sandbox sees them, walked inside
// the root to the host objects they name. Nothing else outside the root.
// The `unix` socket paths too: the network modules compare the host path a
// socket is found at (through the root's PATH_VIEW) with them. Every other
// path of the policy (the root, the mounts' host side, the workdir and its
// storage, plugins, the HTTP CA, key and credential files) is the
// supervisor's to read, on the host.
import { readlinkSync } from 'node:fs';
import { devicePaths, type Policy } from '@sandlock/policy';
import { ERRNO } from '@sandlock/sys';
import { components, type Found, Root } from './root.js';

/** The host's side of a policy with a root. */
export interface HostPaths {
  /** The policy for Landlock and the launch: host paths, no presets, the devices as mounts. */
  policy: Policy;
  /** The mounts the sandbox sees (the policy's, and the device nodes `devices` grants, at their own paths). */
  fsMount: string[];
  /** The directory the program starts in, on the host. */
  cwd: string;
}

function hostOf(root: Root, virtual: string, what: string): string | null {
  const found: Found = root.walk(virtual, null, { followLast: true });
  try {
    if (found.proc) return virtual;
    if (found.errno === ERRNO.ENOENT) return null;
    if (found.errno !== 0) {
      throw new Error(`sandlock: chroot: ${what} ${virtual}: errno ${found.errno} inside the root`);
    }
    return readlinkSync(`/proc/self/fd/${found.fd}`, 'latin1');
  } finally {
    found.close();
  }
}

/**
 * Where a deny or `unix` path (a tree to hide, or at or beneath which
 * sockets may be reached) is on the host: the deepest part of it that
 * exists inside the root, walked there, and the names that do not exist yet
 * after it, as a deny path that does not exist yet is held without a root (a
 * file the sandbox makes there later, a socket a daemon binds later). A name
 * made later as a symlink leads elsewhere on the host, out of the entry.
 * Null where the rest cannot be named (`..` after a missing name).
 */
function hostTreeOf(root: Root, virtual: string, what: string): string | null {
  const names = components(virtual);
  for (let depth = names.length; depth >= 0; depth--) {
    const rest = names.slice(depth);
    if (rest.includes('..')) return null;
    const host = hostOf(root, `/${names.slice(0, depth).join('/')}`, what);
    if (host === null) continue;
    return [host === '/' ? '' : host, ...rest].join('/') || '/';
  }
  return null;
}

/** The deny paths on the host ({@link hostTreeOf}); throws for one that cannot be named. */
function denied(root: Root, paths: readonly string[]): string[] {
  return paths.map((path) => {
    const host = hostTreeOf(root, path, 'fsDeny');
    if (host === null) {
      throw new Error(`sandlock: chroot: fsDeny ${path}: \`..\` after a missing name`);
    }
    return host;
  });
}

/**
 * The host paths of a policy whose `chroot` is set. Throws an Error naming
 * the path when a read or write path, or the cwd, is not inside the root.
 */
export function hostPaths(policy: Policy): HostPaths {
  if (policy.chroot === null) throw new TypeError('sandlock: hostPaths needs a policy with chroot');
  const mounted = new Set(
    policy.fsMount.map((spec) => `/${components(spec.split(':')[0]!).join('/')}`),
  );
  const devices = devicePaths(policy).filter((path) => !mounted.has(path));
  const fsMount = [...policy.fsMount, ...devices.map((path) => `${path}:${path}`)];
  const root = Root.open(policy.chroot, fsMount);
  try {
    const need = (virtual: string, what: string): string => {
      const host = hostOf(root, virtual, what);
      if (host === null) {
        throw new Error(`sandlock: chroot: ${what} ${virtual} does not exist inside the root`);
      }
      return host;
    };
    const written = policy.fsWrite.map((path) => {
      const found = root.walk(path, null, { followLast: true });
      const readOnly = found.mount?.readOnly === true;
      found.close();
      if (readOnly) throw new Error(`sandlock: chroot: fsWrite ${path} is in a read-only mount`);
      return need(path, 'fsWrite');
    });
    const read = policy.fsRead.map((path) => need(path, 'fsRead'));
    const deny = denied(root, policy.fsDeny);
    // A socket path that names nothing allows nothing.
    const unix = policy.unix.flatMap((path) => hostTreeOf(root, path, 'unix') ?? []);
    const cwd = need(policy.cwd ?? '/', 'cwd');
    return {
      policy: {
        ...policy,
        system: false,
        devices: false,
        // A procfs is read: its process directories are then left to the procfs modules.
        fsRead: [
          root.path,
          ...root.mounts.filter((m) => m.readOnly || m.proc).map((m) => m.host),
          ...read,
        ],
        fsWrite: [
          ...root.mounts.filter((m) => !m.readOnly && !m.proc).map((m) => m.host),
          ...written,
        ],
        fsDeny: deny,
        unix,
        cwd,
        fsMount,
      },
      fsMount,
      cwd,
    };
  } finally {
    root.close();
  }
}

/**
 * A policy without a root of its own, for a sandbox started inside one
 * whose root is `chroot` with `fsMount` (host form, as {@link hostPaths}
 * gives it): its read, write, deny and Unix socket paths are the root's,
 * walked inside it to the host objects they name, and its processes keep
 * that root. A read or write path that names nothing inside the root grants
 * nothing; a deny or Unix socket path not made yet is held where it would be.
 * `policy` has its presets expanded.
 */
export function hostPathsInside(
  policy: Policy,
  chroot: string,
  fsMount: readonly string[],
): Policy {
  if (policy.chroot !== null) {
    throw new Error(
      'sandlock: chroot: a sandbox with a root of its own cannot start inside a sandbox with a root',
    );
  }
  const root = Root.open(chroot, fsMount);
  try {
    const hosts = (paths: readonly string[], what: string) =>
      paths.flatMap((path) => hostOf(root, path, what) ?? []);
    return {
      ...policy,
      chroot,
      fsMount: [...fsMount],
      // The device nodes it may use are the root's, as its launcher granted them.
      devices: false,
      fsRead: hosts(policy.fsRead, 'fsRead'),
      fsWrite: hosts([...policy.fsWrite, ...devicePaths(policy)], 'fsWrite'),
      fsDeny: denied(root, policy.fsDeny),
      unix: policy.unix.flatMap((path) => hostTreeOf(root, path, 'unix') ?? []),
    };
  } finally {
    root.close();
  }
}
