import type { Arch } from './index.js';

/**
 * How the kernel reads one argument register. `int`/`uint` are 32-bit: the
 * kernel truncates the register (SYSCALL_DEFINE's casts), so the upper half
 * may hold garbage and must be ignored — AT_FDCWD arrives as
 * 0x00000000ffffff9c and is -100 only once truncated. Everything else is a
 * full 64-bit word (pointers, sizes, flags declared `unsigned long`).
 */
export type ArgKind = 'int' | 'uint' | 'word';

type Table = Readonly<Record<string, readonly (readonly [string, ArgKind])[]>>;

const I = 'int';
const U = 'uint';
const W = 'word';

// Names follow the man pages; a single path argument is always `pathname`
// and its directory fd `dirfd`, so ctx.resolvePath() finds them by default.
const COMMON = {
  open: [
    ['pathname', W],
    ['flags', I],
    ['mode', U],
  ],
  creat: [
    ['pathname', W],
    ['mode', U],
  ],
  openat: [
    ['dirfd', I],
    ['pathname', W],
    ['flags', I],
    ['mode', U],
  ],
  openat2: [
    ['dirfd', I],
    ['pathname', W],
    ['how', W],
    ['size', W],
  ],
  execve: [
    ['pathname', W],
    ['argv', W],
    ['envp', W],
  ],
  execveat: [
    ['dirfd', I],
    ['pathname', W],
    ['argv', W],
    ['envp', W],
    ['flags', I],
  ],
  clone3: [
    ['cl_args', W],
    ['size', W],
  ],
  vfork: [],
  fork: [],
  wait4: [
    ['pid', I],
    ['wstatus', W],
    ['options', I],
    ['rusage', W],
  ],
  waitid: [
    ['idtype', I],
    ['id', I],
    ['infop', W],
    ['options', I],
    ['rusage', W],
  ],
  kill: [
    ['pid', I],
    ['sig', I],
  ],
  socket: [
    ['domain', I],
    ['type', I],
    ['protocol', I],
  ],
  connect: [
    ['fd', I],
    ['addr', W],
    ['addrlen', I],
  ],
  bind: [
    ['fd', I],
    ['addr', W],
    ['addrlen', I],
  ],
  sendto: [
    ['fd', I],
    ['buf', W],
    ['len', W],
    ['flags', U],
    ['dest_addr', W],
    ['addrlen', I],
  ],
  sendmsg: [
    ['fd', I],
    ['msg', W],
    ['flags', U],
  ],
  unlinkat: [
    ['dirfd', I],
    ['pathname', W],
    ['flags', I],
  ],
  mkdirat: [
    ['dirfd', I],
    ['pathname', W],
    ['mode', U],
  ],
  renameat2: [
    ['olddirfd', I],
    ['oldpath', W],
    ['newdirfd', I],
    ['newpath', W],
    ['flags', U],
  ],
  linkat: [
    ['olddirfd', I],
    ['oldpath', W],
    ['newdirfd', I],
    ['newpath', W],
    ['flags', I],
  ],
  symlinkat: [
    ['target', W],
    ['newdirfd', I],
    ['linkpath', W],
  ],
  newfstatat: [
    ['dirfd', I],
    ['pathname', W],
    ['statbuf', W],
    ['flags', I],
  ],
  statx: [
    ['dirfd', I],
    ['pathname', W],
    ['flags', I],
    ['mask', U],
    ['statxbuf', W],
  ],
  faccessat: [
    ['dirfd', I],
    ['pathname', W],
    ['mode', I],
  ],
  faccessat2: [
    ['dirfd', I],
    ['pathname', W],
    ['mode', I],
    ['flags', I],
  ],
  readlinkat: [
    ['dirfd', I],
    ['pathname', W],
    ['buf', W],
    ['bufsiz', I],
  ],
  fchmodat: [
    ['dirfd', I],
    ['pathname', W],
    ['mode', U],
  ],
  fchownat: [
    ['dirfd', I],
    ['pathname', W],
    ['owner', U],
    ['group', U],
    ['flags', I],
  ],
  truncate: [
    ['pathname', W],
    ['length', W],
  ],
  chdir: [['pathname', W]],
  getrandom: [
    ['buf', W],
    ['buflen', W],
    ['flags', U],
  ],
  mmap: [
    ['addr', W],
    ['length', W],
    ['prot', W],
    ['flags', W],
    ['fd', W],
    ['offset', W],
  ],
  munmap: [
    ['addr', W],
    ['length', W],
  ],
  mremap: [
    ['old_address', W],
    ['old_size', W],
    ['new_size', W],
    ['flags', W],
    ['new_address', W],
  ],
  brk: [['addr', W]],
  ioctl: [
    ['fd', U],
    ['request', U],
    ['arg', W],
  ],
  prctl: [
    ['option', I],
    ['arg2', W],
    ['arg3', W],
    ['arg4', W],
    ['arg5', W],
  ],
  setpgid: [
    ['pid', I],
    ['pgid', I],
  ],
  setsid: [],
} as const;

// clone(2), "NOTES": the raw argument order differs per architecture.
const CLONE = {
  x86_64: [
    ['flags', W],
    ['newsp', W],
    ['parent_tid', W],
    ['child_tid', W],
    ['tls', W],
  ],
  aarch64: [
    ['flags', W],
    ['newsp', W],
    ['parent_tid', W],
    ['tls', W],
    ['child_tid', W],
  ],
} as const;

const TABLES: Readonly<Record<Arch, Table>> = {
  x86_64: { ...COMMON, clone: CLONE.x86_64 },
  aarch64: { ...COMMON, clone: CLONE.aarch64 },
};

/** Syscalls whose arguments have names here. */
export type KnownSyscall = keyof typeof COMMON | 'clone';

type Entries<S extends KnownSyscall> = S extends 'clone'
  ? (typeof CLONE)['x86_64']
  : S extends keyof typeof COMMON
    ? (typeof COMMON)[S]
    : never;

type ValueOf<K> = K extends 'int' | 'uint' ? number : bigint;

/** The named arguments of syscall `S`: 32-bit ones as numbers, words as bigints. */
export type SyscallArgs<S extends KnownSyscall> = {
  readonly [E in Entries<S>[number] as E[0]]: ValueOf<E[1]>;
};

/** Whether `name` has named arguments in the table. */
export function isKnownSyscall(name: string): name is KnownSyscall {
  return Object.hasOwn(COMMON, name) || name === 'clone';
}

/** The argument names and kinds of `syscall` on `arch`, or undefined if the table lacks it. */
export function argumentLayout(
  syscall: string,
  arch: Arch,
): readonly (readonly [string, ArgKind])[] | undefined {
  const table = TABLES[arch];
  return Object.hasOwn(table, syscall) ? table[syscall] : undefined;
}

/** Reads one raw register the way the kernel does for `kind`. */
export function convertArg(raw: bigint, kind: ArgKind): number | bigint {
  if (kind === 'int') return Number(BigInt.asIntN(32, raw));
  if (kind === 'uint') return Number(BigInt.asUintN(32, raw));
  return raw;
}

/** The named arguments of one call, from its six raw registers. */
export function namedArgs(
  syscall: string,
  arch: Arch,
  args: readonly bigint[],
): Record<string, number | bigint> | undefined {
  const layout = argumentLayout(syscall, arch);
  if (layout === undefined) return undefined;
  const named: Record<string, number | bigint> = {};
  layout.forEach(([name, kind], index) => {
    named[name] = convertArg(args[index] ?? 0n, kind);
  });
  return named;
}

/** The register index of argument `name` of `syscall`, or -1. */
export function argumentIndex(syscall: string, arch: Arch, name: string): number {
  const layout = argumentLayout(syscall, arch);
  return layout === undefined ? -1 : layout.findIndex(([argName]) => argName === name);
}
