// The committed machine code (src/stub/code.ts) must be what binutils makes of
// the assembly sources beside it, and the sources must agree with the layout
// the TypeScript encoder writes.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
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
import { REAPER_PARAM, REAPER_PARAMS_SIZE, STEP_FORK_REAPER } from '../src/stub/script.js';
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
    }).toEqual(Object.fromEntries(Object.entries(REAPER_PARAM).map(([k, v]) => [k, BigInt(v)])));
    // 16 zero bytes, then the 8-byte status slot ends the block.
    expect(REAPER_PARAM.status - REAPER_PARAM.zero).toBe(16);
    expect(REAPER_PARAM.status + 8).toBe(REAPER_PARAMS_SIZE);
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
    expect(STUB_CODE[arch].length).toBeLessThan(700);
  });
});

it('SCRIPT_MAGIC is "SLSTUB01" read as a u64 LE', () => {
  expect(Buffer.from('SLSTUB01', 'latin1').readBigUInt64LE(0)).toBe(SCRIPT_MAGIC);
});
