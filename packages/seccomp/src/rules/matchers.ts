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

interface MatcherBase {
  arg: ArgIndex;
  width: ArgWidth;
}

/**
 * A predicate on one argument. Values and masks are taken at `width` bits; negative numbers are
 * two's complement at that width (so `-100` works for an `int` dirfd).
 */
export type ArgMatcher =
  /** `(arg & mask) == value`; without `mask`, plain equality. */
  | (MatcherBase & { op: 'eq'; value: ArgValue; mask?: ArgValue })
  /** `(arg & mask)` is one of `values`. */
  | (MatcherBase & { op: 'in'; values: readonly ArgValue[]; mask?: ArgValue })
  /** `(arg & mask) != 0`: any of the bits is set. */
  | (MatcherBase & { op: 'anyBits'; mask: ArgValue });

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
): ArgMatcher {
  return mask === undefined
    ? { op: 'eq', arg, width, value }
    : { op: 'eq', arg, width, value, mask };
}

export function argIn(
  arg: ArgIndex,
  width: ArgWidth,
  values: readonly ArgValue[],
  mask?: ArgValue,
): ArgMatcher {
  return mask === undefined
    ? { op: 'in', arg, width, values }
    : { op: 'in', arg, width, values, mask };
}

export function argAnyBits(arg: ArgIndex, width: ArgWidth, mask: ArgValue): ArgMatcher {
  return { op: 'anyBits', arg, width, mask };
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
 * (value bits outside the mask, an empty set, an empty `anyBits` mask): such a rule is a bug.
 */
export function normalizeMatcher(matcher: ArgMatcher): NormalizedMatcher {
  const { arg, width } = matcher;
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
