// struct open_how and the RESOLVE_* flags of <linux/openat2.h>. See openat2(2).

import { assertFits, encodeWith, zeroStruct } from './layout.js';

export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;
export const RESOLVE_CACHED = 0x20;

export const OPEN_HOW_SIZE = 24;
export const OPEN_HOW_ALIGN = 8;
export const OPEN_HOW_OFFSETS = Object.freeze({ flags: 0, mode: 8, resolve: 16 } as const);

export interface OpenHow {
  /** O_* flags. Unlike open(2), unknown bits are rejected with EINVAL. */
  flags: bigint;
  /** Must be 0 unless flags contain O_CREAT or O_TMPFILE. */
  mode: bigint;
  /** RESOLVE_* flags. */
  resolve: bigint;
}

export function encodeOpenHowInto(buf: Buffer, offset: number, value: Partial<OpenHow>): void {
  zeroStruct(buf, offset, OPEN_HOW_SIZE, 'struct open_how');
  buf.writeBigUInt64LE(value.flags ?? 0n, offset + OPEN_HOW_OFFSETS.flags);
  buf.writeBigUInt64LE(value.mode ?? 0n, offset + OPEN_HOW_OFFSETS.mode);
  buf.writeBigUInt64LE(value.resolve ?? 0n, offset + OPEN_HOW_OFFSETS.resolve);
}

/** Fields left out are zero. */
export function encodeOpenHow(value: Partial<OpenHow>): Buffer {
  return encodeWith(OPEN_HOW_SIZE, encodeOpenHowInto, value);
}

export function decodeOpenHow(buf: Buffer, offset = 0): OpenHow {
  assertFits(buf, offset, OPEN_HOW_SIZE, 'struct open_how');
  return {
    flags: buf.readBigUInt64LE(offset + OPEN_HOW_OFFSETS.flags),
    mode: buf.readBigUInt64LE(offset + OPEN_HOW_OFFSETS.mode),
    resolve: buf.readBigUInt64LE(offset + OPEN_HOW_OFFSETS.resolve),
  };
}
