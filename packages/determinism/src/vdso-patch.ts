// Writes the trampolines of ./vdso-trampolines.ts over a process's vDSO.
//
// The vDSO text is mapped read-only (and shared by every process). A write
// through /proc/<pid>/mem still works: mem_rw() in fs/proc/base.c passes
// FOLL_FORCE to access_remote_vm(), which breaks copy-on-write and gives the
// process a private, patched copy of the page, as a debugger's breakpoint does.
// process_vm_writev(2) does not force and fails with EFAULT on such a page.
// A fork shares or copies that private page (the child inherits the patch);
// an exec maps a fresh vDSO, which must be patched again. On aarch64 the
// kernel keeps the instruction cache coherent for such writes
// (copy_to_user_page() in arch/arm64/mm/flush.c syncs executable pages).

import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { type Arch, AT_SYSINFO_EHDR } from '@sandlock/sys';
import { planClockGettimeDetour } from './vdso-detour.js';
import {
  VDSO_MAX_SIZE,
  type VdsoSymbols,
  vdsoFileEnd,
  vdsoImageSize,
  vdsoSymbols,
} from './vdso-elf.js';
import { type TrampolineKind, trampolineCode, VDSO_SYMBOLS } from './vdso-trampolines.js';

/** Mappings are made of whole pages: the vDSO's last page is mapped to its end. */
const PAGE = 4096;

export interface VdsoPatchOptions {
  readonly arch: Arch;
  /** Shift the realtime clocks by this many seconds; null: leave the time functions. */
  readonly offsetSeconds: bigint | null;
  /** Make the vDSO's getrandom answer -ENOSYS (the random module answers the syscall). */
  readonly getrandom: boolean;
}

/** One write: `code` at `offset` from the vDSO's start, over `symbol`. */
export interface PatchWrite {
  readonly kind: TrampolineKind | 'clockGettimeDetour';
  readonly symbol: string;
  readonly offset: number;
  readonly code: Buffer;
}

export class VdsoPatchError extends Error {
  override readonly name = 'VdsoPatchError';
}

/** The image as read from a process, for the detour (./vdso-detour.ts). */
export interface VdsoLayout {
  /** The vDSO from its start to the end of the page that holds the end of its ELF file. */
  readonly image: Buffer;
  /** Where the ELF file ends. */
  readonly imageEnd: number;
  /** Where the vDSO is mapped. */
  readonly base: bigint;
}

/**
 * The writes that patch an image with `symbols`. A function the vDSO does not
 * have needs nothing (the libc then makes the syscall, which the supervisor
 * answers); a trampoline that does not fit its function is an error. With a
 * `layout`, x86_64 clock_gettime is detoured when it can be (./vdso-detour.ts),
 * and gettimeofday and time then call it; otherwise the three become their
 * syscalls, which the filter notifies for the realtime clocks.
 */
export function planVdsoPatch(
  symbols: VdsoSymbols,
  options: VdsoPatchOptions,
  layout?: VdsoLayout,
): PatchWrite[] {
  const kinds: ('clock_gettime' | 'gettimeofday' | 'time' | 'getrandom')[] = [];
  if (options.offsetSeconds !== null) kinds.push('clock_gettime', 'gettimeofday', 'time');
  if (options.getrandom) kinds.push('getrandom');
  const writes = new Map<number, PatchWrite>();
  // One detour block fits the padding: a second clock_gettime at another address (none today)
  // gets the syscall. gettimeofday and time call the detoured one.
  let detoured: number | null = null;
  for (const kind of kinds) {
    for (const symbol of VDSO_SYMBOLS[options.arch][kind] ?? []) {
      const found = symbols.get(symbol);
      if (found === undefined || writes.has(found.offset)) continue;
      if (kind === 'clock_gettime' && options.arch === 'x86_64' && layout && detoured === null) {
        const detour = planClockGettimeDetour(
          layout.image,
          layout.imageEnd,
          layout.base,
          found,
          options.offsetSeconds ?? 0n,
        );
        if (detour !== null) {
          for (const write of detour) writes.set(write.offset, write);
          detoured = found.offset;
          continue;
        }
      }
      const chosen = trampolineFor(kind, options.arch, detoured, found.size);
      const call = detoured === null ? undefined : { from: found.offset, to: detoured };
      const code = trampolineCode(options.arch, chosen, call);
      if (code.length > found.size) {
        throw new VdsoPatchError(
          `sandlock: the vDSO's ${symbol} has ${found.size} bytes, its ${chosen} trampoline needs ${code.length}`,
        );
      }
      writes.set(found.offset, { kind: chosen, symbol, offset: found.offset, code });
    }
  }
  return [...writes.values()];
}

/** Which trampoline replaces a `kind` function of `size` bytes; `detoured`: clock_gettime's offset when detoured. */
function trampolineFor(
  kind: 'clock_gettime' | 'gettimeofday' | 'time' | 'getrandom',
  arch: Arch,
  detoured: number | null,
  size: number,
): TrampolineKind {
  if (kind === 'getrandom') return 'getrandom';
  if (kind === 'clock_gettime') return 'clockGettimeSyscall';
  if (kind === 'gettimeofday')
    return detoured === null ? 'gettimeofdaySyscall' : 'gettimeofdayViaClock';
  // x86_64 time(): over the detour when it fits (34 bytes), else the syscall (8).
  const via =
    detoured !== null && trampolineCode(arch, 'timeViaClock', { from: 0, to: 0 }).length <= size;
  return via ? 'timeViaClock' : 'timeSyscall';
}

// The auxiliary vector is a few hundred bytes (fs/binfmt_elf.c, create_elf_tables(): under 64
// entries of 16). One buffer per thread (each worker has its own module instance), used
// synchronously; readFileSync costs several times more on a size-less /proc file.
const auxvBuffer = Buffer.alloc(64 * 16);

function readAuxv(pid: number): Buffer {
  const fd = openSync(`/proc/${pid}/auxv`, 'r');
  try {
    let length = 0;
    for (;;) {
      const got = readSync(fd, auxvBuffer, length, auxvBuffer.length - length, null);
      length += got;
      if (got === 0 || length === auxvBuffer.length) break;
    }
    return auxvBuffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/** The vDSO's address in `pid` (AT_SYSINFO_EHDR of /proc/<pid>/auxv); null without a vDSO. */
export function vdsoBase(pid: number): bigint | null {
  const auxv = readAuxv(pid);
  for (let at = 0; at + 16 <= auxv.length; at += 16) {
    const type = auxv.readBigUInt64LE(at);
    if (type === 0n) break; // AT_NULL
    if (type === BigInt(AT_SYSINFO_EHDR)) {
      const base = auxv.readBigUInt64LE(at + 8);
      return base === 0n ? null : base;
    }
  }
  return null;
}

function position(base: bigint, offset: number): number {
  const at = base + BigInt(offset);
  // fs.readSync/writeSync take the file position as a safe integer.
  if (at > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new VdsoPatchError(`sandlock: vDSO address 0x${at.toString(16)} is out of reach`);
  }
  return Number(at);
}

function readExact(fd: number, base: bigint, offset: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  const got = readSync(fd, buffer, 0, length, position(base, offset));
  if (got !== length) {
    throw new VdsoPatchError(`sandlock: read ${got} of ${length} bytes of the vDSO`);
  }
  return buffer;
}

/** The vDSO up to the end of its last page: the ELF file, then the padding the detour uses. */
function readLayout(fd: number, base: bigint): VdsoLayout {
  const headersEnd = vdsoImageSize(readExact(fd, base, 0, 64));
  const pageEnd = Math.min(Math.ceil(headersEnd / PAGE) * PAGE, VDSO_MAX_SIZE);
  const image = readExact(fd, base, 0, pageEnd);
  return { image, imageEnd: vdsoFileEnd(image), base };
}

/** `pid`'s vDSO up to the end of its last page (for tests and checks); null without a vDSO. */
export function vdsoLayout(pid: number): VdsoLayout | null {
  const base = vdsoBase(pid);
  if (base === null) return null;
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    return readLayout(fd, base);
  } finally {
    closeSync(fd);
  }
}

export type PatchOutcome = 'patched' | 'unchanged' | 'no-vdso';

/** A process's vDSO once patched: where it is mapped, and how it was patched. */
export interface PatchedVdso {
  readonly outcome: 'patched' | 'unchanged';
  /** Where the vDSO is mapped. */
  readonly base: bigint;
  /** Its length from there, in whole pages. */
  readonly length: number;
  /**
   * clock_gettime is detoured (./vdso-detour.ts): the kernel's own code runs
   * under the detour, and where it falls back to the syscall, that syscall
   * comes from inside the vDSO and the detour shifts its result.
   */
  readonly detoured: boolean;
  /** What the patch wrote (or found written): {@link stillPatched} reads them back. */
  readonly writes: readonly PatchWrite[];
}

/**
 * Patches the vDSO of process `pid` (any of its thread ids) for `options`;
 * outcome `unchanged` when it already is (a fork of a patched process, or a
 * second call); null when the process has no vDSO. `opened` runs once
 * /proc/<pid>/mem is open, before any byte is read or written: the place to
 * check that `pid` is still the process meant (the open pinned its address
 * space). Throws a {@link VdsoPatchError} (or the error of the failed
 * open/read/write) when the process cannot be patched.
 */
export function patchVdsoImage(
  pid: number,
  options: VdsoPatchOptions,
  opened?: () => void,
): PatchedVdso | null {
  const base = vdsoBase(pid);
  if (base === null) return null;
  const fd = openSync(`/proc/${pid}/mem`, 'r+');
  try {
    opened?.();
    const layout = readLayout(fd, base);
    const { image } = layout;
    const writes = planVdsoPatch(vdsoSymbols(image), options, layout);
    const patched = (outcome: PatchedVdso['outcome']): PatchedVdso => ({
      outcome,
      base,
      length: image.length,
      detoured: writes.some((write) => write.kind === 'clockGettimeDetour'),
      writes,
    });
    const done = (bytes: Buffer, write: PatchWrite) =>
      bytes.subarray(write.offset, write.offset + write.code.length).equals(write.code);
    if (writes.every((write) => done(image, write))) return patched('unchanged');
    for (const write of writes) {
      const wrote = writeSync(fd, write.code, 0, write.code.length, position(base, write.offset));
      if (wrote !== write.code.length) {
        throw new VdsoPatchError(
          `sandlock: wrote ${wrote} of ${write.code.length} bytes over ${write.symbol}`,
        );
      }
    }
    const after = readExact(fd, base, 0, image.length);
    const failed = writes.find((write) => !done(after, write));
    if (failed !== undefined) {
      throw new VdsoPatchError(`sandlock: ${failed.symbol} reads back unpatched`);
    }
    return patched('patched');
  } finally {
    closeSync(fd);
  }
}

const readBack = Buffer.alloc(VDSO_MAX_SIZE);

/**
 * Whether the vDSO of `pid` is still `image`, patched: its writes read back
 * from where they were made, in one read. An exec maps a new vDSO, elsewhere
 * or (without address randomization) at the same place: either way not these
 * bytes. Cheaper than {@link patchVdsoImage} (no auxv, no parse, no plan);
 * false when anything cannot be read. `opened` as there.
 */
export function stillPatched(pid: number, image: PatchedVdso, opened?: () => void): boolean {
  const { writes } = image;
  if (writes.length === 0) return true;
  const from = Math.min(...writes.map((write) => write.offset));
  const to = Math.max(...writes.map((write) => write.offset + write.code.length));
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/mem`, 'r');
  } catch {
    return false;
  }
  try {
    opened?.();
    let got: number;
    try {
      got = readSync(fd, readBack, 0, to - from, position(image.base, from));
    } catch {
      return false; // EIO: nothing mapped there any more
    }
    return (
      got === to - from &&
      writes.every((write) =>
        readBack
          .subarray(write.offset - from, write.offset - from + write.code.length)
          .equals(write.code),
      )
    );
  } finally {
    closeSync(fd);
  }
}

/** {@link patchVdsoImage}, as its outcome: `no-vdso` when the process has none. */
export function patchVdso(
  pid: number,
  options: VdsoPatchOptions,
  opened?: () => void,
): PatchOutcome {
  return patchVdsoImage(pid, options, opened)?.outcome ?? 'no-vdso';
}

/** Whether the vDSO of `pid` holds the trampolines of `options` (for tests and checks). */
export function vdsoPatched(pid: number, options: VdsoPatchOptions): boolean {
  const base = vdsoBase(pid);
  if (base === null) return false;
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    const layout = readLayout(fd, base);
    const { image } = layout;
    const writes = planVdsoPatch(vdsoSymbols(image), options, layout);
    return (
      writes.length > 0 &&
      writes.every((write) =>
        image.subarray(write.offset, write.offset + write.code.length).equals(write.code),
      )
    );
  } finally {
    closeSync(fd);
  }
}
