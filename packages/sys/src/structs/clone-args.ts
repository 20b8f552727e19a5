// struct clone_args of <linux/sched.h>, the argument of clone3(2).

import { assertFits, encodeWith, zeroStruct } from './layout.js';

// clone3() takes the struct size as its second argument; these are the published sizes.
/** Linux 5.3: flags .. tls. */
export const CLONE_ARGS_SIZE_VER0 = 64;
/** Linux 5.5: adds set_tid and set_tid_size. */
export const CLONE_ARGS_SIZE_VER1 = 80;
/** Linux 5.7: adds cgroup. */
export const CLONE_ARGS_SIZE_VER2 = 88;

export const CLONE_ARGS_SIZE = CLONE_ARGS_SIZE_VER2;
export const CLONE_ARGS_ALIGN = 8;
export const CLONE_ARGS_OFFSETS = Object.freeze({
  flags: 0,
  pidfd: 8,
  child_tid: 16,
  parent_tid: 24,
  exit_signal: 32,
  stack: 40,
  stack_size: 48,
  tls: 56,
  set_tid: 64,
  set_tid_size: 72,
  cgroup: 80,
} as const);

export interface CloneArgs {
  /** CLONE_* flags; CSIGNAL bits are not allowed here, use exitSignal. */
  flags: bigint;
  /** Address of an int that receives the pidfd (with CLONE_PIDFD). */
  pidfd: bigint;
  childTid: bigint;
  parentTid: bigint;
  exitSignal: bigint;
  /** Lowest address of the stack area (clone(2) takes the top instead). */
  stack: bigint;
  stackSize: bigint;
  tls: bigint;
  /** Address of a pid_t array, one per pid namespace level. */
  setTid: bigint;
  setTidSize: bigint;
  /** Cgroup directory fd (with CLONE_INTO_CGROUP). */
  cgroup: bigint;
}

const FIELDS: ReadonlyArray<readonly [keyof CloneArgs, number]> = [
  ['flags', CLONE_ARGS_OFFSETS.flags],
  ['pidfd', CLONE_ARGS_OFFSETS.pidfd],
  ['childTid', CLONE_ARGS_OFFSETS.child_tid],
  ['parentTid', CLONE_ARGS_OFFSETS.parent_tid],
  ['exitSignal', CLONE_ARGS_OFFSETS.exit_signal],
  ['stack', CLONE_ARGS_OFFSETS.stack],
  ['stackSize', CLONE_ARGS_OFFSETS.stack_size],
  ['tls', CLONE_ARGS_OFFSETS.tls],
  ['setTid', CLONE_ARGS_OFFSETS.set_tid],
  ['setTidSize', CLONE_ARGS_OFFSETS.set_tid_size],
  ['cgroup', CLONE_ARGS_OFFSETS.cgroup],
];

export function encodeCloneArgsInto(buf: Buffer, offset: number, value: Partial<CloneArgs>): void {
  zeroStruct(buf, offset, CLONE_ARGS_SIZE, 'struct clone_args');
  for (const [field, fieldOffset] of FIELDS) {
    buf.writeBigUInt64LE(value[field] ?? 0n, offset + fieldOffset);
  }
}

/** Fields left out are zero. */
export function encodeCloneArgs(value: Partial<CloneArgs>): Buffer {
  return encodeWith(CLONE_ARGS_SIZE, encodeCloneArgsInto, value);
}

export function decodeCloneArgs(buf: Buffer, offset = 0): CloneArgs {
  assertFits(buf, offset, CLONE_ARGS_SIZE, 'struct clone_args');
  const read = (field: keyof typeof CLONE_ARGS_OFFSETS) =>
    buf.readBigUInt64LE(offset + CLONE_ARGS_OFFSETS[field]);
  return {
    flags: read('flags'),
    pidfd: read('pidfd'),
    childTid: read('child_tid'),
    parentTid: read('parent_tid'),
    exitSignal: read('exit_signal'),
    stack: read('stack'),
    stackSize: read('stack_size'),
    tls: read('tls'),
    setTid: read('set_tid'),
    setTidSize: read('set_tid_size'),
    cgroup: read('cgroup'),
  };
}
