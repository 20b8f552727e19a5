import { AARCH64_SYSCALLS } from './aarch64.generated.js';
import { X86_64_SYSCALLS } from './x86_64.generated.js';

export type Arch = 'x86_64' | 'aarch64';

export const ARCHES: readonly Arch[] = Object.freeze(['x86_64', 'aarch64']);

/**
 * `seccomp_data.arch` values (AUDIT_ARCH_* in <linux/audit.h>). A filter must check it before
 * trusting `nr`, since the same number means different calls on different ABIs. i386 is here so
 * tests can build foreign-ABI notifications.
 */
export const AUDIT_ARCH = Object.freeze({
  x86_64: 0xc000003e,
  aarch64: 0xc00000b7,
  i386: 0x40000003,
} as const);

/**
 * x32 syscalls enter the x86_64 kernel with this bit set in the number and AUDIT_ARCH_X86_64 as
 * their arch (arch/x86/include/uapi/asm/unistd.h), so an x86_64 filter must reject them
 * explicitly.
 */
export const X32_SYSCALL_BIT = 0x40000000;

const TABLES: Readonly<Record<Arch, Readonly<Record<string, number>>>> = {
  x86_64: X86_64_SYSCALLS,
  aarch64: AARCH64_SYSCALLS,
};

function tableFor(arch: Arch): Readonly<Record<string, number>> {
  const table = Object.hasOwn(TABLES, arch) ? TABLES[arch] : undefined;
  if (table === undefined) {
    throw new RangeError(`unknown architecture '${arch}'`);
  }
  return table;
}

/** Maps Node's `process.arch` to ours; throws on architectures Sandlock does not support. */
export function hostArch(nodeArch: string = process.arch): Arch {
  switch (nodeArch) {
    case 'x64':
      return 'x86_64';
    case 'arm64':
      return 'aarch64';
    default:
      throw new Error(
        `unsupported architecture '${nodeArch}': Sandlock supports x86_64 (x64) and aarch64 (arm64)`,
      );
  }
}

export function syscallNumberOrUndefined(
  name: string,
  arch: Arch = hostArch(),
): number | undefined {
  const table = tableFor(arch);
  // hasOwn keeps names such as 'constructor' from resolving through Object.prototype.
  return Object.hasOwn(table, name) ? table[name] : undefined;
}

export function syscallNumber(name: string, arch: Arch = hostArch()): number {
  const number = syscallNumberOrUndefined(name, arch);
  if (number === undefined) {
    throw new RangeError(`unknown syscall '${name}' on ${arch}`);
  }
  return number;
}

export function hasSyscall(name: string, arch: Arch = hostArch()): boolean {
  return syscallNumberOrUndefined(name, arch) !== undefined;
}

const namesByNumber = new Map<Arch, ReadonlyMap<number, string>>();

export function syscallName(nr: number, arch: Arch = hostArch()): string | undefined {
  let names = namesByNumber.get(arch);
  if (names === undefined) {
    names = new Map(Object.entries(tableFor(arch)).map(([name, number]) => [number, name]));
    namesByNumber.set(arch, names);
  }
  return names.get(nr);
}

const nameLists = new Map<Arch, readonly string[]>();

/** Every syscall name known on `arch`, ordered by number. */
export function syscallNames(arch: Arch = hostArch()): readonly string[] {
  let names = nameLists.get(arch);
  if (names === undefined) {
    const byNumber = Object.entries(tableFor(arch)).sort(([, a], [, b]) => a - b);
    names = Object.freeze(byNumber.map(([name]) => name));
    nameLists.set(arch, names);
  }
  return names;
}

export {
  type ArgKind,
  argumentIndex,
  argumentLayout,
  convertArg,
  isKnownSyscall,
  type KnownSyscall,
  namedArgs,
  type SyscallArgs,
} from './args.js';
export { byPathCall, PATH_CALLS, type PathCallKind } from './path-calls.js';
