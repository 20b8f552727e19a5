// Layouts and constants of <linux/landlock.h>. See landlock(7) and
// Documentation/userspace-api/landlock.rst for which ABI version added what.

import { assertFits, encodeWith, zeroStruct } from './layout.js';

// --- access rights (u64 bit masks, hence bigint) ---

export const LANDLOCK_ACCESS_FS_EXECUTE = 1n << 0n;
export const LANDLOCK_ACCESS_FS_WRITE_FILE = 1n << 1n;
export const LANDLOCK_ACCESS_FS_READ_FILE = 1n << 2n;
export const LANDLOCK_ACCESS_FS_READ_DIR = 1n << 3n;
export const LANDLOCK_ACCESS_FS_REMOVE_DIR = 1n << 4n;
export const LANDLOCK_ACCESS_FS_REMOVE_FILE = 1n << 5n;
export const LANDLOCK_ACCESS_FS_MAKE_CHAR = 1n << 6n;
export const LANDLOCK_ACCESS_FS_MAKE_DIR = 1n << 7n;
export const LANDLOCK_ACCESS_FS_MAKE_REG = 1n << 8n;
export const LANDLOCK_ACCESS_FS_MAKE_SOCK = 1n << 9n;
export const LANDLOCK_ACCESS_FS_MAKE_FIFO = 1n << 10n;
export const LANDLOCK_ACCESS_FS_MAKE_BLOCK = 1n << 11n;
export const LANDLOCK_ACCESS_FS_MAKE_SYM = 1n << 12n;
/** ABI 2. Always denied for a ruleset's domain unless explicitly allowed by a rule. */
export const LANDLOCK_ACCESS_FS_REFER = 1n << 13n;
/** ABI 3. */
export const LANDLOCK_ACCESS_FS_TRUNCATE = 1n << 14n;
/** ABI 5. */
export const LANDLOCK_ACCESS_FS_IOCTL_DEV = 1n << 15n;

/** Filesystem access rights by their <linux/landlock.h> name without the prefix. */
export const LANDLOCK_ACCESS_FS = Object.freeze({
  EXECUTE: LANDLOCK_ACCESS_FS_EXECUTE,
  WRITE_FILE: LANDLOCK_ACCESS_FS_WRITE_FILE,
  READ_FILE: LANDLOCK_ACCESS_FS_READ_FILE,
  READ_DIR: LANDLOCK_ACCESS_FS_READ_DIR,
  REMOVE_DIR: LANDLOCK_ACCESS_FS_REMOVE_DIR,
  REMOVE_FILE: LANDLOCK_ACCESS_FS_REMOVE_FILE,
  MAKE_CHAR: LANDLOCK_ACCESS_FS_MAKE_CHAR,
  MAKE_DIR: LANDLOCK_ACCESS_FS_MAKE_DIR,
  MAKE_REG: LANDLOCK_ACCESS_FS_MAKE_REG,
  MAKE_SOCK: LANDLOCK_ACCESS_FS_MAKE_SOCK,
  MAKE_FIFO: LANDLOCK_ACCESS_FS_MAKE_FIFO,
  MAKE_BLOCK: LANDLOCK_ACCESS_FS_MAKE_BLOCK,
  MAKE_SYM: LANDLOCK_ACCESS_FS_MAKE_SYM,
  REFER: LANDLOCK_ACCESS_FS_REFER,
  TRUNCATE: LANDLOCK_ACCESS_FS_TRUNCATE,
  IOCTL_DEV: LANDLOCK_ACCESS_FS_IOCTL_DEV,
} as const);
export type LandlockAccessFsName = keyof typeof LANDLOCK_ACCESS_FS;

/** ABI 4. */
export const LANDLOCK_ACCESS_NET_BIND_TCP = 1n << 0n;
/** ABI 4. */
export const LANDLOCK_ACCESS_NET_CONNECT_TCP = 1n << 1n;

export const LANDLOCK_ACCESS_NET = Object.freeze({
  BIND_TCP: LANDLOCK_ACCESS_NET_BIND_TCP,
  CONNECT_TCP: LANDLOCK_ACCESS_NET_CONNECT_TCP,
} as const);
export type LandlockAccessNetName = keyof typeof LANDLOCK_ACCESS_NET;

/** ABI 6. */
export const LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET = 1n << 0n;
/** ABI 6. */
export const LANDLOCK_SCOPE_SIGNAL = 1n << 1n;

export const LANDLOCK_SCOPE = Object.freeze({
  ABSTRACT_UNIX_SOCKET: LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET,
  SIGNAL: LANDLOCK_SCOPE_SIGNAL,
} as const);
export type LandlockScopeName = keyof typeof LANDLOCK_SCOPE;

// --- syscall flags and rule types (plain ints) ---

/** landlock_create_ruleset(NULL, 0, flag) returns the highest supported ABI version. */
export const LANDLOCK_CREATE_RULESET_VERSION = 1 << 0;
/** landlock_create_ruleset(NULL, 0, flag) returns a bit mask of fixed errata (ABI 7). */
export const LANDLOCK_CREATE_RULESET_ERRATA = 1 << 1;

export const LANDLOCK_RULE_PATH_BENEATH = 1;
/** ABI 4. */
export const LANDLOCK_RULE_NET_PORT = 2;

// landlock_restrict_self() flags. The logging ones are ABI 7; TSYNC is ABI 8.
export const LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF = 1 << 0;
export const LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON = 1 << 1;
export const LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF = 1 << 2;
/** Enforce the domain on every thread of the process at once. */
export const LANDLOCK_RESTRICT_SELF_TSYNC = 1 << 3;

// --- struct landlock_ruleset_attr ---

export const LANDLOCK_RULESET_ATTR_SIZE = 24;
export const LANDLOCK_RULESET_ATTR_ALIGN = 8;
export const LANDLOCK_RULESET_ATTR_OFFSETS = Object.freeze({
  handled_access_fs: 0,
  handled_access_net: 8,
  scoped: 16,
} as const);

// The struct grows with the ABI. The kernel copies it with copy_min_struct_from_user()
// (security/landlock/syscalls.c): a caller may pass any size from the first field's end up,
// missing fields read as zero, and bytes past what the kernel knows must be zero (else E2BIG).
// So passing the full 24 bytes with zero in the newer fields works on every Landlock kernel.

/** Size of the struct as ABI 1-3 defined it: handled_access_fs only. */
export const LANDLOCK_RULESET_ATTR_SIZE_V1 = 8;
/** Size of the struct as ABI 4-5 defined it: adds handled_access_net. */
export const LANDLOCK_RULESET_ATTR_SIZE_V4 = 16;

export interface LandlockRulesetAttr {
  handledAccessFs: bigint;
  handledAccessNet: bigint;
  scoped: bigint;
}

export function encodeLandlockRulesetAttrInto(
  buf: Buffer,
  offset: number,
  value: Partial<LandlockRulesetAttr>,
): void {
  zeroStruct(buf, offset, LANDLOCK_RULESET_ATTR_SIZE, 'struct landlock_ruleset_attr');
  const fields = LANDLOCK_RULESET_ATTR_OFFSETS;
  buf.writeBigUInt64LE(value.handledAccessFs ?? 0n, offset + fields.handled_access_fs);
  buf.writeBigUInt64LE(value.handledAccessNet ?? 0n, offset + fields.handled_access_net);
  buf.writeBigUInt64LE(value.scoped ?? 0n, offset + fields.scoped);
}

/** Fields left out are zero, i.e. "not handled". */
export function encodeLandlockRulesetAttr(value: Partial<LandlockRulesetAttr>): Buffer {
  return encodeWith(LANDLOCK_RULESET_ATTR_SIZE, encodeLandlockRulesetAttrInto, value);
}

export function decodeLandlockRulesetAttr(buf: Buffer, offset = 0): LandlockRulesetAttr {
  assertFits(buf, offset, LANDLOCK_RULESET_ATTR_SIZE, 'struct landlock_ruleset_attr');
  const fields = LANDLOCK_RULESET_ATTR_OFFSETS;
  return {
    handledAccessFs: buf.readBigUInt64LE(offset + fields.handled_access_fs),
    handledAccessNet: buf.readBigUInt64LE(offset + fields.handled_access_net),
    scoped: buf.readBigUInt64LE(offset + fields.scoped),
  };
}

// --- struct landlock_path_beneath_attr ---

// Declared __attribute__((packed)) in the UAPI header: 12 bytes with no tail padding, where a
// plain C struct would be 16. landlock_add_rule() takes no size argument and copies exactly
// this many bytes (build_check_abi() in security/landlock/syscalls.c pins the size).
export const LANDLOCK_PATH_BENEATH_ATTR_SIZE = 12;
export const LANDLOCK_PATH_BENEATH_ATTR_ALIGN = 1;
export const LANDLOCK_PATH_BENEATH_ATTR_OFFSETS = Object.freeze({
  allowed_access: 0,
  parent_fd: 8,
} as const);

export interface LandlockPathBeneathAttr {
  allowedAccess: bigint;
  /** Preferably an O_PATH descriptor of the directory (or file) the rule covers. */
  parentFd: number;
}

export function encodeLandlockPathBeneathAttrInto(
  buf: Buffer,
  offset: number,
  value: LandlockPathBeneathAttr,
): void {
  zeroStruct(buf, offset, LANDLOCK_PATH_BENEATH_ATTR_SIZE, 'struct landlock_path_beneath_attr');
  const fields = LANDLOCK_PATH_BENEATH_ATTR_OFFSETS;
  buf.writeBigUInt64LE(value.allowedAccess, offset + fields.allowed_access);
  buf.writeInt32LE(value.parentFd, offset + fields.parent_fd);
}

export function encodeLandlockPathBeneathAttr(value: LandlockPathBeneathAttr): Buffer {
  return encodeWith(LANDLOCK_PATH_BENEATH_ATTR_SIZE, encodeLandlockPathBeneathAttrInto, value);
}

export function decodeLandlockPathBeneathAttr(buf: Buffer, offset = 0): LandlockPathBeneathAttr {
  assertFits(buf, offset, LANDLOCK_PATH_BENEATH_ATTR_SIZE, 'struct landlock_path_beneath_attr');
  const fields = LANDLOCK_PATH_BENEATH_ATTR_OFFSETS;
  return {
    allowedAccess: buf.readBigUInt64LE(offset + fields.allowed_access),
    parentFd: buf.readInt32LE(offset + fields.parent_fd),
  };
}

// --- struct landlock_net_port_attr (ABI 4) ---

export const LANDLOCK_NET_PORT_ATTR_SIZE = 16;
export const LANDLOCK_NET_PORT_ATTR_ALIGN = 8;
export const LANDLOCK_NET_PORT_ATTR_OFFSETS = Object.freeze({
  allowed_access: 0,
  port: 8,
} as const);

export interface LandlockNetPortAttr {
  allowedAccess: bigint;
  /** In host byte order, unlike sockaddr ports; the kernel rejects values above 65535. */
  port: bigint;
}

export function encodeLandlockNetPortAttrInto(
  buf: Buffer,
  offset: number,
  value: LandlockNetPortAttr,
): void {
  zeroStruct(buf, offset, LANDLOCK_NET_PORT_ATTR_SIZE, 'struct landlock_net_port_attr');
  const fields = LANDLOCK_NET_PORT_ATTR_OFFSETS;
  buf.writeBigUInt64LE(value.allowedAccess, offset + fields.allowed_access);
  buf.writeBigUInt64LE(value.port, offset + fields.port);
}

export function encodeLandlockNetPortAttr(value: LandlockNetPortAttr): Buffer {
  return encodeWith(LANDLOCK_NET_PORT_ATTR_SIZE, encodeLandlockNetPortAttrInto, value);
}

export function decodeLandlockNetPortAttr(buf: Buffer, offset = 0): LandlockNetPortAttr {
  assertFits(buf, offset, LANDLOCK_NET_PORT_ATTR_SIZE, 'struct landlock_net_port_attr');
  const fields = LANDLOCK_NET_PORT_ATTR_OFFSETS;
  return {
    allowedAccess: buf.readBigUInt64LE(offset + fields.allowed_access),
    port: buf.readBigUInt64LE(offset + fields.port),
  };
}
