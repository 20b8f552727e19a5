// struct iovec of <sys/uio.h>, as readv(2), process_vm_readv(2) and msghdr use it.

import { assertFits, decodeArrayWith, encodeArrayWith, encodeWith, zeroStruct } from './layout.js';

export const IOVEC_SIZE = 16;
export const IOVEC_ALIGN = 8;
export const IOVEC_OFFSETS = Object.freeze({ iov_base: 0, iov_len: 8 } as const);

export interface Iovec {
  base: bigint;
  len: bigint;
}

export function encodeIovecInto(buf: Buffer, offset: number, value: Iovec): void {
  zeroStruct(buf, offset, IOVEC_SIZE, 'struct iovec');
  buf.writeBigUInt64LE(value.base, offset + IOVEC_OFFSETS.iov_base);
  buf.writeBigUInt64LE(value.len, offset + IOVEC_OFFSETS.iov_len);
}

export function encodeIovec(value: Iovec): Buffer {
  return encodeWith(IOVEC_SIZE, encodeIovecInto, value);
}

export function decodeIovec(buf: Buffer, offset = 0): Iovec {
  assertFits(buf, offset, IOVEC_SIZE, 'struct iovec');
  return {
    base: buf.readBigUInt64LE(offset + IOVEC_OFFSETS.iov_base),
    len: buf.readBigUInt64LE(offset + IOVEC_OFFSETS.iov_len),
  };
}

export function encodeIovecs(values: readonly Iovec[]): Buffer {
  return encodeArrayWith(IOVEC_SIZE, encodeIovecInto, values);
}

export function decodeIovecs(buf: Buffer, offset: number, count: number): Iovec[] {
  return decodeArrayWith(IOVEC_SIZE, decodeIovec, buf, offset, count, 'iovec');
}
