// The dynamic symbols of a vDSO image. The kernel maps the whole linked
// shared object (section headers included: arch/x86/entry/vdso/vdso2c.h,
// arch/arm64/kernel/vdso.c map the full image), so the section header table is
// there to read; offsets in the file are offsets from the mapping's start.

import { createHash } from 'node:crypto';

/** A function of the vDSO: `offset` from the start of the mapping, `size` in bytes. */
export interface VdsoSymbol {
  readonly offset: number;
  readonly size: number;
}

export type VdsoSymbols = ReadonlyMap<string, VdsoSymbol>;

const ELF_MAGIC = 0x464c457f; // "\x7fELF" read as a u32 LE
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const PT_LOAD = 1;
const SHT_DYNSYM = 11;
const SHT_NOBITS = 8;
const STT_FUNC = 2;
const SHN_UNDEF = 0;
const EHDR_SIZE = 64;
const SYM_SIZE = 24;
/** The vDSO is two or three pages; refuse anything much bigger as not a vDSO. */
export const VDSO_MAX_SIZE = 64 * 1024;

export class VdsoFormatError extends Error {
  override readonly name = 'VdsoFormatError';
}

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new VdsoFormatError(`sandlock: the vDSO image is malformed: ${what}`);
}

/**
 * How many bytes of the mapping hold the ELF file: the end of the section
 * header table, which the linker puts last. `header` is the first 64 bytes.
 */
export function vdsoImageSize(header: Buffer): number {
  check(header.length >= EHDR_SIZE, 'short ELF header');
  check(header.readUInt32LE(0) === ELF_MAGIC, 'no ELF magic');
  check(header[4] === ELFCLASS64 && header[5] === ELFDATA2LSB, 'not ELF64 little-endian');
  const shoff = Number(header.readBigUInt64LE(0x28));
  const shentsize = header.readUInt16LE(0x3a);
  const shnum = header.readUInt16LE(0x3c);
  const end = shoff + shentsize * shnum;
  check(shnum > 0 && shentsize >= 64 && end <= VDSO_MAX_SIZE, `section headers end at ${end}`);
  return end;
}

/**
 * Where the ELF file's last byte ends: the furthest of the section header
 * table, any section's data (SHT_NOBITS has none) and any segment's file part.
 * The rest of the last page is padding. `image` must hold at least
 * {@link vdsoImageSize} bytes; a section or segment past its end gives
 * `image.length` (no padding known to be free).
 */
export function vdsoFileEnd(image: Buffer): number {
  let end = vdsoImageSize(image);
  const phoff = Number(image.readBigUInt64LE(0x20));
  const phentsize = image.readUInt16LE(0x36);
  const phnum = image.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 56 > image.length) return image.length;
    end = Math.max(end, Number(image.readBigUInt64LE(at + 8) + image.readBigUInt64LE(at + 0x20)));
  }
  const shoff = Number(image.readBigUInt64LE(0x28));
  const shentsize = image.readUInt16LE(0x3a);
  const shnum = image.readUInt16LE(0x3c);
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize;
    if (image.readUInt32LE(at + 4) === SHT_NOBITS) continue;
    end = Math.max(
      end,
      Number(image.readBigUInt64LE(at + 0x18) + image.readBigUInt64LE(at + 0x20)),
    );
  }
  return Math.min(end, image.length);
}

/** Function symbols of a vDSO image by name (aliases included), defined ones only. */
export function parseVdsoSymbols(image: Buffer): Map<string, VdsoSymbol> {
  check(image.length >= vdsoImageSize(image), 'image shorter than its section headers');
  const phoff = Number(image.readBigUInt64LE(0x20));
  const phentsize = image.readUInt16LE(0x36);
  const phnum = image.readUInt16LE(0x38);
  const shoff = Number(image.readBigUInt64LE(0x28));
  const shentsize = image.readUInt16LE(0x3a);
  const shnum = image.readUInt16LE(0x3c);
  // Symbol values are link-time addresses; the segment at file offset 0 gives their base
  // (0 for the vDSOs of current kernels, but that is the linker script's choice).
  let base: number | undefined;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    check(at + 56 <= image.length, 'program header out of range');
    if (image.readUInt32LE(at) === PT_LOAD && image.readBigUInt64LE(at + 8) === 0n) {
      base = Number(image.readBigUInt64LE(at + 0x10));
      break;
    }
  }
  check(base !== undefined, 'no PT_LOAD segment at offset 0');
  const section = (index: number) => {
    check(index < shnum, `section ${index} out of range`);
    const at = shoff + index * shentsize;
    const offset = Number(image.readBigUInt64LE(at + 0x18));
    const size = Number(image.readBigUInt64LE(at + 0x20));
    check(offset + size <= image.length, `section ${index} out of the image`);
    return {
      type: image.readUInt32LE(at + 4),
      offset,
      size,
      link: image.readUInt32LE(at + 0x28),
    };
  };
  const symbols = new Map<string, VdsoSymbol>();
  for (let i = 0; i < shnum; i++) {
    const dynsym = section(i);
    if (dynsym.type !== SHT_DYNSYM) continue;
    const strtab = section(dynsym.link);
    for (let at = dynsym.offset; at + SYM_SIZE <= dynsym.offset + dynsym.size; at += SYM_SIZE) {
      const nameOffset = image.readUInt32LE(at);
      const type = image[at + 4]! & 0xf;
      const shndx = image.readUInt16LE(at + 6);
      if (type !== STT_FUNC || shndx === SHN_UNDEF) continue;
      check(nameOffset < strtab.size, 'symbol name out of the string table');
      const nameStart = strtab.offset + nameOffset;
      const nameEnd = image.indexOf(0, nameStart);
      check(nameEnd >= 0 && nameEnd < strtab.offset + strtab.size, 'unterminated symbol name');
      const name = image.toString('latin1', nameStart, nameEnd);
      const offset = Number(image.readBigUInt64LE(at + 8)) - base;
      const size = Number(image.readBigUInt64LE(at + 16));
      check(offset >= 0 && offset + size <= image.length, `symbol ${name} out of the image`);
      symbols.set(name, { offset, size });
    }
  }
  return symbols;
}

// Every process of a machine maps the same vDSO: parse each image once. A patched image
// differs from the pristine one, so a session has two entries; a few sessions with
// different offsets a few more.
const cache = new Map<string, VdsoSymbols>();
const CACHE_KEEP = 16;

/** {@link parseVdsoSymbols}, memoized by the image's content. */
export function vdsoSymbols(image: Buffer): VdsoSymbols {
  const key = createHash('sha256').update(image).digest('hex');
  let symbols = cache.get(key);
  if (symbols === undefined) {
    symbols = parseVdsoSymbols(image);
    if (cache.size >= CACHE_KEEP) cache.delete(cache.keys().next().value!);
    cache.set(key, symbols);
  }
  return symbols;
}
