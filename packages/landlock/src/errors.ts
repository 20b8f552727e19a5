import type { Feature } from './rights.js';

/** Base class of the errors this package throws on purpose. */
export class LandlockError extends Error {
  override readonly name: string = 'LandlockError';
}

/** Landlock is not usable on this kernel (not built in, or disabled at boot). */
export class LandlockUnavailableError extends LandlockError {
  override readonly name = 'LandlockUnavailableError';

  constructor(readonly reason: string) {
    super(`Landlock is not available: ${reason}`);
  }
}

export interface MissingFeature {
  feature: Feature;
  /** The ABI version that introduced it. */
  needsAbi: number;
}

/** A required right, scope or flag is newer than the kernel's Landlock ABI. */
export class LandlockAbiError extends LandlockError {
  override readonly name = 'LandlockAbiError';

  constructor(
    readonly missing: readonly MissingFeature[],
    readonly abi: number,
  ) {
    super(abiMessage(missing, abi));
  }
}

function abiMessage(missing: readonly MissingFeature[], abi: number): string {
  const [first] = missing;
  if (missing.length === 1 && first) {
    return `Landlock right '${first.feature}' needs ABI ${first.needsAbi}; this kernel has ABI ${abi}`;
  }
  const list = missing.map((entry) => `'${entry.feature}' (ABI ${entry.needsAbi})`).join(', ');
  return `Landlock rights ${list} are newer than this kernel's ABI ${abi}`;
}

/** A rule's path could not be used: it does not exist, or cannot be opened. */
export class LandlockPathError extends LandlockError {
  override readonly name = 'LandlockPathError';

  constructor(
    readonly path: string,
    /** The errno symbol, e.g. 'ENOENT'. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The builder was given rules that contradict each other or the ruleset's handled rights. */
export class LandlockRuleError extends LandlockError {
  override readonly name = 'LandlockRuleError';
}
