// Classic BPF programs as seccomp(2) takes them: struct sock_filter and struct sock_fprog from
// <linux/filter.h>.

import { assertFits, decodeArrayWith, encodeArrayWith, encodeWith, zeroStruct } from './layout.js';

/** Longest program the kernel accepts (<linux/bpf_common.h>). */
export const BPF_MAXINSNS = 4096;

// --- struct sock_filter: one instruction ---

export const SOCK_FILTER_SIZE = 8;
export const SOCK_FILTER_ALIGN = 4;
export const SOCK_FILTER_OFFSETS = Object.freeze({ code: 0, jt: 2, jf: 3, k: 4 } as const);

export interface SockFilter {
  code: number;
  /** Instructions to skip when the condition holds. */
  jt: number;
  /** Instructions to skip when it does not. */
  jf: number;
  k: number;
}

export function encodeSockFilterInto(buf: Buffer, offset: number, value: SockFilter): void {
  zeroStruct(buf, offset, SOCK_FILTER_SIZE, 'struct sock_filter');
  buf.writeUInt16LE(value.code, offset + SOCK_FILTER_OFFSETS.code);
  buf.writeUInt8(value.jt, offset + SOCK_FILTER_OFFSETS.jt);
  buf.writeUInt8(value.jf, offset + SOCK_FILTER_OFFSETS.jf);
  buf.writeUInt32LE(value.k, offset + SOCK_FILTER_OFFSETS.k);
}

export function encodeSockFilter(value: SockFilter): Buffer {
  return encodeWith(SOCK_FILTER_SIZE, encodeSockFilterInto, value);
}

export function decodeSockFilter(buf: Buffer, offset = 0): SockFilter {
  assertFits(buf, offset, SOCK_FILTER_SIZE, 'struct sock_filter');
  return {
    code: buf.readUInt16LE(offset + SOCK_FILTER_OFFSETS.code),
    jt: buf.readUInt8(offset + SOCK_FILTER_OFFSETS.jt),
    jf: buf.readUInt8(offset + SOCK_FILTER_OFFSETS.jf),
    k: buf.readUInt32LE(offset + SOCK_FILTER_OFFSETS.k),
  };
}

/** Encodes a whole program, ready to be pointed at by sock_fprog.filter. */
export function encodeSockFilters(program: readonly SockFilter[]): Buffer {
  return encodeArrayWith(SOCK_FILTER_SIZE, encodeSockFilterInto, program);
}

export function decodeSockFilters(buf: Buffer, offset = 0, count?: number): SockFilter[] {
  const length = count ?? Math.floor((buf.length - offset) / SOCK_FILTER_SIZE);
  return decodeArrayWith(SOCK_FILTER_SIZE, decodeSockFilter, buf, offset, length, 'sock_filter');
}

// --- struct sock_fprog: program length and pointer ---

export const SOCK_FPROG_SIZE = 16;
export const SOCK_FPROG_ALIGN = 8;
export const SOCK_FPROG_OFFSETS = Object.freeze({ len: 0, filter: 8 } as const);

export interface SockFprog {
  /** Number of instructions (not bytes). */
  len: number;
  /** Address of the first struct sock_filter. */
  filter: bigint;
}

export function encodeSockFprogInto(buf: Buffer, offset: number, value: SockFprog): void {
  zeroStruct(buf, offset, SOCK_FPROG_SIZE, 'struct sock_fprog');
  buf.writeUInt16LE(value.len, offset + SOCK_FPROG_OFFSETS.len);
  buf.writeBigUInt64LE(value.filter, offset + SOCK_FPROG_OFFSETS.filter);
}

export function encodeSockFprog(value: SockFprog): Buffer {
  return encodeWith(SOCK_FPROG_SIZE, encodeSockFprogInto, value);
}

export function decodeSockFprog(buf: Buffer, offset = 0): SockFprog {
  assertFits(buf, offset, SOCK_FPROG_SIZE, 'struct sock_fprog');
  return {
    len: buf.readUInt16LE(offset + SOCK_FPROG_OFFSETS.len),
    filter: buf.readBigUInt64LE(offset + SOCK_FPROG_OFFSETS.filter),
  };
}
