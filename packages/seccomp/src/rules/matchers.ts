import { type Arch, argumentLayout } from '@sandlock/sys';

/** Index of a syscall argument in `seccomp_data.args`. */
export type ArgIndex = 0 | 1 | 2 | 3 | 4 | 5;

/**
 * How many bits of the argument register the kernel uses. `seccomp_data.args[i]` is the raw
 * 64-bit register, but a syscall declared with an `int` or `unsigned int` parameter truncates it
 * (the SYSCALL_DEFINEx wrappers in include/linux/syscalls.h cast each register to the declared
 * type). A predicate on such an argument must look at the low 32 bits only: otherwise setting any
 * upper bit makes the value differ for the filter while the kernel sees the same call.
 */
export type ArgWidth = 32 | 64;

export type ArgValue = number | bigint;

/**
 * The argument a matcher reads: its index and width, or its name in the syscall's signature
 * (`argumentLayout` of @sandlock/sys, the names of the man page), which gives both: 32 bits for
 * an `int` or `unsigned int`, 64 otherwise. A name is resolved for the rule's syscall and
 * architecture when the rule set is compiled.
 */
type MatcherBase = { arg: ArgIndex; width: ArgWidth } | { arg: string; width?: ArgWidth };

/**
 * A predicate on one argument. Values and masks are taken at `width` bits; negative numbers are
 * two's complement at that width (so `-100` works for an `int` dirfd).
 */
export type ArgMatcher = MatcherBase & MatcherTest;

type MatcherTest =
  /** `(arg & mask) == value`; without `mask`, plain equality. */
  | { op: 'eq'; value: ArgValue; mask?: ArgValue }
  /** `(arg & mask)` is one of `values`. */
  | { op: 'in'; values: readonly ArgValue[]; mask?: ArgValue }
  /** `(arg & mask) != 0`: any of the bits is set. */
  | { op: 'anyBits'; mask: ArgValue };

/** Where a named argument is looked up: the rule's syscall, on the rule set's architecture. */
export interface MatcherSyscall {
  readonly syscall: string;
  readonly arch: Arch;
}

/** A matcher with every number as an unsigned bigint of its width and the mask filled in. */
export type NormalizedMatcher =
  | { op: 'eq'; arg: ArgIndex; width: ArgWidth; mask: bigint; value: bigint }
  | { op: 'in'; arg: ArgIndex; width: ArgWidth; mask: bigint; values: readonly bigint[] }
  | { op: 'anyBits'; arg: ArgIndex; width: ArgWidth; mask: bigint };

export function argEquals(
  arg: ArgIndex,
  width: ArgWidth,
  value: ArgValue,
  mask?: ArgValue,
): ArgMatcher;
/** By name: `argEquals('flags', O_PATH, O_PATH)`; the width is the argument's. */
export function argEquals(arg: string, value: ArgValue, mask?: ArgValue): ArgMatcher;
export function argEquals(
  arg: ArgIndex | string,
  ...rest: [ArgWidth, ArgValue, ArgValue?] | [ArgValue, ArgValue?]
): ArgMatcher {
  if (typeof arg === 'string') {
    const [value, mask] = rest as [ArgValue, ArgValue?];
    return mask === undefined ? { op: 'eq', arg, value } : { op: 'eq', arg, value, mask };
  }
  const [width, value, mask] = rest as [ArgWidth, ArgValue, ArgValue?];
  return mask === undefined
    ? { op: 'eq', arg, width, value }
    : { op: 'eq', arg, width, value, mask };
}

export function argIn(
  arg: ArgIndex,
  width: ArgWidth,
  values: readonly ArgValue[],
  mask?: ArgValue,
): ArgMatcher;
/** By name: `argIn('domain', [AF_INET, AF_INET6])`; the width is the argument's. */
export function argIn(arg: string, values: readonly ArgValue[], mask?: ArgValue): ArgMatcher;
export function argIn(
  arg: ArgIndex | string,
  ...rest: [ArgWidth, readonly ArgValue[], ArgValue?] | [readonly ArgValue[], ArgValue?]
): ArgMatcher {
  if (typeof arg === 'string') {
    const [values, mask] = rest as [readonly ArgValue[], ArgValue?];
    return mask === undefined ? { op: 'in', arg, values } : { op: 'in', arg, values, mask };
  }
  const [width, values, mask] = rest as [ArgWidth, readonly ArgValue[], ArgValue?];
  return mask === undefined
    ? { op: 'in', arg, width, values }
    : { op: 'in', arg, width, values, mask };
}

export function argAnyBits(arg: ArgIndex, width: ArgWidth, mask: ArgValue): ArgMatcher;
/** By name: `argAnyBits('flags', CLONE_NEWUSER)`; the width is the argument's. */
export function argAnyBits(arg: string, mask: ArgValue): ArgMatcher;
export function argAnyBits(
  arg: ArgIndex | string,
  ...rest: [ArgWidth, ArgValue] | [ArgValue]
): ArgMatcher {
  if (typeof arg === 'string') return { op: 'anyBits', arg, mask: rest[0] as ArgValue };
  const [width, mask] = rest as [ArgWidth, ArgValue];
  return { op: 'anyBits', arg, width, mask };
}

/**
 * The index and width of the argument `matcher` reads. A name is looked up in the signature of
 * `where.syscall` on `where.arch`; a width given with it must be the argument's.
 */
export function resolveArgument(
  matcher: Pick<ArgMatcher, 'arg' | 'width'>,
  where?: MatcherSyscall,
): { arg: ArgIndex; width: ArgWidth } {
  if (typeof matcher.arg !== 'string') {
    return { arg: matcher.arg, width: matcher.width as ArgWidth };
  }
  const name = matcher.arg;
  if (where === undefined) {
    throw new TypeError(
      `argument '${name}' is named: only a rule of a syscall (compileRuleSet) can resolve it`,
    );
  }
  const { syscall, arch } = where;
  const layout = argumentLayout(syscall, arch);
  if (layout === undefined) {
    throw new RangeError(
      `argument '${name}' of ${syscall}: ${syscall} has no argument names on ${arch}, give the index and width`,
    );
  }
  const index = layout.findIndex(([argName]) => argName === name);
  if (index < 0) {
    const names = layout.map(([argName]) => argName).join(', ') || 'none';
    throw new RangeError(
      `${syscall} has no argument '${name}' on ${arch} (its arguments: ${names})`,
    );
  }
  const kind = layout[index]![1];
  const width: ArgWidth = kind === 'word' ? 64 : 32;
  if (matcher.width !== undefined && matcher.width !== width) {
    throw new RangeError(
      `argument '${name}' of ${syscall} is ${kind === 'word' ? 'a 64-bit word' : `an ${kind}`}: width ${width}, not ${matcher.width}`,
    );
  }
  return { arg: index as ArgIndex, width };
}

function toWidth(value: ArgValue, width: ArgWidth, what: string): bigint {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new RangeError(`${what} ${value} is not a safe integer: pass a bigint`);
  }
  const big = BigInt(value);
  if (big < -(1n << BigInt(width - 1)) || big >= 1n << BigInt(width)) {
    throw new RangeError(`${what} 0x${big.toString(16)} does not fit in ${width} bits`);
  }
  return BigInt.asUintN(width, big);
}

/**
 * Checks a matcher and brings it to {@link NormalizedMatcher} form. Refuses what can never match
 * (value bits outside the mask, an empty set, an empty `anyBits` mask): such a rule is a bug. A
 * named argument needs `where`, the rule's syscall and architecture.
 */
export function normalizeMatcher(matcher: ArgMatcher, where?: MatcherSyscall): NormalizedMatcher {
  const { arg, width } = resolveArgument(matcher, where);
  if (!Number.isInteger(arg) || arg < 0 || arg > 5)
    throw new RangeError(`argument index ${arg} is not 0..5`);
  if (width !== 32 && width !== 64)
    throw new RangeError(`argument width ${String(width)} is not 32 or 64`);
  const full = (1n << BigInt(width)) - 1n;
  const mask =
    'mask' in matcher && matcher.mask !== undefined ? toWidth(matcher.mask, width, 'mask') : full;
  const checkInMask = (value: bigint) => {
    if ((value & ~mask) !== 0n) {
      throw new RangeError(
        `value 0x${value.toString(16)} has bits outside the mask 0x${mask.toString(16)}: it never matches`,
      );
    }
    return value;
  };
  switch (matcher.op) {
    case 'eq':
      return {
        op: 'eq',
        arg,
        width,
        mask,
        value: checkInMask(toWidth(matcher.value, width, 'value')),
      };
    case 'in': {
      if (matcher.values.length === 0) throw new RangeError('an empty set never matches');
      const values = [
        ...new Set(matcher.values.map((v) => checkInMask(toWidth(v, width, 'value')))),
      ];
      return { op: 'in', arg, width, mask, values };
    }
    case 'anyBits':
      if (mask === 0n) throw new RangeError('anyBits with an empty mask never matches');
      return { op: 'anyBits', arg, width, mask };
    default:
      throw new TypeError(`unknown matcher op '${(matcher as { op: string }).op}'`);
  }
}
