// The committed machine code (src/stub/code.ts) must be what binutils makes of
// the assembly sources beside it, and the sources must agree with the layout
// the TypeScript encoder writes.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  CMSGHDR_SIZE,
  cmsgSpace,
  IOVEC_OFFSETS,
  IOVEC_SIZE,
  MSG_CMSG_CLOEXEC,
  MSG_CTRUNC,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  MSG_TRUNC,
  MSGHDR_OFFSETS,
  MSGHDR_SIZE,
} from '../src/structs/index.js';
import {
  SCRIPT_BASE,
  SCRIPT_CAPACITY,
  SCRIPT_HEADER_SIZE,
  SCRIPT_MAGIC,
  SCRIPT_STEP_SIZE,
  STEP_FATAL_ON_ERROR,
  STEP_FATAL_UNLESS_EQUAL,
  STUB_CODE,
} from '../src/stub/index.js';
import {
  BROKER_ARG,
  BROKER_BLOCK,
  BROKER_BLOCK_SIZE,
  BROKER_MAX_FDS,
  BROKER_PATCH,
  BROKER_REQUEST,
  BROKER_REQUEST_MAX,
  BROKER_RETURNS_FD,
  REAPER_PARAM,
  REAPER_PARAMS_SIZE,
  STEP_FORK_REAPER,
} from '../src/stub/script.js';
import { ARCHES, type Arch, syscallNumber } from '../src/syscalls/index.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const assembleScript = join(repoRoot, 'tools/stub/assemble.mjs');
const asmDir = join(repoRoot, 'packages/sys/src/stub/asm');

type AssembleResult = { size: number; hex: string } | { missing: string } | { error: string };

/** Runs tools/stub/assemble.mjs --json once for every arch. */
function assembleAll(): Record<Arch, AssembleResult> {
  const run = spawnSync(process.execPath, [assembleScript, '--json'], { encoding: 'utf8' });
  if (run.error) throw run.error;
  return JSON.parse(run.stdout) as Record<Arch, AssembleResult>;
}

const assembled = assembleAll();

/** `.equ NAME, VALUE` lines of an assembly source. */
function equates(source: string): Map<string, bigint> {
  const values = new Map<string, bigint>();
  for (const match of source.matchAll(/^\s*\.equ\s+(\w+),\s*(0x[0-9a-f]+|\d+)/gim)) {
    values.set(match[1]!, BigInt(match[2]!));
  }
  return values;
}

describe.each(ARCHES)('exec stub source for %s', (arch) => {
  const result = assembled[arch];
  const missing = 'missing' in result ? result.missing : undefined;
  if (missing) console.warn(`stub-asm: skipping the ${arch} re-assembly check: ${missing}`);

  it.skipIf(missing !== undefined)('assembles to exactly the bytes in code.ts', () => {
    if ('error' in result) throw new Error(result.error);
    if (!('hex' in result)) throw new Error('assemble.mjs gave no bytes');
    expect(result.hex).toBe(Buffer.from(STUB_CODE[arch]).toString('hex'));
  });

  it('uses the layout constants of the TypeScript side', () => {
    const values = equates(readFileSync(join(asmDir, `${arch}.S`), 'utf8'));
    expect(values.get('SCRIPT_BASE')).toBe(BigInt(SCRIPT_BASE));
    expect(values.get('SCRIPT_CAPACITY')).toBe(BigInt(SCRIPT_CAPACITY));
    expect(values.get('SCRIPT_MAGIC')).toBe(SCRIPT_MAGIC);
    expect(values.get('HEADER_SIZE')).toBe(BigInt(SCRIPT_HEADER_SIZE));
    expect(values.get('STEP_SIZE')).toBe(BigInt(SCRIPT_STEP_SIZE));
    expect(values.get('S_FLAGS')).toBe(56n);
    expect(values.get('S_EXPECT')).toBe(72n);
    expect(values.get('H_ERROR_FD')).toBe(24n);
    if (arch === 'x86_64') {
      expect(values.get('FATAL_ON_ERROR')).toBe(BigInt(STEP_FATAL_ON_ERROR));
      expect(values.get('FATAL_UNLESS_EQUAL')).toBe(BigInt(STEP_FATAL_UNLESS_EQUAL));
      expect(values.get('FORK_REAPER')).toBe(BigInt(STEP_FORK_REAPER));
    } else {
      // aarch64 tests the flags with tbz, by bit number.
      expect(1n << values.get('FATAL_ON_ERROR_BIT')!).toBe(BigInt(STEP_FATAL_ON_ERROR));
      expect(1n << values.get('FATAL_UNLESS_EQUAL_BIT')!).toBe(BigInt(STEP_FATAL_UNLESS_EQUAL));
      expect(1n << values.get('FORK_REAPER_BIT')!).toBe(BigInt(STEP_FORK_REAPER));
    }
  });

  it('uses the ReaperParams layout of the TypeScript side', () => {
    const values = equates(readFileSync(join(asmDir, `${arch}.S`), 'utf8'));
    expect({
      pollfds: values.get('P_POLLFDS'),
      killTarget: values.get('P_KILL_TARGET'),
      sigmap: values.get('P_SIGMAP'),
      siginfo: values.get('P_SIGINFO'),
      closeLast: values.get('P_CLOSE_LAST'),
      zero: values.get('P_ZERO'),
      status: values.get('P_STATUS'),
      broker: values.get('P_BROKER'),
    }).toEqual(Object.fromEntries(Object.entries(REAPER_PARAM).map(([k, v]) => [k, BigInt(v)])));
    // 16 zero bytes, then the 8-byte status slot, then the broker address ends the block.
    expect(REAPER_PARAM.status - REAPER_PARAM.zero).toBe(16);
    expect(REAPER_PARAM.broker + 8).toBe(REAPER_PARAMS_SIZE);
  });

  it('uses the broker block and request layout of the TypeScript side', () => {
    const values = equates(readFileSync(join(asmDir, `${arch}.S`), 'utf8'));
    const big = (value: number) => BigInt(value);
    expect({
      recvMsg: values.get('B_RECV_MSG'),
      sendMsg: values.get('B_SEND_MSG'),
      sendLen: values.get('B_SEND_LEN'),
      recvControl: values.get('B_RECV_CONTROL'),
      sendFd: values.get('B_SEND_FD'),
      call: values.get('B_CALL'),
      request: values.get('B_REQUEST'),
      controlLen: values.get('MSG_CONTROLLEN'),
      flags: values.get('MSG_FLAGS'),
      cmsgData: values.get('CMSG_DATA'),
      recvControlSize: values.get('RECV_CONTROL_SIZE'),
      sendControlSize: values.get('SEND_CONTROL_SIZE'),
      kinds: values.get('R_KINDS'),
      patches: values.get('R_PATCHES'),
      requestFlags: values.get('R_FLAGS'),
      data: values.get('R_DATA'),
    }).toEqual({
      recvMsg: big(BROKER_BLOCK.recvMsg),
      sendMsg: big(BROKER_BLOCK.sendMsg),
      sendLen: big(BROKER_BLOCK.sendIov + IOVEC_OFFSETS.iov_len),
      recvControl: big(BROKER_BLOCK.recvControl),
      sendFd: big(BROKER_BLOCK.sendFd),
      call: big(BROKER_BLOCK.call),
      request: big(BROKER_BLOCK.request),
      controlLen: big(MSGHDR_OFFSETS.msg_controllen),
      flags: big(MSGHDR_OFFSETS.msg_flags),
      cmsgData: big(CMSGHDR_SIZE),
      recvControlSize: big(cmsgSpace(4 * BROKER_MAX_FDS)),
      sendControlSize: big(cmsgSpace(4)),
      kinds: big(BROKER_REQUEST.kinds),
      patches: big(BROKER_REQUEST.patches),
      requestFlags: big(BROKER_REQUEST.flags),
      data: big(BROKER_REQUEST.data),
    });
    // The parts of the block follow each other without overlapping.
    expect(BROKER_BLOCK.recvControl).toBe(0);
    expect(BROKER_BLOCK.recvMsg).toBe(BROKER_BLOCK.recvControl + cmsgSpace(4 * BROKER_MAX_FDS));
    expect(BROKER_BLOCK.sendMsg).toBe(BROKER_BLOCK.recvMsg + MSGHDR_SIZE);
    expect(BROKER_BLOCK.recvIov).toBe(BROKER_BLOCK.sendMsg + MSGHDR_SIZE);
    expect(BROKER_BLOCK.sendIov).toBe(BROKER_BLOCK.recvIov + IOVEC_SIZE);
    expect(BROKER_BLOCK.sendControl).toBe(BROKER_BLOCK.sendIov + IOVEC_SIZE);
    expect(BROKER_BLOCK.sendFd).toBe(BROKER_BLOCK.sendControl + CMSGHDR_SIZE);
    expect(BROKER_BLOCK.call).toBe(BROKER_BLOCK.sendControl + cmsgSpace(4));
    expect(BROKER_BLOCK.request).toBe(BROKER_BLOCK.call + 7 * 8);
    expect(BROKER_BLOCK_SIZE).toBe(BROKER_BLOCK.request + BROKER_REQUEST_MAX);
    // aarch64 reaches what follows the control buffer from the request (ldur: -256 at most).
    expect(BROKER_BLOCK.request - BROKER_BLOCK.recvMsg).toBeLessThanOrEqual(256);
    // SCM_MAX_FD (include/net/scm.h).
    expect(BROKER_MAX_FDS).toBe(253);
    // The reaper tells the three kinds apart as 0, 1, 2 and anything else.
    expect(BROKER_ARG).toEqual({ literal: 0, fd: 1, data: 2 });
    expect(BROKER_PATCH).toEqual({ at: 0, kind: 4, size: 8 });
    const msg = (name: string) => values.get(name) ?? 1n << values.get(`${name}_BIT`)!;
    expect(msg('MSG_CTRUNC')).toBe(big(MSG_CTRUNC));
    expect(msg('MSG_TRUNC')).toBe(big(MSG_TRUNC));
    expect(msg('RETURNS_FD')).toBe(big(BROKER_RETURNS_FD));
    expect(values.get('MSG_DONTWAIT')).toBe(big(MSG_DONTWAIT));
    expect(values.get('MSG_NOSIGNAL')).toBe(big(MSG_NOSIGNAL));
    expect(values.get('MSG_CMSG_CLOEXEC')).toBe(big(MSG_CMSG_CLOEXEC));
  });

  it('uses the errno values of the C library', () => {
    const values = equates(readFileSync(join(asmDir, `${arch}.S`), 'utf8'));
    const errnos = [...values].filter(([name]) => /^E[A-Z]+$/.test(name));
    expect(errnos.map(([name]) => name).sort()).toEqual(['EAGAIN', 'EBADF', 'EINTR', 'EINVAL']);
    for (const [name, value] of errnos) {
      expect({ name, value }).toEqual({
        name,
        value: BigInt(osConstants.errno[name as keyof typeof osConstants.errno]),
      });
    }
  });

  it('uses the syscall numbers of the tables for every SYS_ constant', () => {
    const values = equates(readFileSync(join(asmDir, `${arch}.S`), 'utf8'));
    const syscalls = [...values].filter(([name]) => name.startsWith('SYS_'));
    expect(syscalls.map(([name]) => name).sort()).toEqual(
      [
        'read',
        'write',
        'exit_group',
        'wait4',
        'ppoll',
        'kill',
        'getpid',
        'close_range',
        'rt_sigprocmask',
        'prlimit64',
        'recvmsg',
        'sendmsg',
        'close',
        'clone',
        'dup3',
        'getppid',
        'prctl',
        'rt_sigaction',
      ]
        .map((name) => `SYS_${name}`)
        .sort(),
    );
    for (const [name, value] of syscalls) {
      expect({ name, value: Number(value) }).toEqual({
        name,
        value: syscallNumber(name.slice('SYS_'.length), arch),
      });
    }
  });

  it('stays small', () => {
    expect(STUB_CODE[arch].length).toBeLessThan(1600); // 1425 and 1512 bytes with the zygote
  });
});

it('SCRIPT_MAGIC is "SLSTUB01" read as a u64 LE', () => {
  expect(Buffer.from('SLSTUB01', 'latin1').readBigUInt64LE(0)).toBe(SCRIPT_MAGIC);
});
