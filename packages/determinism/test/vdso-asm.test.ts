// The committed trampoline bytes (src/vdso-trampolines.ts) must be what binutils makes of
// the assembly source beside them, on both architectures.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Arch, syscallNumber, VDSO_TIME_MARKER } from '@sandlock/sys';
import { describe, expect, it } from 'vitest';
import { CLOCK_GETTIME_DETOUR } from '../src/vdso-detour.js';
import {
  TRAMPOLINE_SOURCES,
  type TrampolineKind,
  trampolineCode,
} from '../src/vdso-trampolines.js';

const TOOLS: Record<Arch, { as: string[]; objcopy: string[]; flags: string[] }> = {
  x86_64: {
    as: process.arch === 'x64' ? ['x86_64-linux-gnu-as', 'as'] : ['x86_64-linux-gnu-as'],
    objcopy:
      process.arch === 'x64'
        ? ['x86_64-linux-gnu-objcopy', 'objcopy']
        : ['x86_64-linux-gnu-objcopy'],
    flags: ['--64'],
  },
  aarch64: {
    as: process.arch === 'arm64' ? ['aarch64-linux-gnu-as', 'as'] : ['aarch64-linux-gnu-as'],
    objcopy:
      process.arch === 'arm64'
        ? ['aarch64-linux-gnu-objcopy', 'objcopy']
        : ['aarch64-linux-gnu-objcopy'],
    flags: [],
  },
};

function findTool(candidates: string[]): string | undefined {
  return candidates.find((tool) => {
    const result = spawnSync(tool, ['--version'], { stdio: 'ignore' });
    return !result.error && result.status === 0;
  });
}

/** The .text bytes of `source` as hex. */
function assemble(arch: Arch, source: string, as: string, objcopy: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sandlock-vdso-asm-'));
  try {
    writeFileSync(join(dir, 't.S'), source);
    const run = (tool: string, args: string[]) => {
      const result = spawnSync(tool, args, { encoding: 'utf8', cwd: dir });
      if (result.status !== 0) throw new Error(`${tool} ${args.join(' ')}: ${result.stderr}`);
    };
    run(as, [...TOOLS[arch].flags, '-o', 't.o', 't.S']);
    run(objcopy, ['-O', 'binary', '-j', '.text', 't.o', 't.bin']);
    return readFileSync(join(dir, 't.bin')).toString('hex');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.each(['x86_64', 'aarch64'] as const)('vDSO trampolines for %s', (arch) => {
  const as = findTool(TOOLS[arch].as);
  const objcopy = findTool(TOOLS[arch].objcopy);
  const missing = as === undefined || objcopy === undefined;
  if (missing) {
    console.warn(
      `vdso-asm: skipping the ${arch} re-assembly: no ${TOOLS[arch].as.join('/')} or objcopy (install binutils${arch === 'aarch64' ? '-aarch64-linux-gnu' : ''})`,
    );
  }
  const entries = Object.entries(TRAMPOLINE_SOURCES[arch]) as [
    TrampolineKind,
    { source: string; hex: string; offsetSlot: boolean },
  ][];

  it.skipIf(missing).each(entries)('%s assembles to the committed bytes', (_kind, entry) => {
    expect(assemble(arch, entry.source, as!, objcopy!)).toBe(entry.hex);
  });

  it.each(entries)('%s uses the marker and the syscall numbers of the tables', (kind, entry) => {
    const { source } = entry;
    if (arch === 'x86_64') {
      if (/MARKER/.test(source.replace(/\.equ MARKER.*/, ''))) {
        expect(source).toMatch(new RegExp(`\\.equ MARKER, 0x${VDSO_TIME_MARKER.toString(16)}\\b`));
      }
    } else {
      expect(source).toContain(`.equ MARKER_LO, 0x${(VDSO_TIME_MARKER & 0xffff).toString(16)}`);
      expect(source).toContain(`.equ MARKER_HI, 0x${(VDSO_TIME_MARKER >>> 16).toString(16)}`);
    }
    const syscall = kind === 'timeSyscall' ? 'time' : kind;
    if (kind !== 'getrandom') {
      const nr = syscallNumber(syscall, arch);
      expect(source).toMatch(new RegExp(`(mov (eax|al|x8), #?${nr}\\b)`));
    }
  });

  it.each(entries)('%s has its offset slot at the end', (kind, entry) => {
    const code = trampolineCode(arch, kind, -0x0102030405060708n);
    expect(code.length).toBe(entry.hex.length / 2);
    if (entry.offsetSlot) {
      expect(entry.hex.endsWith('0000000000000000')).toBe(true);
      expect(code.readBigInt64LE(code.length - 8)).toBe(-0x0102030405060708n);
      expect(code.subarray(0, -8).toString('hex')).toBe(entry.hex.slice(0, -16));
    } else {
      expect(code.toString('hex')).toBe(entry.hex);
    }
  });
});

it('x86_64 time() fits the 40 bytes of __vdso_time', () => {
  expect(trampolineCode('x86_64', 'time').length).toBeLessThanOrEqual(40);
});

describe('the x86_64 clock_gettime detour', () => {
  const as = findTool(TOOLS.x86_64.as);
  const objcopy = findTool(TOOLS.x86_64.objcopy);

  it.skipIf(as === undefined || objcopy === undefined)('assembles to the committed bytes', () => {
    expect(assemble('x86_64', CLOCK_GETTIME_DETOUR.source, as!, objcopy!)).toBe(
      CLOCK_GETTIME_DETOUR.hex,
    );
  });

  it('has the layout its constants say', () => {
    const code = Buffer.from(CLOCK_GETTIME_DETOUR.hex, 'hex');
    const { originalAt, originalRoom, resumeAt, shiftAt } = CLOCK_GETTIME_DETOUR;
    expect(code.subarray(originalAt, originalAt + originalRoom)).toEqual(
      Buffer.alloc(originalRoom, 0x90),
    );
    // jmp [rip + 0]: the address right behind it.
    expect(code.subarray(originalAt + originalRoom, resumeAt).toString('hex')).toBe('ff2500000000');
    expect(shiftAt).toBe(resumeAt + 8);
    expect(code.length).toBe(shiftAt + 8);
    expect(code.subarray(resumeAt).equals(Buffer.alloc(16))).toBe(true);
  });
});
