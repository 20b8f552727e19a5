// The committed trampoline bytes (src/vdso-trampolines.ts) must be what binutils makes of
// the assembly source beside them, on both architectures.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Arch, syscallNumber } from '@sandlock/sys';
import { describe, expect, it } from 'vitest';
import { CLOCK_GETTIME_DETOUR } from '../src/vdso-detour.js';
import {
  TRAMPOLINE_SOURCES,
  type TrampolineKind,
  type TrampolineSource,
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
  const entries = Object.entries(TRAMPOLINE_SOURCES[arch]) as [TrampolineKind, TrampolineSource][];

  it.skipIf(missing).each(entries)('%s assembles to the committed bytes', (_kind, entry) => {
    expect(assemble(arch, entry.source, as!, objcopy!)).toBe(entry.hex);
  });

  it.each(entries)('%s uses the syscall numbers of the tables, and no marker', (_kind, entry) => {
    const { source } = entry;
    expect(source).not.toMatch(/MARKER|0x534c4b54/i);
    if (entry.syscall !== undefined) {
      const nr = syscallNumber(entry.syscall, arch);
      expect(source).toMatch(new RegExp(`(mov (eax|x8), #?${nr}\\b)`));
    } else {
      expect(source).not.toMatch(/syscall|svc/);
    }
  });

  it.each(entries)('%s has its call at callAt', (kind, entry) => {
    const code = Buffer.from(entry.hex, 'hex');
    if (entry.callAt === undefined) {
      expect(trampolineCode(arch, kind).toString('hex')).toBe(entry.hex);
      return;
    }
    expect(code[entry.callAt - 1]).toBe(0xe8); // call rel32
    expect(code.readInt32LE(entry.callAt)).toBe(0);
    // From offset 0x900 to 0xb10: rel32 counts from the end of the call.
    const filled = trampolineCode(arch, kind, { from: 0x900, to: 0xb10 });
    expect(filled.readInt32LE(entry.callAt)).toBe(0xb10 - (0x900 + entry.callAt + 4));
    expect(() => trampolineCode(arch, kind)).toThrow(/needs its callee/);
  });
});

it('x86_64 time() over the detour fits the 40 bytes of __vdso_time', () => {
  expect(trampolineCode('x86_64', 'timeViaClock', { from: 0, to: 0 }).length).toBeLessThanOrEqual(
    40,
  );
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
