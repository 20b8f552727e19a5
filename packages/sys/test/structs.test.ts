import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as structs from '../src/structs/index.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  CLONE_ARGS_SIZE,
  CMSGHDR_SIZE,
  cmsgLen,
  cmsgSpace,
  decodeCloneArgs,
  decodeCmsghdr,
  decodeIovec,
  decodeIovecs,
  decodeLandlockNetPortAttr,
  decodeLandlockPathBeneathAttr,
  decodeLandlockRulesetAttr,
  decodeMsghdr,
  decodeOpenHow,
  decodeScmRights,
  decodeSeccompData,
  decodeSeccompNotif,
  decodeSeccompNotifAddfd,
  decodeSeccompNotifResp,
  decodeSockaddrFamily,
  decodeSockaddrIn,
  decodeSockaddrIn6,
  decodeSockaddrUn,
  decodeSockFilter,
  decodeSockFilters,
  decodeSockFprog,
  encodeCloneArgs,
  encodeCloneArgsInto,
  encodeCmsghdr,
  encodeCmsghdrInto,
  encodeIovec,
  encodeIovecInto,
  encodeIovecs,
  encodeLandlockNetPortAttr,
  encodeLandlockNetPortAttrInto,
  encodeLandlockPathBeneathAttr,
  encodeLandlockPathBeneathAttrInto,
  encodeLandlockRulesetAttr,
  encodeLandlockRulesetAttrInto,
  encodeMsghdr,
  encodeMsghdrInto,
  encodeOpenHow,
  encodeOpenHowInto,
  encodeScmRights,
  encodeSeccompData,
  encodeSeccompDataInto,
  encodeSeccompNotif,
  encodeSeccompNotifAddfd,
  encodeSeccompNotifAddfdInto,
  encodeSeccompNotifInto,
  encodeSeccompNotifResp,
  encodeSeccompNotifRespInto,
  encodeSockaddrIn,
  encodeSockaddrIn6,
  encodeSockaddrIn6Into,
  encodeSockaddrInInto,
  encodeSockaddrUn,
  encodeSockFilter,
  encodeSockFilterInto,
  encodeSockFilters,
  encodeSockFprog,
  encodeSockFprogInto,
  IOVEC_SIZE,
  LANDLOCK_ACCESS_FS,
  LANDLOCK_ACCESS_FS_IOCTL_DEV,
  LANDLOCK_ACCESS_NET,
  LANDLOCK_NET_PORT_ATTR_SIZE,
  LANDLOCK_PATH_BENEATH_ATTR_SIZE,
  LANDLOCK_RULESET_ATTR_SIZE,
  LANDLOCK_SCOPE,
  MSGHDR_SIZE,
  OPEN_HOW_SIZE,
  SCM_RIGHTS,
  SECCOMP_DATA_SIZE,
  SECCOMP_IOCTL_NOTIF_ADDFD,
  SECCOMP_IOCTL_NOTIF_ID_VALID,
  SECCOMP_IOCTL_NOTIF_RECV,
  SECCOMP_IOCTL_NOTIF_SEND,
  SECCOMP_IOCTL_NOTIF_SET_FLAGS,
  SECCOMP_NOTIF_ADDFD_SIZE,
  SECCOMP_NOTIF_RESP_SIZE,
  SECCOMP_NOTIF_SIZE,
  SOCK_FILTER_SIZE,
  SOCK_FPROG_SIZE,
  SOCKADDR_IN_SIZE,
  SOCKADDR_IN6_OFFSETS,
  SOCKADDR_IN6_SIZE,
  SOCKADDR_UN_SIZE,
  SOL_SOCKET,
  SUN_PATH_SIZE,
} from '../src/structs/index.js';
import { AUDIT_ARCH } from '../src/syscalls/index.js';

// --- value generators ---

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const i32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const i64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });

const seccompData = fc.record({
  nr: i32,
  arch: u32,
  instructionPointer: u64,
  args: fc.tuple(u64, u64, u64, u64, u64, u64),
});

// --- round trips ---

interface Codec<T> {
  size: number;
  arbitrary: fc.Arbitrary<T>;
  encode: (value: T) => Buffer;
  encodeInto: (buf: Buffer, offset: number, value: T) => void;
  decode: (buf: Buffer, offset?: number) => T;
}

/** Lets codecs of different value types share one table; each is still checked where built. */
function codec<T>(typed: Codec<T>): Codec<unknown> {
  return typed as Codec<unknown>;
}

const CODECS: Record<string, Codec<unknown>> = {
  seccomp_data: codec({
    size: SECCOMP_DATA_SIZE,
    arbitrary: seccompData,
    encode: encodeSeccompData,
    encodeInto: encodeSeccompDataInto,
    decode: decodeSeccompData,
  }),
  seccomp_notif: codec({
    size: SECCOMP_NOTIF_SIZE,
    arbitrary: fc.record({ id: u64, pid: u32, flags: u32, data: seccompData }),
    encode: encodeSeccompNotif,
    encodeInto: encodeSeccompNotifInto,
    decode: decodeSeccompNotif,
  }),
  seccomp_notif_resp: codec({
    size: SECCOMP_NOTIF_RESP_SIZE,
    arbitrary: fc.record({ id: u64, val: i64, error: i32, flags: u32 }),
    encode: encodeSeccompNotifResp,
    encodeInto: encodeSeccompNotifRespInto,
    decode: decodeSeccompNotifResp,
  }),
  seccomp_notif_addfd: codec({
    size: SECCOMP_NOTIF_ADDFD_SIZE,
    arbitrary: fc.record({ id: u64, flags: u32, srcfd: u32, newfd: u32, newfdFlags: u32 }),
    encode: encodeSeccompNotifAddfd,
    encodeInto: encodeSeccompNotifAddfdInto,
    decode: decodeSeccompNotifAddfd,
  }),
  sock_filter: codec({
    size: SOCK_FILTER_SIZE,
    arbitrary: fc.record({ code: u16, jt: u8, jf: u8, k: u32 }),
    encode: encodeSockFilter,
    encodeInto: encodeSockFilterInto,
    decode: decodeSockFilter,
  }),
  sock_fprog: codec({
    size: SOCK_FPROG_SIZE,
    arbitrary: fc.record({ len: u16, filter: u64 }),
    encode: encodeSockFprog,
    encodeInto: encodeSockFprogInto,
    decode: decodeSockFprog,
  }),
  landlock_ruleset_attr: codec({
    size: LANDLOCK_RULESET_ATTR_SIZE,
    arbitrary: fc.record({ handledAccessFs: u64, handledAccessNet: u64, scoped: u64 }),
    encode: encodeLandlockRulesetAttr,
    encodeInto: encodeLandlockRulesetAttrInto,
    decode: decodeLandlockRulesetAttr,
  }),
  landlock_path_beneath_attr: codec({
    size: LANDLOCK_PATH_BENEATH_ATTR_SIZE,
    arbitrary: fc.record({ allowedAccess: u64, parentFd: i32 }),
    encode: encodeLandlockPathBeneathAttr,
    encodeInto: encodeLandlockPathBeneathAttrInto,
    decode: decodeLandlockPathBeneathAttr,
  }),
  landlock_net_port_attr: codec({
    size: LANDLOCK_NET_PORT_ATTR_SIZE,
    arbitrary: fc.record({ allowedAccess: u64, port: u64 }),
    encode: encodeLandlockNetPortAttr,
    encodeInto: encodeLandlockNetPortAttrInto,
    decode: decodeLandlockNetPortAttr,
  }),
  open_how: codec({
    size: OPEN_HOW_SIZE,
    arbitrary: fc.record({ flags: u64, mode: u64, resolve: u64 }),
    encode: encodeOpenHow,
    encodeInto: encodeOpenHowInto,
    decode: decodeOpenHow,
  }),
  clone_args: codec({
    size: CLONE_ARGS_SIZE,
    arbitrary: fc.record({
      flags: u64,
      pidfd: u64,
      childTid: u64,
      parentTid: u64,
      exitSignal: u64,
      stack: u64,
      stackSize: u64,
      tls: u64,
      setTid: u64,
      setTidSize: u64,
      cgroup: u64,
    }),
    encode: encodeCloneArgs,
    encodeInto: encodeCloneArgsInto,
    decode: decodeCloneArgs,
  }),
  sockaddr_in: codec({
    size: SOCKADDR_IN_SIZE,
    arbitrary: fc.record({ port: u16, address: fc.ipV4() }),
    encode: encodeSockaddrIn,
    encodeInto: encodeSockaddrInInto,
    decode: decodeSockaddrIn,
  }),
  sockaddr_in6: codec({
    size: SOCKADDR_IN6_SIZE,
    // Decoding canonicalizes the text, so generate canonical text (see the IPv6 tests below).
    arbitrary: fc.record({
      port: u16,
      address: fc.uint8Array({ minLength: 16, maxLength: 16 }).map(canonicalIPv6),
      flowInfo: u32,
      scopeId: u32,
    }),
    encode: encodeSockaddrIn6,
    encodeInto: encodeSockaddrIn6Into,
    decode: decodeSockaddrIn6,
  }),
  iovec: codec({
    size: IOVEC_SIZE,
    arbitrary: fc.record({ base: u64, len: u64 }),
    encode: encodeIovec,
    encodeInto: encodeIovecInto,
    decode: decodeIovec,
  }),
  msghdr: codec({
    size: MSGHDR_SIZE,
    arbitrary: fc.record({
      name: u64,
      nameLen: u32,
      iov: u64,
      iovLen: u64,
      control: u64,
      controlLen: u64,
      flags: i32,
    }),
    encode: encodeMsghdr,
    encodeInto: encodeMsghdrInto,
    decode: decodeMsghdr,
  }),
  cmsghdr: codec({
    size: CMSGHDR_SIZE,
    arbitrary: fc.record({ len: u64, level: i32, type: i32 }),
    encode: encodeCmsghdr,
    encodeInto: encodeCmsghdrInto,
    decode: decodeCmsghdr,
  }),
};

/** The address decodeSockaddrIn6 would print for these bytes, via a decode of our own encoding. */
function canonicalIPv6(bytes: Uint8Array): string {
  const buf = Buffer.alloc(SOCKADDR_IN6_SIZE);
  buf.writeUInt16LE(AF_INET6, 0);
  Buffer.from(bytes).copy(buf, SOCKADDR_IN6_OFFSETS.sin6_addr);
  return decodeSockaddrIn6(buf).address;
}

describe('struct round trips', () => {
  for (const [name, { size, arbitrary, encode, encodeInto, decode }] of Object.entries(CODECS)) {
    it(`${name}: decode(encode(x)) is x, at any offset, touching only its own bytes`, () => {
      fc.assert(
        fc.property(arbitrary, fc.integer({ min: 0, max: 24 }), (value, offset) => {
          const encoded = encode(value);
          expect(encoded.length).toBe(size);
          expect(decode(encoded)).toEqual(value);

          const buf = Buffer.alloc(offset + size + 8, 0xa5);
          encodeInto(buf, offset, value);
          expect(buf.subarray(offset, offset + size)).toEqual(encoded);
          expect(buf.subarray(0, offset).every((byte) => byte === 0xa5)).toBe(true);
          expect(buf.subarray(offset + size).every((byte) => byte === 0xa5)).toBe(true);
          expect(decode(buf, offset)).toEqual(value);
        }),
        { numRuns: 50 },
      );
    });

    it(`${name}: refuses buffers that are too short`, () => {
      const value = fc.sample(arbitrary, { numRuns: 1, seed: 1 })[0];
      expect(() => encodeInto(Buffer.alloc(size - 1), 0, value)).toThrow(RangeError);
      expect(() => encodeInto(Buffer.alloc(size), 1, value)).toThrow(RangeError);
      expect(() => decode(Buffer.alloc(size - 1))).toThrow(RangeError);
    });
  }

  it('fills fields left out of partial structs with zero', () => {
    expect(decodeCloneArgs(encodeCloneArgs({ flags: 0x100n }))).toEqual({
      flags: 0x100n,
      pidfd: 0n,
      childTid: 0n,
      parentTid: 0n,
      exitSignal: 0n,
      stack: 0n,
      stackSize: 0n,
      tls: 0n,
      setTid: 0n,
      setTidSize: 0n,
      cgroup: 0n,
    });
    expect(decodeOpenHow(encodeOpenHow({ resolve: 8n }))).toEqual({
      flags: 0n,
      mode: 0n,
      resolve: 8n,
    });
    expect(encodeLandlockRulesetAttr({ handledAccessFs: 1n })).toEqual(
      Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, ...Array(16).fill(0)]),
    );
    expect(encodeMsghdr({}).every((byte) => byte === 0)).toBe(true);
  });

  it('checks seccomp_data.args has six values', () => {
    const data = { nr: 0, arch: 0, instructionPointer: 0n, args: [1n, 2n] };
    expect(() => encodeSeccompData(data as never)).toThrow(/needs 6 values, got 2/);
  });

  it('rejects values that do not fit their field', () => {
    expect(() => encodeSockFilter({ code: 0x10000, jt: 0, jf: 0, k: 0 })).toThrow(RangeError);
    expect(() => encodeOpenHow({ flags: -1n })).toThrow(RangeError);
    expect(() => encodeOpenHow({ flags: 2n ** 64n })).toThrow(RangeError);
  });
});

describe('arrays', () => {
  const program = [
    { code: 0x20, jt: 0, jf: 0, k: 4 },
    { code: 0x15, jt: 1, jf: 0, k: 0xc000003e },
    { code: 0x06, jt: 0, jf: 0, k: 0x7fff0000 },
  ];

  it('encodes a BPF program back to back', () => {
    const bytes = encodeSockFilters(program);
    expect(bytes.length).toBe(24);
    expect(bytes.subarray(8, 16)).toEqual(
      Buffer.from([0x15, 0x00, 0x01, 0x00, 0x3e, 0x00, 0x00, 0xc0]),
    );
    expect(decodeSockFilters(bytes)).toEqual(program);
    expect(decodeSockFilters(bytes, 8, 1)).toEqual([program[1]]);
    expect(() => decodeSockFilters(bytes, 0, 4)).toThrow(RangeError);
  });

  it('encodes iovec arrays', () => {
    const iovs = [
      { base: 0x1000n, len: 5n },
      { base: 0x2000n, len: 0n },
    ];
    expect(decodeIovecs(encodeIovecs(iovs), 0, 2)).toEqual(iovs);
    expect(encodeIovecs([]).length).toBe(0);
  });
});

describe('SCM_RIGHTS control messages', () => {
  it('encodes descriptors after one header, padded to CMSG_SPACE', () => {
    const control = encodeScmRights([3, 7, 9]);
    expect(control.length).toBe(cmsgSpace(12));
    expect(decodeCmsghdr(control)).toEqual({
      len: BigInt(cmsgLen(12)),
      level: SOL_SOCKET,
      type: SCM_RIGHTS,
    });
    expect(decodeScmRights(control, control.length)).toEqual([3, 7, 9]);
    expect(decodeScmRights(control, 0)).toEqual([]);
  });

  it('skips records of other types and reads every SCM_RIGHTS one', () => {
    const credentials = Buffer.alloc(cmsgSpace(12)); // SCM_CREDENTIALS: pid, uid, gid
    encodeCmsghdrInto(credentials, 0, { len: BigInt(cmsgLen(12)), level: SOL_SOCKET, type: 2 });
    const control = Buffer.concat([credentials, encodeScmRights([5]), encodeScmRights([6, 8])]);
    expect(decodeScmRights(control, control.length)).toEqual([5, 6, 8]);
  });

  it('refuses a record that overruns what the kernel filled', () => {
    const control = encodeScmRights([1, 2]);
    expect(() => decodeScmRights(control, cmsgLen(4))).toThrow(/overruns/);
    const tiny = Buffer.alloc(CMSGHDR_SIZE); // cmsg_len 0
    expect(() => decodeScmRights(tiny, CMSGHDR_SIZE)).toThrow(/overruns/);
  });
});

describe('socket addresses', () => {
  it('puts ports and IPv4 addresses in network byte order', () => {
    const bytes = encodeSockaddrIn({ port: 8080, address: '127.0.0.1' });
    expect(bytes).toEqual(Buffer.from([2, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]));
    expect(decodeSockaddrFamily(bytes)).toBe(AF_INET);
  });

  it('puts IPv6 addresses in network byte order', () => {
    const bytes = encodeSockaddrIn6({ port: 443, address: '2001:db8::1', scopeId: 3 });
    expect(bytes.subarray(0, 4)).toEqual(Buffer.from([10, 0, 0x01, 0xbb]));
    expect(bytes.subarray(8, 24).toString('hex')).toBe('20010db8000000000000000000000001');
    expect(bytes.readUInt32LE(24)).toBe(3);
  });

  it.each([
    ['::1', '::1'],
    ['::', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['fe80::1:2', 'fe80::1:2'],
    ['1::', '1::'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::ffff:c000:0201', '::ffff:192.0.2.1'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ])('formats %s as %s (RFC 5952)', (input, output) => {
    const decoded = decodeSockaddrIn6(encodeSockaddrIn6({ port: 1, address: input }));
    expect(decoded.address).toBe(output);
  });

  it('agrees with the WHATWG URL parser on IPv6 text', () => {
    fc.assert(
      fc.property(fc.ipV6(), (address) => {
        const ours = decodeSockaddrIn6(encodeSockaddrIn6({ port: 0, address })).address;
        // Both parse to the same 16 bytes...
        const viaUrl = new URL(`http://[${address}]/`).hostname.slice(1, -1);
        expect(encodeSockaddrIn6({ port: 0, address: ours })).toEqual(
          encodeSockaddrIn6({ port: 0, address: viaUrl }),
        );
        // ...and print the same, except that we keep IPv4-mapped addresses dotted like
        // inet_ntop(3) where WHATWG prints hex.
        if (!ours.startsWith('::ffff:') || !ours.includes('.')) {
          expect(ours).toBe(viaUrl);
        }
      }),
    );
  });

  it('rejects malformed addresses and the wrong family', () => {
    expect(() => encodeSockaddrIn({ port: 1, address: '256.0.0.1' })).toThrow(TypeError);
    expect(() => encodeSockaddrIn({ port: 1, address: '::1' })).toThrow(TypeError);
    expect(() => encodeSockaddrIn({ port: 65536, address: '1.2.3.4' })).toThrow(RangeError);
    expect(() => encodeSockaddrIn6({ port: 1, address: '1.2.3.4' })).toThrow(TypeError);
    expect(() => encodeSockaddrIn6({ port: 1, address: 'fe80::1%eth0' })).toThrow(TypeError);
    const v6 = encodeSockaddrIn6({ port: 1, address: '::1' });
    expect(() => decodeSockaddrIn(v6)).toThrow(/family 2, got 10/);
  });

  describe('sockaddr_un', () => {
    it('terminates pathnames and counts the terminator in the length', () => {
      const { buffer, length } = encodeSockaddrUn('/tmp/sock');
      expect(buffer.length).toBe(SOCKADDR_UN_SIZE);
      expect(length).toBe(2 + 9 + 1);
      expect(buffer.readUInt16LE(0)).toBe(AF_UNIX);
      expect(buffer.subarray(2, 12).toString('latin1')).toBe('/tmp/sock\0');
      expect(decodeSockaddrUn(buffer, 0, length)).toEqual({
        kind: 'pathname',
        path: Buffer.from('/tmp/sock'),
      });
      // The kernel may report the full struct size; the name still ends at the first NUL.
      expect(decodeSockaddrUn(buffer).path.toString()).toBe('/tmp/sock');
    });

    it('keeps abstract names exact: leading NUL, no terminator', () => {
      const { buffer, length } = encodeSockaddrUn('\0sandlock\0x');
      expect(length).toBe(2 + 11);
      const decoded = decodeSockaddrUn(buffer, 0, length);
      expect(decoded.kind).toBe('abstract');
      expect(decoded.path).toEqual(Buffer.from('\0sandlock\0x'));
    });

    it('encodes an unnamed address as the family alone', () => {
      const { length, buffer } = encodeSockaddrUn('');
      expect(length).toBe(2);
      expect(decodeSockaddrUn(buffer, 0, length)).toEqual({
        kind: 'unnamed',
        path: Buffer.alloc(0),
      });
    });

    it('enforces the sun_path size', () => {
      expect(encodeSockaddrUn('a'.repeat(SUN_PATH_SIZE - 1)).length).toBe(SOCKADDR_UN_SIZE);
      expect(() => encodeSockaddrUn('a'.repeat(SUN_PATH_SIZE))).toThrow(/limit is 107/);
      expect(encodeSockaddrUn(`\0${'a'.repeat(SUN_PATH_SIZE - 1)}`).length).toBe(SOCKADDR_UN_SIZE);
      expect(() => encodeSockaddrUn(`\0${'a'.repeat(SUN_PATH_SIZE)}`)).toThrow(/limit is 108/);
      expect(() => encodeSockaddrUn('/tmp/a\0b')).toThrow(/NUL byte/);
      expect(() => decodeSockaddrUn(Buffer.alloc(SOCKADDR_UN_SIZE), 0, 1)).toThrow(RangeError);
    });

    it('round-trips any name it accepts', () => {
      const name = fc.oneof(
        fc
          .uint8Array({ minLength: 1, maxLength: SUN_PATH_SIZE - 1 })
          .map((bytes) => Buffer.from(bytes.map((byte) => byte || 1))),
        fc
          .uint8Array({ maxLength: SUN_PATH_SIZE - 1 })
          .map((bytes) => Buffer.concat([Buffer.alloc(1), bytes])),
      );
      fc.assert(
        fc.property(name, (path) => {
          const { buffer, length } = encodeSockaddrUn(path);
          expect(decodeSockaddrUn(buffer, 0, length).path).toEqual(path);
        }),
      );
    });
  });
});

describe('constants', () => {
  // <asm-generic/ioctl.h>, which x86_64 and aarch64 both use.
  const ioc = (dir: number, type: string, nr: number, size: number) =>
    ((dir << 30) | (size << 16) | (type.charCodeAt(0) << 8) | nr) >>> 0;
  const IOC_WRITE = 1;
  const IOC_READ = 2;

  it('has the seccomp ioctl numbers _IOWR/_IOW give for our struct sizes', () => {
    const iowr = (nr: number, size: number) => ioc(IOC_READ | IOC_WRITE, '!', nr, size);
    const iow = (nr: number, size: number) => ioc(IOC_WRITE, '!', nr, size);
    expect(SECCOMP_IOCTL_NOTIF_RECV).toBe(iowr(0, SECCOMP_NOTIF_SIZE));
    expect(SECCOMP_IOCTL_NOTIF_SEND).toBe(iowr(1, SECCOMP_NOTIF_RESP_SIZE));
    expect(SECCOMP_IOCTL_NOTIF_ID_VALID).toBe(iow(2, 8));
    expect(SECCOMP_IOCTL_NOTIF_ADDFD).toBe(iow(3, SECCOMP_NOTIF_ADDFD_SIZE));
    expect(SECCOMP_IOCTL_NOTIF_SET_FLAGS).toBe(iow(4, 8));
  });

  it('names every Landlock right once, one bit each', () => {
    for (const group of [LANDLOCK_ACCESS_FS, LANDLOCK_ACCESS_NET, LANDLOCK_SCOPE]) {
      const bits = Object.values(group);
      expect(bits.reduce((all, bit) => all | bit, 0n)).toBe((1n << BigInt(bits.length)) - 1n);
    }
    expect(Object.keys(LANDLOCK_ACCESS_FS)).toHaveLength(16);
    expect(LANDLOCK_ACCESS_FS.IOCTL_DEV).toBe(LANDLOCK_ACCESS_FS_IOCTL_DEV);
  });
});

// --- layouts and constants against the installed C headers ---

interface HeaderStruct {
  /** The C type, e.g. 'struct seccomp_data'. */
  type: string;
  size: number;
  align: number;
  /** Keyed by C field name. */
  offsets: Readonly<Record<string, number>>;
  /** A macro that headers new enough to declare the struct at all define. */
  since?: string;
  /** Fields appended after Linux 6.1, each with a macro from the release that added it. */
  newerFields?: Readonly<Record<string, string>>;
}

const HEADER_STRUCTS: readonly HeaderStruct[] = [
  ['struct seccomp_data', 'SECCOMP_DATA'],
  ['struct seccomp_notif', 'SECCOMP_NOTIF'],
  ['struct seccomp_notif_resp', 'SECCOMP_NOTIF_RESP'],
  ['struct seccomp_notif_addfd', 'SECCOMP_NOTIF_ADDFD'],
  ['struct sock_filter', 'SOCK_FILTER'],
  ['struct sock_fprog', 'SOCK_FPROG'],
  ['struct landlock_ruleset_attr', 'LANDLOCK_RULESET_ATTR'],
  ['struct landlock_path_beneath_attr', 'LANDLOCK_PATH_BENEATH_ATTR'],
  ['struct landlock_net_port_attr', 'LANDLOCK_NET_PORT_ATTR'],
  ['struct open_how', 'OPEN_HOW'],
  ['struct clone_args', 'CLONE_ARGS'],
  ['struct sockaddr_in', 'SOCKADDR_IN'],
  ['struct sockaddr_in6', 'SOCKADDR_IN6'],
  ['struct sockaddr_un', 'SOCKADDR_UN'],
  ['struct iovec', 'IOVEC'],
  ['struct msghdr', 'MSGHDR'],
  ['struct cmsghdr', 'CMSGHDR'],
].map(([type, prefix]) => ({
  type: type!,
  size: exported(`${prefix}_SIZE`) as number,
  align: exported(`${prefix}_ALIGN`) as number,
  offsets: exported(`${prefix}_OFFSETS`) as Record<string, number>,
  // Debian 12 ships Linux 6.1 headers, where landlock_ruleset_attr is handled_access_fs alone
  // (8 bytes; handled_access_net came in 6.7, scoped in 6.12) and landlock_net_port_attr does not
  // exist. Those headers are checked for the fields they have, and the struct size against the
  // offset of the first field they lack.
  ...(type === 'struct landlock_ruleset_attr' && {
    newerFields: {
      handled_access_net: 'LANDLOCK_ACCESS_NET_BIND_TCP',
      scoped: 'LANDLOCK_SCOPE_SIGNAL',
    },
  }),
  ...(type === 'struct landlock_net_port_attr' && { since: 'LANDLOCK_ACCESS_NET_BIND_TCP' }),
}));

function exported(name: string): unknown {
  const value = (structs as Record<string, unknown>)[name];
  if (value === undefined) throw new Error(`structs exports no ${name}`);
  return value;
}

/** Every exported constant spelled like its C counterpart. */
const HEADER_CONSTANT_NAMES = Object.keys(structs).filter(
  (name) =>
    /^(SECCOMP_(RET|SET_MODE|FILTER_FLAG|USER_NOTIF|ADDFD|IOCTL)_|LANDLOCK_(ACCESS_FS|ACCESS_NET|SCOPE|CREATE_RULESET|RULE|RESTRICT_SELF)_|RESOLVE_|CLONE_ARGS_SIZE_VER|AF_|MSG_|SCM_|SOL_SOCKET$|BPF_MAXINSNS$)/.test(
      name,
    ) && typeof exported(name) !== 'object',
);

/** Constants without a C macro of that name, and the C expression that gives their value. */
const HEADER_EXPRESSIONS: Readonly<Record<string, string>> = {
  SUN_PATH_SIZE: 'sizeof(((struct sockaddr_un *)0)->sun_path)',
  SECCOMP_ARG_COUNT: 'sizeof(((struct seccomp_data *)0)->args) / sizeof(__u64)',
  AUDIT_ARCH_X86_64: 'AUDIT_ARCH_X86_64',
  AUDIT_ARCH_AARCH64: 'AUDIT_ARCH_AARCH64',
  AUDIT_ARCH_I386: 'AUDIT_ARCH_I386',
};

/**
 * Constants newer than Linux 6.1, checked only where the installed headers have them; the value
 * is the macro to test for. Enumerators (LANDLOCK_RULE_*) cannot be tested with #ifdef, so they
 * borrow a macro from the same release.
 */
const NEWER_THAN_LINUX_6_1: Readonly<Record<string, string>> = Object.fromEntries(
  [
    'LANDLOCK_ACCESS_FS_TRUNCATE',
    'LANDLOCK_ACCESS_FS_IOCTL_DEV',
    'LANDLOCK_ACCESS_NET_BIND_TCP',
    'LANDLOCK_ACCESS_NET_CONNECT_TCP',
    'LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET',
    'LANDLOCK_SCOPE_SIGNAL',
    'LANDLOCK_CREATE_RULESET_ERRATA',
    'LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF',
    'LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON',
    'LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF',
    'LANDLOCK_RESTRICT_SELF_TSYNC',
    'SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP',
    'SECCOMP_IOCTL_NOTIF_SET_FLAGS',
  ]
    .map((name) => [name, name])
    .concat([['LANDLOCK_RULE_NET_PORT', 'LANDLOCK_ACCESS_NET_BIND_TCP']]),
);

/** cmsg(3) macros, by the C call that gives each value. */
const CMSG_MACROS: Readonly<Record<string, number>> = Object.fromEntries(
  [0, 1, 4, 12, 16, 17].flatMap((size) => [
    [`CMSG_LEN(${size})`, cmsgLen(size)],
    [`CMSG_SPACE(${size})`, cmsgSpace(size)],
  ]),
);

function expectedConstant(name: string): bigint {
  const value =
    name in AUDIT_ARCH_BY_MACRO ? AUDIT_ARCH_BY_MACRO[name] : (exported(name) as number | bigint);
  return BigInt(value as number | bigint);
}

const AUDIT_ARCH_BY_MACRO: Readonly<Record<string, number>> = {
  AUDIT_ARCH_X86_64: AUDIT_ARCH.x86_64,
  AUDIT_ARCH_AARCH64: AUDIT_ARCH.aarch64,
  AUDIT_ARCH_I386: AUDIT_ARCH.i386,
};

function layoutProgram(): string {
  const lines = [
    // SCM_CREDENTIALS and struct ucred: <bits/socket.h> declares them under __USE_GNU.
    '#define _GNU_SOURCE',
    '#include <stddef.h>',
    '#include <stdio.h>',
    '#include <sys/ioctl.h>',
    '#include <sys/socket.h>',
    '#include <sys/uio.h>',
    '#include <sys/un.h>',
    '#include <netinet/in.h>',
    '#include <linux/audit.h>',
    '#include <linux/filter.h>',
    '#include <linux/landlock.h>',
    '#include <linux/openat2.h>',
    '#include <linux/sched.h>',
    '#include <linux/seccomp.h>',
    '',
    '#define SIZE(t) printf("%s size %zu\\n%s align %zu\\n", #t, sizeof(t), #t, _Alignof(t));',
    '#define FIELD(t, f) printf("%s.%s %zu\\n", #t, #f, offsetof(t, f));',
    '#define CONST(name, expr) printf("%s %llu\\n", name, (unsigned long long)(expr));',
    '',
    'int main(void) {',
  ];
  const guarded = (guard: string | undefined, body: string[]) =>
    guard ? [`#ifdef ${guard}`, ...body, '#endif'] : body;
  for (const struct of HEADER_STRUCTS) {
    const fields = Object.keys(struct.offsets).flatMap((field) =>
      guarded(struct.newerFields?.[field], [`  FIELD(${struct.type}, ${field})`]),
    );
    lines.push(...guarded(struct.since, [`  SIZE(${struct.type})`, ...fields]));
  }
  for (const name of HEADER_CONSTANT_NAMES) {
    lines.push(...guarded(NEWER_THAN_LINUX_6_1[name], [`  CONST("${name}", ${name})`]));
  }
  for (const [name, expression] of Object.entries(HEADER_EXPRESSIONS)) {
    lines.push(`  CONST("${name}", ${expression})`);
  }
  for (const call of Object.keys(CMSG_MACROS)) lines.push(`  CONST("${call}", ${call})`);
  lines.push('  return 0;', '}', '');
  return lines.join('\n');
}

function parseReport(text: string): Map<string, bigint> {
  const report = new Map<string, bigint>();
  for (const line of text.trim().split('\n')) {
    const space = line.lastIndexOf(' ');
    report.set(line.slice(0, space), BigInt(line.slice(space + 1)));
  }
  return report;
}

describe('layouts match the C headers', () => {
  const cc = spawnSync('cc', ['--version'], { encoding: 'utf8' });
  const ccMissing = cc.error !== undefined || cc.status !== 0;
  const foreignHost = process.arch !== 'x64' && process.arch !== 'arm64';
  const skipReason = ccMissing
    ? 'no C compiler (cc) on PATH'
    : foreignHost
      ? `host ${process.arch} is not 64-bit little-endian Linux (x86_64 or aarch64)`
      : undefined;
  if (skipReason) {
    console.warn(`skipping the struct layout check against C headers: ${skipReason}`);
  }

  it.skipIf(skipReason !== undefined)(
    'has the sizes, alignments, offsets and constants <linux/*.h> and libc declare',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'sandlock-structs-'));
      try {
        const source = join(dir, 'layout.c');
        const binary = join(dir, 'layout');
        writeFileSync(source, layoutProgram());
        const compile = spawnSync('cc', ['-std=gnu11', '-Wall', '-o', binary, source], {
          encoding: 'utf8',
        });
        expect(compile.stderr).toBe('');
        expect(compile.status).toBe(0);
        const run = spawnSync(binary, [], { encoding: 'utf8' });
        expect(run.status).toBe(0);
        const report = parseReport(run.stdout);

        const expected = new Map<string, bigint>();
        for (const struct of HEADER_STRUCTS) {
          if (!report.has(`${struct.type} size`)) {
            expect(struct.since, `${struct.type} missing from the headers`).toBeDefined();
            continue;
          }
          const missing = Object.keys(struct.offsets).filter(
            (field) => !report.has(`${struct.type}.${field}`),
          );
          expect(missing.every((field) => struct.newerFields?.[field])).toBe(true);
          const headerSize = missing.length ? struct.offsets[missing[0]!]! : struct.size;
          expected.set(`${struct.type} size`, BigInt(headerSize));
          expected.set(`${struct.type} align`, BigInt(struct.align));
          for (const [field, offset] of Object.entries(struct.offsets)) {
            if (!missing.includes(field)) expected.set(`${struct.type}.${field}`, BigInt(offset));
          }
        }
        const unchecked: string[] = [];
        for (const name of [...HEADER_CONSTANT_NAMES, ...Object.keys(HEADER_EXPRESSIONS)]) {
          if (report.has(name)) expected.set(name, expectedConstant(name));
          else unchecked.push(name);
        }
        for (const [call, value] of Object.entries(CMSG_MACROS)) expected.set(call, BigInt(value));
        expect(unchecked.every((name) => NEWER_THAN_LINUX_6_1[name])).toBe(true);
        if (unchecked.length) {
          console.info(`not in the installed headers, so not checked: ${unchecked.join(', ')}`);
        }

        expect(Object.fromEntries(report)).toEqual(Object.fromEntries(expected));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
