import {
  ERRNO,
  errnoMessage,
  errnoName,
  LANDLOCK_CREATE_RULESET_ERRATA,
  LANDLOCK_CREATE_RULESET_VERSION,
  SysError,
  trySyscall,
} from '@sandlock/sys';

export type LandlockSupport =
  | {
      available: true;
      /** The highest ABI version the kernel supports (1 = Linux 5.13). */
      abi: number;
      /** Bit mask of fixed Landlock errata (security/landlock/errata/*.h); 0 when the kernel cannot tell. */
      errata: number;
    }
  | {
      available: false;
      abi: 0;
      errata: 0;
      /** Why, e.g. "ENOSYS (Function not implemented): the kernel has no Landlock". */
      reason: string;
    };

const { ENOSYS, EOPNOTSUPP, EINVAL } = ERRNO;

/** Asks the kernel which Landlock ABI it offers. */
export function detectLandlock(): LandlockSupport {
  // landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) returns the ABI
  // version instead of a ruleset (Documentation/userspace-api/landlock.rst).
  const abi = trySyscall('landlock_create_ruleset', null, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi === -ENOSYS || abi === -EOPNOTSUPP) {
    const why =
      abi === -ENOSYS
        ? 'the kernel was built without Landlock'
        : 'Landlock is built in but not enabled at boot (see the lsm= kernel parameter)';
    return { available: false, abi: 0, errata: 0, reason: `${describe(-abi)}: ${why}` };
  }
  if (abi < 0) throw new SysError('landlock_create_ruleset', -abi, '(ABI version query)');
  // Kernels older than the errata query (Linux 6.15) refuse the flag with EINVAL.
  const errata = trySyscall('landlock_create_ruleset', null, 0, LANDLOCK_CREATE_RULESET_ERRATA);
  if (errata < 0 && errata !== -EINVAL) {
    throw new SysError('landlock_create_ruleset', -errata, '(errata query)');
  }
  return { available: true, abi, errata: Math.max(errata, 0) };
}

/**
 * What `real` would look like on a kernel with only ABI `abi` (for tests of
 * older kernels on a newer one). 0 simulates a kernel without Landlock.
 */
export function simulateAbi(real: LandlockSupport, abi: number): LandlockSupport {
  if (abi > real.abi) {
    throw new RangeError(`Landlock ABI override ${abi} is above this kernel's ABI ${real.abi}`);
  }
  if (abi === 0) {
    if (!real.available) return real;
    return { available: false, abi: 0, errata: 0, reason: 'ABI override 0 (simulated for tests)' };
  }
  return { available: true, abi, errata: real.errata };
}

function describe(errno: number): string {
  return `${errnoName(errno)} (${errnoMessage(errno)})`;
}
