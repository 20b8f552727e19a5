// struct msghdr of <sys/socket.h>, as sendmsg(2) and recvmsg(2) use it on 64-bit Linux.

import { assertFits, encodeWith, zeroStruct } from './layout.js';

// MSG_* flags of <linux/socket.h>: the `flags` argument of sendmsg/recvmsg, and msg_flags.
/** recvmsg(2) reports: control data was discarded for lack of room in the control buffer. */
export const MSG_CTRUNC = 0x8;
/** recvmsg(2) reports: the datagram was longer than the buffers and was cut. */
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
/** sendmsg(2) on TCP: connect to msg_name and send in the SYN (TCP Fast Open, tcp(7)). */
export const MSG_FASTOPEN = 0x20000000;
/** sendmsg(2): no SIGPIPE when the peer is gone, only EPIPE. */
export const MSG_NOSIGNAL = 0x4000;
/** recvmsg(2): descriptors received with SCM_RIGHTS are close-on-exec. */
export const MSG_CMSG_CLOEXEC = 0x40000000;

export const MSGHDR_SIZE = 56;
export const MSGHDR_ALIGN = 8;
export const MSGHDR_OFFSETS = Object.freeze({
  msg_name: 0,
  msg_namelen: 8,
  msg_iov: 16,
  msg_iovlen: 24,
  msg_control: 32,
  msg_controllen: 40,
  msg_flags: 48,
} as const);

export interface Msghdr {
  /** Address of a sockaddr, or 0. */
  name: bigint;
  nameLen: number;
  /** Address of an iovec array. */
  iov: bigint;
  iovLen: bigint;
  /** Address of the ancillary data buffer (cmsghdr records), or 0. */
  control: bigint;
  controlLen: bigint;
  /** MSG_* flags the kernel reports back from recvmsg(2). */
  flags: number;
}

/** struct mmsghdr of sendmmsg(2): a msghdr, then the u32 msg_len the kernel fills, padded. */
export const MMSGHDR_SIZE = 64;
export const MMSGHDR_LEN_OFFSET = 56;
/** The most iovecs (UIO_MAXIOV) and the most messages of one sendmmsg (UIO_MAXIOV too). */
export const UIO_MAXIOV = 1024;

export function encodeMsghdrInto(buf: Buffer, offset: number, value: Partial<Msghdr>): void {
  zeroStruct(buf, offset, MSGHDR_SIZE, 'struct msghdr');
  buf.writeBigUInt64LE(value.name ?? 0n, offset + MSGHDR_OFFSETS.msg_name);
  buf.writeUInt32LE(value.nameLen ?? 0, offset + MSGHDR_OFFSETS.msg_namelen);
  buf.writeBigUInt64LE(value.iov ?? 0n, offset + MSGHDR_OFFSETS.msg_iov);
  buf.writeBigUInt64LE(value.iovLen ?? 0n, offset + MSGHDR_OFFSETS.msg_iovlen);
  buf.writeBigUInt64LE(value.control ?? 0n, offset + MSGHDR_OFFSETS.msg_control);
  buf.writeBigUInt64LE(value.controlLen ?? 0n, offset + MSGHDR_OFFSETS.msg_controllen);
  buf.writeInt32LE(value.flags ?? 0, offset + MSGHDR_OFFSETS.msg_flags);
}

/** Fields left out are zero. */
export function encodeMsghdr(value: Partial<Msghdr>): Buffer {
  return encodeWith(MSGHDR_SIZE, encodeMsghdrInto, value);
}

export function decodeMsghdr(buf: Buffer, offset = 0): Msghdr {
  assertFits(buf, offset, MSGHDR_SIZE, 'struct msghdr');
  return {
    name: buf.readBigUInt64LE(offset + MSGHDR_OFFSETS.msg_name),
    nameLen: buf.readUInt32LE(offset + MSGHDR_OFFSETS.msg_namelen),
    iov: buf.readBigUInt64LE(offset + MSGHDR_OFFSETS.msg_iov),
    iovLen: buf.readBigUInt64LE(offset + MSGHDR_OFFSETS.msg_iovlen),
    control: buf.readBigUInt64LE(offset + MSGHDR_OFFSETS.msg_control),
    controlLen: buf.readBigUInt64LE(offset + MSGHDR_OFFSETS.msg_controllen),
    flags: buf.readInt32LE(offset + MSGHDR_OFFSETS.msg_flags),
  };
}
