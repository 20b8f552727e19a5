// The stub ELF: headers as the contract describes them (checked by parsing
// them here, independent of binutils), and readelf's view when installed.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildStubElf,
  CODE_OFFSET,
  CODE_VADDR,
  SCRIPT_BASE,
  SCRIPT_CAPACITY,
  STUB_CODE,
} from '../src/stub/index.js';
import { ARCHES } from '../src/syscalls/index.js';

const EM = { x86_64: 62, aarch64: 183 } as const;
const PT_LOAD = 1;
const PT_GNU_STACK = 0x6474e551;

function programHeaders(elf: Buffer) {
  const phoff = Number(elf.readBigUInt64LE(32));
  const count = elf.readUInt16LE(56);
  return Array.from({ length: count }, (_, index) => {
    const at = phoff + index * elf.readUInt16LE(54);
    return {
      type: elf.readUInt32LE(at),
      flags: elf.readUInt32LE(at + 4),
      offset: Number(elf.readBigUInt64LE(at + 8)),
      vaddr: Number(elf.readBigUInt64LE(at + 16)),
      fileSize: Number(elf.readBigUInt64LE(at + 32)),
      memorySize: Number(elf.readBigUInt64LE(at + 40)),
      align: Number(elf.readBigUInt64LE(at + 48)),
    };
  });
}

const readelfWorks = (() => {
  const result = spawnSync('readelf', ['--version'], { stdio: 'ignore' });
  return !result.error && result.status === 0;
})();
if (!readelfWorks) console.warn('stub-elf: skipping the readelf cross-check: readelf not found');

describe.each(ARCHES)('buildStubElf(%s)', (arch) => {
  const elf = buildStubElf(arch);

  it('is a static little-endian ELF64 executable with no sections', () => {
    expect([...elf.subarray(0, 8)]).toEqual([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
    expect(elf.readUInt16LE(16)).toBe(2); // ET_EXEC
    expect(elf.readUInt16LE(18)).toBe(EM[arch]);
    expect(elf.readUInt32LE(20)).toBe(1);
    expect(elf.readBigUInt64LE(24)).toBe(BigInt(CODE_VADDR + CODE_OFFSET));
    expect(elf.readUInt16LE(60)).toBe(0); // e_shnum
  });

  it('loads headers and code R+X at CODE_VADDR and a zero-filled RW script buffer', () => {
    const [code, script, stack, ...rest] = programHeaders(elf);
    expect(rest).toEqual([]);
    expect(code).toEqual({
      type: PT_LOAD,
      flags: 5,
      offset: 0,
      vaddr: CODE_VADDR,
      fileSize: elf.length,
      memorySize: elf.length,
      align: 0x10000,
    });
    expect(script).toEqual({
      type: PT_LOAD,
      flags: 6,
      offset: 0,
      vaddr: SCRIPT_BASE,
      fileSize: 0,
      memorySize: SCRIPT_CAPACITY,
      align: 0x10000,
    });
    expect(stack?.type).toBe(PT_GNU_STACK);
    expect(stack?.flags).toBe(6);
  });

  it('has the code at the entry point, 8-byte aligned', () => {
    expect(CODE_OFFSET % 8).toBe(0);
    expect(elf.subarray(CODE_OFFSET).equals(STUB_CODE[arch])).toBe(true);
  });

  it.skipIf(!readelfWorks)('reads cleanly with readelf', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sandlock-stub-elf-'));
    try {
      const path = join(dir, `stub-${arch}`);
      writeFileSync(path, elf);
      const result = spawnSync('readelf', ['-hlW', path], { encoding: 'utf8' });
      expect(result.status).toBe(0);
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(/Type:\s+EXEC/);
      expect(result.stdout).toMatch(/GNU_STACK.* RW /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
