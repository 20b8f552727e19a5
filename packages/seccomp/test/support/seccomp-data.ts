import { type Arch, AUDIT_ARCH, type SeccompData, syscallNumber } from '@sandlock/sys';

type Args = readonly (number | bigint)[];

/** seccomp_data for `name` on `arch`, arguments as given (missing ones are 0). */
export function call(arch: Arch, name: string, args: Args = []): SeccompData {
  return raw(AUDIT_ARCH[arch], syscallNumber(name, arch), args);
}

export function raw(arch: number, nr: number, args: Args = []): SeccompData {
  const words = [0, 1, 2, 3, 4, 5].map((i) => BigInt.asUintN(64, BigInt(args[i] ?? 0)));
  return {
    nr,
    arch,
    instructionPointer: 0x401000n,
    args: words as unknown as SeccompData['args'],
  };
}
