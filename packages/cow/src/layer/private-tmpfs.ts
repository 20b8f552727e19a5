// A tmpfs of maxDisk bytes for a process without CAP_SYS_ADMIN: a helper in
// a user and a mount namespace of its own (the creator of a user namespace
// holds every capability in it, and tmpfs may be mounted by the owner of a
// mount namespace's user namespace: user_namespaces(7), FS_USERNS_MOUNT in
// mm/shmem.c) mounts it on the layer's upper, seen in its namespace only.
// This process opens the tmpfs through /proc/<helper>/root and keeps a
// descriptor of the helper's mount namespace: the namespace, and the mount
// in it, live as long as that descriptor (nsfs holds a reference), so the
// helper may exit, and the kernel's d_path of a file of the tmpfs stays the
// upper's path in that namespace (a mount of no namespace would show the
// tmpfs's own root, "/").

import { spawn } from 'node:child_process';
import { closeSync, fstatSync, lstatSync, readFileSync, readSync } from 'node:fs';
import { close, hostArch, openFlags, trySyscall } from '@sandlock/sys';

const O = openFlags(hostArch());

/** A tmpfs seen by this process through descriptors only. */
export interface PrivateTmpfs {
  /** Its root (O_RDONLY | O_DIRECTORY). */
  readonly root: number;
  /** The mount namespace it is mounted in. */
  readonly namespace: number;
}

function readNumber(path: string): number | null {
  try {
    return Number(readFileSync(path, 'utf8').trim());
  } catch {
    return null;
  }
}

/**
 * Why this kernel refuses this process a user namespace it could mount in,
 * as its settings say, or null when nothing says so (making one is the only
 * proof). Read: Debian's kernel.unprivileged_userns_clone,
 * user.max_user_namespaces, and AppArmor's
 * kernel.apparmor_restrict_unprivileged_userns (Ubuntu 23.10+: a namespace
 * made without a profile allowing it holds no capability).
 */
export function userNamespaceRefusal(): string | null {
  const privileged = (process.geteuid?.() ?? -1) === 0;
  if (!privileged && readNumber('/proc/sys/kernel/unprivileged_userns_clone') === 0) {
    return 'kernel.unprivileged_userns_clone is 0';
  }
  if (readNumber('/proc/sys/user/max_user_namespaces') === 0) {
    return 'user.max_user_namespaces is 0';
  }
  if (!privileged && readNumber('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === 1) {
    return 'kernel.apparmor_restrict_unprivileged_userns is 1';
  }
  return null;
}

/** The helper: mounts, says so on its standard output, then waits for its standard input to close. */
const SCRIPT =
  'mount -t tmpfs -o "size=$1,mode=0700,nosuid,nodev" sandlock "$2" || exit 1; echo ready; read -r _';

/** A pipe (pipe2(2)), both ends blocking and close-on-exec: [read, write]. */
function pipe(): [number, number] {
  const fds = Buffer.alloc(8);
  const result = trySyscall('pipe2', fds, O.O_CLOEXEC);
  if (result < 0) throw new Error(`sandlock: pipe2 failed: errno ${-result}`);
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}

/** What the helper wrote until it said ready or closed its output. */
function readUntilReady(fd: number): string {
  const buffer = Buffer.alloc(4096);
  let text = '';
  for (;;) {
    const count = readSync(fd, buffer);
    if (count === 0) return text;
    text += buffer.toString('utf8', 0, count);
    if (text.endsWith('ready\n')) return text;
    if (text.length > 65536) return text;
  }
}

/**
 * Mounts a tmpfs of `size` bytes (whole pages) on the directory `target`
 * in a new mount namespace (util-linux's unshare(1) and mount(8) make it);
 * its descriptors, or why not. Blocks until the helper has mounted or
 * failed.
 */
export function privateTmpfs(target: string, size: number): PrivateTmpfs | string {
  const refusal = userNamespaceRefusal();
  if (refusal !== null) return refusal;
  const [output, input] = pipe();
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(
      'unshare',
      [
        '--user',
        '--map-root-user',
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        SCRIPT,
        'sandlock-tmpfs',
        String(size),
        target,
      ],
      { stdio: ['pipe', input, input], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } },
    );
  } catch (error) {
    closeSync(input);
    closeSync(output);
    return `cannot run unshare: ${(error as Error).message}`;
  }
  // A helper that cannot be started (no unshare) reports it as an event.
  child.on('error', () => {});
  closeSync(input);
  let said: string;
  try {
    said = readUntilReady(output);
  } finally {
    closeSync(output);
  }
  try {
    if (!said.endsWith('ready\n') || child.pid === undefined) {
      return `a user namespace's tmpfs could not be mounted: ${said.trim() || 'unshare failed'}`;
    }
    // The helper is this process's child and not reaped yet (libuv reaps on
    // the event loop, not during this synchronous call): its pid names it.
    const root = trySyscall(
      'openat',
      -100,
      Buffer.from(`/proc/${child.pid}/root${target}\0`),
      O.O_RDONLY | O.O_DIRECTORY | O.O_CLOEXEC,
      0,
    );
    if (root < 0) return `cannot open the user namespace's tmpfs: errno ${-root}`;
    const namespace = trySyscall(
      'openat',
      -100,
      Buffer.from(`/proc/${child.pid}/ns/mnt\0`),
      O.O_RDONLY | O.O_CLOEXEC,
      0,
    );
    if (namespace < 0) {
      close(root);
      return `cannot open the helper's mount namespace: errno ${-namespace}`;
    }
    // The mount, not the directory beneath it in this namespace.
    if (fstatSync(root).dev === lstatSync(target).dev) {
      close(root);
      close(namespace);
      return 'the helper mounted nothing on the upper';
    }
    return { root, namespace };
  } finally {
    child.stdin?.end();
    child.unref();
  }
}

/**
 * Whether a tmpfs in a user namespace can be had here: one of `size` bytes
 * mounted on the directory `dir` and released; null, or why not.
 */
export function privateTmpfsRefusal(dir: string, size: number): string | null {
  const held = privateTmpfs(dir, size);
  if (typeof held === 'string') return held;
  close(held.root);
  close(held.namespace);
  return null;
}
