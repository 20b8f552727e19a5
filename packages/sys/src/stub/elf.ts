import type { Arch } from '../syscalls/index.js';
import { STUB_CODE } from './code.js';

/** Where the code segment (ELF header, program headers, code) is loaded. */
export const CODE_VADDR = 0x400000;
/** Where the launch script is read to: a zero-filled RW segment of SCRIPT_CAPACITY bytes. */
export const SCRIPT_BASE = 0x10000000;
/** Size of the script segment, the largest script the stub accepts (8 MiB). */
export const SCRIPT_CAPACITY = 8 * 1024 * 1024;
/**
 * Segment alignment: 64 KiB, so that both segments load on kernels with 4K,
 * 16K or 64K pages (arm64 may use any of them).
 */
export const SEGMENT_ALIGN = 0x10000;

// <elf.h> / the System V gABI, ELF-64 object file format.
const ELF_HEADER_SIZE = 64;
const PROGRAM_HEADER_SIZE = 56;
const PROGRAM_HEADER_COUNT = 3;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EV_CURRENT = 1;
const ELFOSABI_NONE = 0;
const ET_EXEC = 2;
const PT_LOAD = 1;
const PT_GNU_STACK = 0x6474e551;
const PF_X = 1;
const PF_W = 2;
const PF_R = 4;
const MACHINE: Record<Arch, number> = { x86_64: 62 /* EM_X86_64 */, aarch64: 183 /* EM_AARCH64 */ };

/**
 * File offset (and offset from CODE_VADDR) of the first code byte, the entry
 * point. 8-aligned: the aarch64 code keeps an 8-byte literal at an 8-aligned
 * offset of its own.
 */
export const CODE_OFFSET = align(ELF_HEADER_SIZE + PROGRAM_HEADER_COUNT * PROGRAM_HEADER_SIZE, 8);

function align(value: number, to: number): number {
  return Math.ceil(value / to) * to;
}

interface ProgramHeader {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  fileSize: number;
  memorySize: number;
  align: number;
}

function writeProgramHeader(elf: Buffer, at: number, header: ProgramHeader): void {
  elf.writeUInt32LE(header.type, at);
  elf.writeUInt32LE(header.flags, at + 4);
  elf.writeBigUInt64LE(BigInt(header.offset), at + 8);
  elf.writeBigUInt64LE(BigInt(header.vaddr), at + 16); // p_vaddr
  elf.writeBigUInt64LE(BigInt(header.vaddr), at + 24); // p_paddr, unused
  elf.writeBigUInt64LE(BigInt(header.fileSize), at + 32);
  elf.writeBigUInt64LE(BigInt(header.memorySize), at + 40);
  elf.writeBigUInt64LE(BigInt(header.align), at + 48);
}

/**
 * The exec stub for `arch` as a static, non-PIE ELF64 executable: one R+X
 * PT_LOAD at CODE_VADDR covering the headers and the code, one RW PT_LOAD at
 * SCRIPT_BASE with no file bytes (the kernel maps it zero-filled, like .bss),
 * and PT_GNU_STACK asking for a non-executable stack. No sections.
 */
export function buildStubElf(arch: Arch): Buffer {
  const code = STUB_CODE[arch];
  const elf = Buffer.alloc(CODE_OFFSET + code.length);

  // e_ident
  elf.write('\x7fELF', 0, 'latin1');
  elf[4] = ELFCLASS64;
  elf[5] = ELFDATA2LSB;
  elf[6] = EV_CURRENT;
  elf[7] = ELFOSABI_NONE;
  // The rest of e_ident (ABI version, padding) stays zero.
  elf.writeUInt16LE(ET_EXEC, 16);
  elf.writeUInt16LE(MACHINE[arch], 18);
  elf.writeUInt32LE(EV_CURRENT, 20);
  elf.writeBigUInt64LE(BigInt(CODE_VADDR + CODE_OFFSET), 24); // e_entry
  elf.writeBigUInt64LE(BigInt(ELF_HEADER_SIZE), 32); // e_phoff
  elf.writeBigUInt64LE(0n, 40); // e_shoff: no section headers
  elf.writeUInt32LE(0, 48); // e_flags
  elf.writeUInt16LE(ELF_HEADER_SIZE, 52); // e_ehsize
  elf.writeUInt16LE(PROGRAM_HEADER_SIZE, 54); // e_phentsize
  elf.writeUInt16LE(PROGRAM_HEADER_COUNT, 56); // e_phnum
  elf.writeUInt16LE(0, 58); // e_shentsize
  elf.writeUInt16LE(0, 60); // e_shnum
  elf.writeUInt16LE(0, 62); // e_shstrndx

  writeProgramHeader(elf, ELF_HEADER_SIZE, {
    type: PT_LOAD,
    flags: PF_R | PF_X,
    offset: 0,
    vaddr: CODE_VADDR,
    fileSize: elf.length,
    memorySize: elf.length,
    align: SEGMENT_ALIGN,
  });
  // p_filesz 0: binfmt_elf maps no file pages and zero-fills the whole memsz
  // (fs/binfmt_elf.c); p_offset 0 keeps offset == vaddr modulo the alignment.
  writeProgramHeader(elf, ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE, {
    type: PT_LOAD,
    flags: PF_R | PF_W,
    offset: 0,
    vaddr: SCRIPT_BASE,
    fileSize: 0,
    memorySize: SCRIPT_CAPACITY,
    align: SEGMENT_ALIGN,
  });
  // Without PT_GNU_STACK the kernel may make the stack executable
  // (elf_read_implies_exec(), arch/x86/include/asm/elf.h).
  writeProgramHeader(elf, ELF_HEADER_SIZE + 2 * PROGRAM_HEADER_SIZE, {
    type: PT_GNU_STACK,
    flags: PF_R | PF_W,
    offset: 0,
    vaddr: 0,
    fileSize: 0,
    memorySize: 0,
    align: 16,
  });

  elf.set(code, CODE_OFFSET);
  return elf;
}
