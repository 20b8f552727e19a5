// Layouts and constants of <linux/seccomp.h>. See seccomp(2) and seccomp_unotify(2).

import { assertFits, encodeWith, zeroStruct } from './layout.js';

// --- filter return actions (the high 16 bits; the low 16 bits carry data such as an errno) ---

export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_KILL_THREAD = 0x00000000;
export const SECCOMP_RET_TRAP = 0x00030000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_USER_NOTIF = 0x7fc00000;
export const SECCOMP_RET_TRACE = 0x7ff00000;
export const SECCOMP_RET_LOG = 0x7ffc0000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const SECCOMP_RET_ACTION_FULL = 0xffff0000;
export const SECCOMP_RET_DATA = 0x0000ffff;

// --- seccomp(2) operations and SECCOMP_SET_MODE_FILTER flags ---

export const SECCOMP_SET_MODE_FILTER = 1;

export const SECCOMP_FILTER_FLAG_TSYNC = 1 << 0;
export const SECCOMP_FILTER_FLAG_LOG = 1 << 1;
export const SECCOMP_FILTER_FLAG_SPEC_ALLOW = 1 << 2;
export const SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3;
export const SECCOMP_FILTER_FLAG_TSYNC_ESRCH = 1 << 4;
export const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5;

// --- user notification flags ---

/** seccomp_notif_resp.flags: let the syscall run as if the filter had allowed it. */
export const SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1 << 0;
/** seccomp_notif_addfd.flags: install at `newfd` (like dup2) instead of the lowest free fd. */
export const SECCOMP_ADDFD_FLAG_SETFD = 1 << 0;
/** seccomp_notif_addfd.flags: install the fd and answer the notification with it, atomically. */
export const SECCOMP_ADDFD_FLAG_SEND = 1 << 1;
/** SECCOMP_IOCTL_NOTIF_SET_FLAGS argument (Linux 6.6+): wake the supervisor on the same CPU. */
export const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP = 1 << 0;

// --- listener ioctls: _IOWR('!', 0..1, struct) and _IOW('!', 2..4, ...) from <linux/seccomp.h> ---

export const SECCOMP_IOCTL_NOTIF_RECV = 0xc0502100;
export const SECCOMP_IOCTL_NOTIF_SEND = 0xc0182101;
export const SECCOMP_IOCTL_NOTIF_ID_VALID = 0x40082102;
export const SECCOMP_IOCTL_NOTIF_ADDFD = 0x40182103;
export const SECCOMP_IOCTL_NOTIF_SET_FLAGS = 0x40082104;

// --- struct seccomp_data ---

export const SECCOMP_DATA_SIZE = 64;
export const SECCOMP_DATA_ALIGN = 8;
export const SECCOMP_DATA_OFFSETS = Object.freeze({
  nr: 0,
  arch: 4,
  instruction_pointer: 8,
  args: 16,
} as const);
export const SECCOMP_ARG_COUNT = 6;

export type SeccompArgs = readonly [bigint, bigint, bigint, bigint, bigint, bigint];

export interface SeccompData {
  /** Syscall number; only meaningful together with `arch`. */
  nr: number;
  /** AUDIT_ARCH_* of the calling ABI. */
  arch: number;
  instructionPointer: bigint;
  /** Raw register values; 32-bit arguments may carry garbage in their upper halves. */
  args: SeccompArgs;
}

export function encodeSeccompDataInto(buf: Buffer, offset: number, value: SeccompData): void {
  if (value.args.length !== SECCOMP_ARG_COUNT) {
    throw new RangeError(
      `seccomp_data.args needs ${SECCOMP_ARG_COUNT} values, got ${value.args.length}`,
    );
  }
  zeroStruct(buf, offset, SECCOMP_DATA_SIZE, 'struct seccomp_data');
  buf.writeInt32LE(value.nr, offset + SECCOMP_DATA_OFFSETS.nr);
  buf.writeUInt32LE(value.arch, offset + SECCOMP_DATA_OFFSETS.arch);
  buf.writeBigUInt64LE(value.instructionPointer, offset + SECCOMP_DATA_OFFSETS.instruction_pointer);
  value.args.forEach((arg, index) => {
    buf.writeBigUInt64LE(arg, offset + SECCOMP_DATA_OFFSETS.args + index * 8);
  });
}

export function encodeSeccompData(value: SeccompData): Buffer {
  return encodeWith(SECCOMP_DATA_SIZE, encodeSeccompDataInto, value);
}

export function decodeSeccompData(buf: Buffer, offset = 0): SeccompData {
  assertFits(buf, offset, SECCOMP_DATA_SIZE, 'struct seccomp_data');
  const arg = (index: number) =>
    buf.readBigUInt64LE(offset + SECCOMP_DATA_OFFSETS.args + index * 8);
  return {
    nr: buf.readInt32LE(offset + SECCOMP_DATA_OFFSETS.nr),
    arch: buf.readUInt32LE(offset + SECCOMP_DATA_OFFSETS.arch),
    instructionPointer: buf.readBigUInt64LE(offset + SECCOMP_DATA_OFFSETS.instruction_pointer),
    args: [arg(0), arg(1), arg(2), arg(3), arg(4), arg(5)],
  };
}

// --- struct seccomp_notif (filled by SECCOMP_IOCTL_NOTIF_RECV) ---

export const SECCOMP_NOTIF_SIZE = 80;
export const SECCOMP_NOTIF_ALIGN = 8;
export const SECCOMP_NOTIF_OFFSETS = Object.freeze({
  id: 0,
  pid: 8,
  flags: 12,
  data: 16,
} as const);

export interface SeccompNotif {
  /** Cookie to pass back in the response; ids are only valid while the syscall is pending. */
  id: bigint;
  /** Thread id of the caller as seen from the supervisor's pid namespace; 0 if not visible. */
  pid: number;
  flags: number;
  data: SeccompData;
}

export function encodeSeccompNotifInto(buf: Buffer, offset: number, value: SeccompNotif): void {
  zeroStruct(buf, offset, SECCOMP_NOTIF_SIZE, 'struct seccomp_notif');
  buf.writeBigUInt64LE(value.id, offset + SECCOMP_NOTIF_OFFSETS.id);
  buf.writeUInt32LE(value.pid, offset + SECCOMP_NOTIF_OFFSETS.pid);
  buf.writeUInt32LE(value.flags, offset + SECCOMP_NOTIF_OFFSETS.flags);
  encodeSeccompDataInto(buf, offset + SECCOMP_NOTIF_OFFSETS.data, value.data);
}

export function encodeSeccompNotif(value: SeccompNotif): Buffer {
  return encodeWith(SECCOMP_NOTIF_SIZE, encodeSeccompNotifInto, value);
}

export function decodeSeccompNotif(buf: Buffer, offset = 0): SeccompNotif {
  assertFits(buf, offset, SECCOMP_NOTIF_SIZE, 'struct seccomp_notif');
  return {
    id: buf.readBigUInt64LE(offset + SECCOMP_NOTIF_OFFSETS.id),
    pid: buf.readUInt32LE(offset + SECCOMP_NOTIF_OFFSETS.pid),
    flags: buf.readUInt32LE(offset + SECCOMP_NOTIF_OFFSETS.flags),
    data: decodeSeccompData(buf, offset + SECCOMP_NOTIF_OFFSETS.data),
  };
}

// --- struct seccomp_notif_resp (sent with SECCOMP_IOCTL_NOTIF_SEND) ---

export const SECCOMP_NOTIF_RESP_SIZE = 24;
export const SECCOMP_NOTIF_RESP_ALIGN = 8;
export const SECCOMP_NOTIF_RESP_OFFSETS = Object.freeze({
  id: 0,
  val: 8,
  error: 16,
  flags: 20,
} as const);

export interface SeccompNotifResp {
  id: bigint;
  /** Return value of the syscall when `error` is 0. */
  val: bigint;
  /** Zero, or a negated errno such as -EPERM (seccomp_unotify(2)). */
  error: number;
  flags: number;
}

export function encodeSeccompNotifRespInto(
  buf: Buffer,
  offset: number,
  value: SeccompNotifResp,
): void {
  zeroStruct(buf, offset, SECCOMP_NOTIF_RESP_SIZE, 'struct seccomp_notif_resp');
  buf.writeBigUInt64LE(value.id, offset + SECCOMP_NOTIF_RESP_OFFSETS.id);
  buf.writeBigInt64LE(value.val, offset + SECCOMP_NOTIF_RESP_OFFSETS.val);
  buf.writeInt32LE(value.error, offset + SECCOMP_NOTIF_RESP_OFFSETS.error);
  buf.writeUInt32LE(value.flags, offset + SECCOMP_NOTIF_RESP_OFFSETS.flags);
}

export function encodeSeccompNotifResp(value: SeccompNotifResp): Buffer {
  return encodeWith(SECCOMP_NOTIF_RESP_SIZE, encodeSeccompNotifRespInto, value);
}

export function decodeSeccompNotifResp(buf: Buffer, offset = 0): SeccompNotifResp {
  assertFits(buf, offset, SECCOMP_NOTIF_RESP_SIZE, 'struct seccomp_notif_resp');
  return {
    id: buf.readBigUInt64LE(offset + SECCOMP_NOTIF_RESP_OFFSETS.id),
    val: buf.readBigInt64LE(offset + SECCOMP_NOTIF_RESP_OFFSETS.val),
    error: buf.readInt32LE(offset + SECCOMP_NOTIF_RESP_OFFSETS.error),
    flags: buf.readUInt32LE(offset + SECCOMP_NOTIF_RESP_OFFSETS.flags),
  };
}

// --- struct seccomp_notif_addfd (sent with SECCOMP_IOCTL_NOTIF_ADDFD) ---

export const SECCOMP_NOTIF_ADDFD_SIZE = 24;
export const SECCOMP_NOTIF_ADDFD_ALIGN = 8;
export const SECCOMP_NOTIF_ADDFD_OFFSETS = Object.freeze({
  id: 0,
  flags: 8,
  srcfd: 12,
  newfd: 16,
  newfd_flags: 20,
} as const);

export interface SeccompNotifAddfd {
  id: bigint;
  /** SECCOMP_ADDFD_FLAG_* */
  flags: number;
  /** The supervisor's fd to copy into the target. */
  srcfd: number;
  /** Target fd number; only used with SECCOMP_ADDFD_FLAG_SETFD, otherwise 0. */
  newfd: number;
  /** O_CLOEXEC is the only flag the kernel accepts here. */
  newfdFlags: number;
}

export function encodeSeccompNotifAddfdInto(
  buf: Buffer,
  offset: number,
  value: SeccompNotifAddfd,
): void {
  zeroStruct(buf, offset, SECCOMP_NOTIF_ADDFD_SIZE, 'struct seccomp_notif_addfd');
  buf.writeBigUInt64LE(value.id, offset + SECCOMP_NOTIF_ADDFD_OFFSETS.id);
  buf.writeUInt32LE(value.flags, offset + SECCOMP_NOTIF_ADDFD_OFFSETS.flags);
  buf.writeUInt32LE(value.srcfd, offset + SECCOMP_NOTIF_ADDFD_OFFSETS.srcfd);
  buf.writeUInt32LE(value.newfd, offset + SECCOMP_NOTIF_ADDFD_OFFSETS.newfd);
  buf.writeUInt32LE(value.newfdFlags, offset + SECCOMP_NOTIF_ADDFD_OFFSETS.newfd_flags);
}

export function encodeSeccompNotifAddfd(value: SeccompNotifAddfd): Buffer {
  return encodeWith(SECCOMP_NOTIF_ADDFD_SIZE, encodeSeccompNotifAddfdInto, value);
}

export function decodeSeccompNotifAddfd(buf: Buffer, offset = 0): SeccompNotifAddfd {
  assertFits(buf, offset, SECCOMP_NOTIF_ADDFD_SIZE, 'struct seccomp_notif_addfd');
  return {
    id: buf.readBigUInt64LE(offset + SECCOMP_NOTIF_ADDFD_OFFSETS.id),
    flags: buf.readUInt32LE(offset + SECCOMP_NOTIF_ADDFD_OFFSETS.flags),
    srcfd: buf.readUInt32LE(offset + SECCOMP_NOTIF_ADDFD_OFFSETS.srcfd),
    newfd: buf.readUInt32LE(offset + SECCOMP_NOTIF_ADDFD_OFFSETS.newfd),
    newfdFlags: buf.readUInt32LE(offset + SECCOMP_NOTIF_ADDFD_OFFSETS.newfd_flags),
  };
}
