// The one table of what Landlock can do, and since which ABI version.
// Versions per Documentation/userspace-api/landlock.rst, "Previous limitations"
// and the ABI notes of include/uapi/linux/landlock.h.

import {
  LANDLOCK_ACCESS_FS,
  LANDLOCK_ACCESS_NET,
  LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON,
  LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF,
  LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF,
  LANDLOCK_SCOPE,
} from '@sandlock/sys';

/** Filesystem access rights, named as in <linux/landlock.h> without the prefix, lower case. */
export type FsRight =
  | 'execute'
  | 'write_file'
  | 'read_file'
  | 'read_dir'
  | 'remove_dir'
  | 'remove_file'
  | 'make_char'
  | 'make_dir'
  | 'make_reg'
  | 'make_sock'
  | 'make_fifo'
  | 'make_block'
  | 'make_sym'
  | 'refer'
  | 'truncate'
  | 'ioctl_dev';

/** TCP port access rights. */
export type NetRight = 'bind_tcp' | 'connect_tcp';

/** IPC scopes: what a sandboxed process may not reach outside its Landlock domain. */
export type Scope = 'abstract_unix_socket' | 'signal';

/** landlock_restrict_self() flags that change audit logging of denials. */
export type LogFlag = 'log_same_exec_off' | 'log_new_exec_on' | 'log_subdomains_off';

/** Anything this package can ask of the kernel that a given ABI may lack. */
export type Feature = FsRight | NetRight | Scope | LogFlag;

export type FeatureCategory = 'fs' | 'net' | 'scope' | 'log';

export interface FeatureInfo {
  category: FeatureCategory;
  /** The bit in handled_access_fs / handled_access_net / scoped / restrict_self flags. */
  bit: bigint;
  /** The first Landlock ABI version that knows it. */
  abi: number;
}

function fs(name: keyof typeof LANDLOCK_ACCESS_FS, abi: number): FeatureInfo {
  return { category: 'fs', bit: LANDLOCK_ACCESS_FS[name], abi };
}

/** Feature → category, bit and minimal ABI. Order is bit order within each category. */
export const FEATURES: Readonly<Record<Feature, FeatureInfo>> = Object.freeze({
  execute: fs('EXECUTE', 1),
  write_file: fs('WRITE_FILE', 1),
  read_file: fs('READ_FILE', 1),
  read_dir: fs('READ_DIR', 1),
  remove_dir: fs('REMOVE_DIR', 1),
  remove_file: fs('REMOVE_FILE', 1),
  make_char: fs('MAKE_CHAR', 1),
  make_dir: fs('MAKE_DIR', 1),
  make_reg: fs('MAKE_REG', 1),
  make_sock: fs('MAKE_SOCK', 1),
  make_fifo: fs('MAKE_FIFO', 1),
  make_block: fs('MAKE_BLOCK', 1),
  make_sym: fs('MAKE_SYM', 1),
  refer: fs('REFER', 2),
  truncate: fs('TRUNCATE', 3),
  ioctl_dev: fs('IOCTL_DEV', 5),
  bind_tcp: { category: 'net', bit: LANDLOCK_ACCESS_NET.BIND_TCP, abi: 4 },
  connect_tcp: { category: 'net', bit: LANDLOCK_ACCESS_NET.CONNECT_TCP, abi: 4 },
  abstract_unix_socket: { category: 'scope', bit: LANDLOCK_SCOPE.ABSTRACT_UNIX_SOCKET, abi: 6 },
  signal: { category: 'scope', bit: LANDLOCK_SCOPE.SIGNAL, abi: 6 },
  log_same_exec_off: {
    category: 'log',
    bit: BigInt(LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF),
    abi: 7,
  },
  log_new_exec_on: { category: 'log', bit: BigInt(LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON), abi: 7 },
  log_subdomains_off: {
    category: 'log',
    bit: BigInt(LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF),
    abi: 7,
  },
});

/** The newest ABI this table describes; a newer kernel is used at this level. */
export const KNOWN_ABI = 7;

const ALL_FEATURES = Object.keys(FEATURES) as Feature[];

/** The features of one category, in table order. */
export function featuresOf(category: FeatureCategory): Feature[] {
  return ALL_FEATURES.filter((name) => FEATURES[name].category === category);
}

export const ALL_FS_RIGHTS = Object.freeze(featuresOf('fs') as FsRight[]);
export const ALL_NET_RIGHTS = Object.freeze(featuresOf('net') as NetRight[]);
export const ALL_SCOPES = Object.freeze(featuresOf('scope') as Scope[]);
export const ALL_LOG_FLAGS = Object.freeze(featuresOf('log') as LogFlag[]);

/**
 * The rights a rule on a non-directory may carry. Landlock refuses any other
 * right on a file with EINVAL (ACCESS_FILE in security/landlock/fs.c), since
 * the rest describe a directory's content.
 */
export const FILE_RIGHTS: readonly FsRight[] = Object.freeze([
  'execute',
  'write_file',
  'read_file',
  'truncate',
  'ioctl_dev',
]);

export function isFeature(name: string): name is Feature {
  return Object.hasOwn(FEATURES, name);
}

/** OR of the bits of `names` (all of one category). */
export function maskOf(names: Iterable<Feature>): bigint {
  let mask = 0n;
  for (const name of names) mask |= FEATURES[name].bit;
  return mask;
}

/** The features of `category` whose bits are set in `mask`, in table order. */
export function namesOf(category: FeatureCategory, mask: bigint): Feature[] {
  return featuresOf(category).filter((name) => (FEATURES[name].bit & mask) !== 0n);
}

/** Whether an ABI version offers `feature`. */
export function supportedBy(feature: Feature, abi: number): boolean {
  return FEATURES[feature].abi <= abi;
}
