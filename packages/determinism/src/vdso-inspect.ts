// What a process's vDSO offers, for `sandlock check`.

import { closeSync, openSync, readSync } from 'node:fs';
import { hostArch } from '@sandlock/sys';
import { VDSO_MAX_SIZE, vdsoImageSize, vdsoSymbols } from './vdso-elf.js';
import { vdsoBase } from './vdso-patch.js';
import { VDSO_SYMBOLS } from './vdso-trampolines.js';

export interface VdsoFunctions {
  /** The functions of the vDSO the time and random modules patch, by symbol name. */
  readonly symbols: readonly string[];
  /** It has clock_gettime: programs read the wall clock without a syscall. */
  readonly clock: boolean;
  /** It has getrandom (Linux 6.11+). */
  readonly getrandom: boolean;
}

/** `pid`'s vDSO image, read through /proc/PID/mem; null when it has none. */
export function readVdsoImage(pid: number): Buffer | null {
  const base = vdsoBase(pid);
  if (base === null) return null;
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    const read = (length: number) => {
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, Number(base));
      return buffer;
    };
    return read(Math.min(vdsoImageSize(read(64)), VDSO_MAX_SIZE));
  } finally {
    closeSync(fd);
  }
}

/** The patchable functions of `pid`'s vDSO; null when it has none. Throws when /proc/PID/mem cannot be read. */
export function vdsoFunctions(pid: number): VdsoFunctions | null {
  const image = readVdsoImage(pid);
  if (image === null) return null;
  const symbols = vdsoSymbols(image);
  const names = VDSO_SYMBOLS[hostArch()];
  const has = (kind: keyof typeof names) => (names[kind] ?? []).some((name) => symbols.has(name));
  return {
    symbols: Object.values(names)
      .flat()
      .filter((name) => symbols.has(name)),
    clock: has('clock_gettime'),
    getrandom: has('getrandom'),
  };
}
