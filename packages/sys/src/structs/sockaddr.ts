// Socket addresses: sockaddr_in (<netinet/in.h>), sockaddr_in6 and sockaddr_un (<sys/un.h>).
// Ports, addresses and the IPv6 flow info are in network byte order; the family and the IPv6
// scope id are in host order. Callers see ports as numbers and addresses as text.

import { isIPv4, isIPv6 } from 'node:net';
import { assertFits, zeroStruct } from './layout.js';

/** No family: connect(2) with it dissolves a datagram socket's association. */
export const AF_UNSPEC = 0;
export const AF_UNIX = 1;
/** sizeof(struct sockaddr_storage): the longest address a socket call takes (move_addr_to_kernel()). */
export const SOCKADDR_STORAGE_SIZE = 128;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_PACKET = 17;

/** Every sockaddr starts with a host-order u16 family. */
export function decodeSockaddrFamily(buf: Buffer, offset = 0): number {
  assertFits(buf, offset, 2, 'sa_family_t');
  return buf.readUInt16LE(offset);
}

function assertFamily(buf: Buffer, offset: number, expected: number, what: string): void {
  const family = decodeSockaddrFamily(buf, offset);
  if (family !== expected) {
    throw new RangeError(`${what} must have family ${expected}, got ${family}`);
  }
}

// --- struct sockaddr_in ---

export const SOCKADDR_IN_SIZE = 16;
export const SOCKADDR_IN_ALIGN = 4;
export const SOCKADDR_IN_OFFSETS = Object.freeze({
  sin_family: 0,
  sin_port: 2,
  sin_addr: 4,
  sin_zero: 8,
} as const);

export interface SockaddrIn {
  port: number;
  /** Dotted quad, e.g. '127.0.0.1'. */
  address: string;
}

export function encodeSockaddrInInto(buf: Buffer, offset: number, value: SockaddrIn): void {
  const address = parseIPv4(value.address);
  zeroStruct(buf, offset, SOCKADDR_IN_SIZE, 'struct sockaddr_in');
  buf.writeUInt16LE(AF_INET, offset + SOCKADDR_IN_OFFSETS.sin_family);
  buf.writeUInt16BE(value.port, offset + SOCKADDR_IN_OFFSETS.sin_port);
  address.copy(buf, offset + SOCKADDR_IN_OFFSETS.sin_addr);
}

export function encodeSockaddrIn(value: SockaddrIn): Buffer {
  const buf = Buffer.alloc(SOCKADDR_IN_SIZE);
  encodeSockaddrInInto(buf, 0, value);
  return buf;
}

export function decodeSockaddrIn(buf: Buffer, offset = 0): SockaddrIn {
  assertFits(buf, offset, SOCKADDR_IN_SIZE, 'struct sockaddr_in');
  assertFamily(buf, offset, AF_INET, 'struct sockaddr_in');
  const start = offset + SOCKADDR_IN_OFFSETS.sin_addr;
  return {
    port: buf.readUInt16BE(offset + SOCKADDR_IN_OFFSETS.sin_port),
    address: formatIPv4(buf.subarray(start, start + 4)),
  };
}

// --- struct sockaddr_in6 ---

export const SOCKADDR_IN6_SIZE = 28;
/** The shortest sockaddr_in6 the kernel takes (RFC 2133's, without sin6_scope_id): SIN6_LEN_RFC2133. */
export const SIN6_LEN_RFC2133 = 24;
export const SOCKADDR_IN6_ALIGN = 4;
export const SOCKADDR_IN6_OFFSETS = Object.freeze({
  sin6_family: 0,
  sin6_port: 2,
  sin6_flowinfo: 4,
  sin6_addr: 8,
  sin6_scope_id: 24,
} as const);

export interface SockaddrIn6 {
  port: number;
  /** Textual IPv6 address, e.g. '::1'; decoded addresses use the RFC 5952 form. */
  address: string;
  /** sin6_flowinfo (traffic class and flow label); 0 when omitted. */
  flowInfo?: number;
  /** Interface index for link-local addresses; 0 when omitted. */
  scopeId?: number;
}

export function encodeSockaddrIn6Into(buf: Buffer, offset: number, value: SockaddrIn6): void {
  const address = parseIPv6(value.address);
  zeroStruct(buf, offset, SOCKADDR_IN6_SIZE, 'struct sockaddr_in6');
  buf.writeUInt16LE(AF_INET6, offset + SOCKADDR_IN6_OFFSETS.sin6_family);
  buf.writeUInt16BE(value.port, offset + SOCKADDR_IN6_OFFSETS.sin6_port);
  buf.writeUInt32BE(value.flowInfo ?? 0, offset + SOCKADDR_IN6_OFFSETS.sin6_flowinfo);
  address.copy(buf, offset + SOCKADDR_IN6_OFFSETS.sin6_addr);
  buf.writeUInt32LE(value.scopeId ?? 0, offset + SOCKADDR_IN6_OFFSETS.sin6_scope_id);
}

export function encodeSockaddrIn6(value: SockaddrIn6): Buffer {
  const buf = Buffer.alloc(SOCKADDR_IN6_SIZE);
  encodeSockaddrIn6Into(buf, 0, value);
  return buf;
}

export function decodeSockaddrIn6(buf: Buffer, offset = 0): Required<SockaddrIn6> {
  assertFits(buf, offset, SOCKADDR_IN6_SIZE, 'struct sockaddr_in6');
  assertFamily(buf, offset, AF_INET6, 'struct sockaddr_in6');
  const start = offset + SOCKADDR_IN6_OFFSETS.sin6_addr;
  return {
    port: buf.readUInt16BE(offset + SOCKADDR_IN6_OFFSETS.sin6_port),
    address: formatIPv6(buf.subarray(start, start + 16)),
    flowInfo: buf.readUInt32BE(offset + SOCKADDR_IN6_OFFSETS.sin6_flowinfo),
    scopeId: buf.readUInt32LE(offset + SOCKADDR_IN6_OFFSETS.sin6_scope_id),
  };
}

// --- struct sockaddr_un ---

export const SOCKADDR_UN_SIZE = 110;
export const SOCKADDR_UN_ALIGN = 2;
export const SOCKADDR_UN_OFFSETS = Object.freeze({ sun_family: 0, sun_path: 2 } as const);
export const SUN_PATH_SIZE = 108;

export type SockaddrUnKind = 'pathname' | 'abstract' | 'unnamed';

export interface SockaddrUn {
  kind: SockaddrUnKind;
  /**
   * Raw name bytes: the filesystem path without its NUL terminator, or for an abstract socket
   * the leading NUL byte followed by the name, or empty for an unnamed socket.
   */
  path: Buffer;
}

export interface EncodedSockaddr {
  /** The whole struct, zero-filled past the name. */
  buffer: Buffer;
  /** The addrlen to pass to bind(2)/connect(2) along with `buffer`. */
  length: number;
}

/**
 * Encodes a Unix socket address and returns the address length that goes with it; see unix(7).
 *
 * Abstract names (first byte NUL) are not NUL-terminated: the kernel takes exactly `length - 2`
 * bytes as the name, so trailing zero bytes in the struct would become part of it. Pathnames are
 * terminated, and limited to 107 bytes so the terminator fits.
 */
export function encodeSockaddrUnInto(
  buf: Buffer,
  offset: number,
  path: string | Uint8Array,
): number {
  const bytes = typeof path === 'string' ? Buffer.from(path, 'utf8') : Buffer.from(path);
  const abstract = bytes.length > 0 && bytes[0] === 0;
  const limit = abstract ? SUN_PATH_SIZE : SUN_PATH_SIZE - 1;
  if (bytes.length > limit) {
    throw new RangeError(`sockaddr_un path is ${bytes.length} bytes; the limit is ${limit}`);
  }
  if (!abstract && bytes.includes(0)) {
    throw new TypeError('sockaddr_un pathname contains a NUL byte');
  }
  zeroStruct(buf, offset, SOCKADDR_UN_SIZE, 'struct sockaddr_un');
  buf.writeUInt16LE(AF_UNIX, offset + SOCKADDR_UN_OFFSETS.sun_family);
  bytes.copy(buf, offset + SOCKADDR_UN_OFFSETS.sun_path);
  if (bytes.length === 0 || abstract) {
    return SOCKADDR_UN_OFFSETS.sun_path + bytes.length;
  }
  return SOCKADDR_UN_OFFSETS.sun_path + bytes.length + 1;
}

export function encodeSockaddrUn(path: string | Uint8Array): EncodedSockaddr {
  const buffer = Buffer.alloc(SOCKADDR_UN_SIZE);
  const length = encodeSockaddrUnInto(buffer, 0, path);
  return { buffer, length };
}

/**
 * Decodes a Unix socket address of `length` bytes (the addrlen the kernel or the caller gave).
 * For abstract sockets every byte up to `length` is part of the name.
 */
export function decodeSockaddrUn(
  buf: Buffer,
  offset = 0,
  length: number = SOCKADDR_UN_SIZE,
): SockaddrUn {
  if (!Number.isInteger(length) || length < 2 || length > SOCKADDR_UN_SIZE) {
    throw new RangeError(`sockaddr_un length must be 2..${SOCKADDR_UN_SIZE}, got ${length}`);
  }
  assertFits(buf, offset, length, 'struct sockaddr_un');
  assertFamily(buf, offset, AF_UNIX, 'struct sockaddr_un');
  const name = Buffer.from(buf.subarray(offset + SOCKADDR_UN_OFFSETS.sun_path, offset + length));
  if (name.length === 0) {
    return { kind: 'unnamed', path: name };
  }
  if (name[0] === 0) {
    return { kind: 'abstract', path: name };
  }
  const end = name.indexOf(0);
  return { kind: 'pathname', path: end === -1 ? name : name.subarray(0, end) };
}

// --- address text <-> bytes ---

function parseIPv4(address: string): Buffer {
  if (!isIPv4(address)) {
    throw new TypeError(`not an IPv4 address: '${address}'`);
  }
  return Buffer.from(address.split('.').map(Number));
}

function formatIPv4(bytes: Uint8Array): string {
  return Array.from(bytes).join('.');
}

function parseIPv6(address: string): Buffer {
  // node:net accepts a '%zone' suffix; sockaddr_in6 carries the zone as scopeId instead.
  if (!isIPv6(address) || address.includes('%')) {
    throw new TypeError(`not an IPv6 address: '${address}'`);
  }
  const text = address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    [(Number(a) << 8) | Number(b), (Number(c) << 8) | Number(d)]
      .map((group) => group.toString(16))
      .join(':'),
  );
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros: string[] = Array(8 - headGroups.length - tailGroups.length).fill('0');
  const groups = [...headGroups, ...(tail === undefined ? [] : zeros), ...tailGroups];
  const bytes = Buffer.alloc(16);
  groups.forEach((group, index) => {
    bytes.writeUInt16BE(Number.parseInt(group, 16), index * 2);
  });
  return bytes;
}

function formatIPv6(bytes: Buffer): string {
  const groups = Array.from({ length: 8 }, (_, index) => bytes.readUInt16BE(index * 2));
  const isMappedIPv4 = groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
  if (isMappedIPv4) {
    return `::ffff:${formatIPv4(bytes.subarray(12, 16))}`;
  }
  // RFC 5952 section 4.2: compress the longest run (the first, on a tie) of two or more zero
  // groups into '::'.
  let bestStart = -1;
  let bestLength = 1;
  let runStart = -1;
  for (let index = 0; index <= 8; index++) {
    if (index < 8 && groups[index] === 0) {
      if (runStart === -1) runStart = index;
      continue;
    }
    if (runStart !== -1 && index - runStart > bestLength) {
      bestStart = runStart;
      bestLength = index - runStart;
    }
    runStart = -1;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart === -1) {
    return hex.join(':');
  }
  const before = hex.slice(0, bestStart).join(':');
  const after = hex.slice(bestStart + bestLength).join(':');
  return `${before}::${after}`;
}
