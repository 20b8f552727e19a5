// struct cmsghdr of <sys/socket.h> (ancillary data of sendmsg(2) and recvmsg(2),
// see cmsg(3)) on 64-bit Linux, and the SCM_RIGHTS record that carries descriptors.

import { assertFits, encodeWith, zeroStruct } from './layout.js';

export const SOL_SOCKET = 1;
/** cmsg_type of a record whose data is an array of int file descriptors (unix(7)). */
export const SCM_RIGHTS = 1;
/** The most descriptors one message may carry, all its SCM_RIGHTS records together (SCM_MAX_FD of include/net/scm.h; scm_fp_copy() answers EINVAL past it). */
export const FDS_PER_MESSAGE_MAX = 253;
/** cmsg_type of a record whose data is a struct ucred { pid, uid, gid } (unix(7)). */
export const SCM_CREDENTIALS = 2;

export const CMSGHDR_SIZE = 16;
export const CMSGHDR_ALIGN = 8;
export const CMSGHDR_OFFSETS = Object.freeze({
  cmsg_len: 0,
  cmsg_level: 8,
  cmsg_type: 12,
} as const);

export interface Cmsghdr {
  /** Header plus data, without the padding after the data (CMSG_LEN). */
  len: bigint;
  level: number;
  type: number;
}

/** CMSG_LEN(dataSize): the cmsg_len of a record with `dataSize` bytes of data. */
export function cmsgLen(dataSize: number): number {
  return CMSGHDR_SIZE + dataSize;
}

/** CMSG_SPACE(dataSize): the bytes a record takes in a control buffer, padding included. */
export function cmsgSpace(dataSize: number): number {
  return CMSGHDR_SIZE + Math.ceil(dataSize / CMSGHDR_ALIGN) * CMSGHDR_ALIGN;
}

export function encodeCmsghdrInto(buf: Buffer, offset: number, value: Cmsghdr): void {
  zeroStruct(buf, offset, CMSGHDR_SIZE, 'struct cmsghdr');
  buf.writeBigUInt64LE(value.len, offset + CMSGHDR_OFFSETS.cmsg_len);
  buf.writeInt32LE(value.level, offset + CMSGHDR_OFFSETS.cmsg_level);
  buf.writeInt32LE(value.type, offset + CMSGHDR_OFFSETS.cmsg_type);
}

export function encodeCmsghdr(value: Cmsghdr): Buffer {
  return encodeWith(CMSGHDR_SIZE, encodeCmsghdrInto, value);
}

export function decodeCmsghdr(buf: Buffer, offset = 0): Cmsghdr {
  assertFits(buf, offset, CMSGHDR_SIZE, 'struct cmsghdr');
  return {
    len: buf.readBigUInt64LE(offset + CMSGHDR_OFFSETS.cmsg_len),
    level: buf.readInt32LE(offset + CMSGHDR_OFFSETS.cmsg_level),
    type: buf.readInt32LE(offset + CMSGHDR_OFFSETS.cmsg_type),
  };
}

/** A control buffer holding one SCM_RIGHTS record with `fds` (CMSG_SPACE bytes). */
export function encodeScmRights(fds: readonly number[]): Buffer {
  const buf = Buffer.alloc(cmsgSpace(fds.length * 4));
  encodeCmsghdrInto(buf, 0, {
    len: BigInt(cmsgLen(fds.length * 4)),
    level: SOL_SOCKET,
    type: SCM_RIGHTS,
  });
  fds.forEach((fd, index) => {
    buf.writeInt32LE(fd, CMSGHDR_SIZE + index * 4);
  });
  return buf;
}

/**
 * The descriptors of every SCM_RIGHTS record in the first `controlLen` bytes
 * of a control buffer recvmsg(2) filled (the msg_controllen it reported).
 * Records of other types are skipped; a record that does not fit is an error.
 */
export function decodeScmRights(control: Buffer, controlLen: number): number[] {
  const fds: number[] = [];
  let offset = 0;
  while (offset + CMSGHDR_SIZE <= controlLen) {
    const header = decodeCmsghdr(control, offset);
    const len = Number(header.len);
    if (len < CMSGHDR_SIZE || offset + len > controlLen) {
      throw new RangeError(`a control message of ${len} bytes at ${offset} overruns the buffer`);
    }
    if (header.level === SOL_SOCKET && header.type === SCM_RIGHTS) {
      for (let at = offset + CMSGHDR_SIZE; at + 4 <= offset + len; at += 4) {
        fds.push(control.readInt32LE(at));
      }
    }
    offset += cmsgSpace(len - CMSGHDR_SIZE);
  }
  return fds;
}
