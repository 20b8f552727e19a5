// The calls that take a path and walk it from the caller's root or cwd, by
// what they do to the file it names (names of every architecture; each has
// those of its own: aarch64 has no open, stat, unlink…).

/** Path-taking calls grouped by what they do with the path. */
export const PATH_CALLS = Object.freeze({
  open: ['open', 'openat', 'openat2', 'creat'],
  stat: ['stat', 'lstat', 'newfstatat'],
  statx: ['statx'],
  access: ['access', 'faccessat', 'faccessat2'],
  readlink: ['readlink', 'readlinkat'],
  unlink: ['unlink', 'unlinkat', 'rmdir'],
  mkdir: ['mkdir', 'mkdirat'],
  mknod: ['mknod', 'mknodat'],
  symlink: ['symlink', 'symlinkat'],
  link: ['link', 'linkat'],
  rename: ['rename', 'renameat', 'renameat2'],
  truncate: ['truncate'],
  /** Mode, owner and times. */
  metadata: [
    'chmod',
    'fchmodat',
    'fchmodat2',
    'chown',
    'lchown',
    'fchownat',
    'utime',
    'utimes',
    'futimesat',
    'utimensat',
  ],
  readXattr: ['getxattr', 'lgetxattr', 'listxattr', 'llistxattr'],
  writeXattr: ['setxattr', 'lsetxattr', 'removexattr', 'lremovexattr'],
  exec: ['execve', 'execveat'],
  chdir: ['chdir'],
} as const satisfies Readonly<Record<string, readonly string[]>>);

export type PathCallKind = keyof typeof PATH_CALLS;

/** One entry per call of {@link PATH_CALLS}, each kind's value given to every call of the kind. */
export function byPathCall<T>(byKind: Readonly<Record<PathCallKind, T>>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [kind, names] of Object.entries(PATH_CALLS)) {
    for (const name of names) out[name] = byKind[kind as PathCallKind];
  }
  return out;
}
