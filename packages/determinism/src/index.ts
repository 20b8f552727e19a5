import { type ModuleRef, moduleBeside } from '@sandlock/dispatch/module';

export { GETRANDOM_MAX, RANDOM_SYSCALLS } from './random.js';
export { Keystream, streamKey } from './random-stream.js';
export { TIME_HOOK_SYSCALLS, TIME_SYSCALLS } from './time.js';
export { offsetSeconds as timeOffsetSeconds } from './time-clock.js';
export { type VdsoFunctions, vdsoFunctions } from './vdso-inspect.js';
export { type PatchOutcome, patchVdso, type VdsoPatchOptions, vdsoPatched } from './vdso-patch.js';

// The handler modules, for `Supervisor.start({ modules: [{ module: RANDOM_MODULE },
// { module: TIME_MODULE }] })` of @sandlock/dispatch: dist/<name>.js beside this
// file when built, src/<name>.ts when run from the sources (vitest).

/** The random module: getrandom and opens of /dev/urandom, /dev/random; on with `randomSeed`. */
export const RANDOM_MODULE: URL = moduleBeside(import.meta.url, 'random');

/** The time module: shifted realtime clocks (vDSO and syscalls) and timers; patches the vDSO for `timeStart` and `randomSeed`. */
export const TIME_MODULE: URL = moduleBeside(import.meta.url, 'time');

/** This package's handler modules, for a supervisor's built-in modules. */
export const DETERMINISM_MODULES: readonly ModuleRef[] = [
  { module: TIME_MODULE, load: () => import('./time.js') },
  { module: RANDOM_MODULE, load: () => import('./random.js') },
];
