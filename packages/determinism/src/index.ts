export { RANDOM_MODULE, TIME_MODULE } from './module-url.js';
export { GETRANDOM_MAX, RANDOM_SYSCALLS, type RandomPolicy, randomSeedOf } from './random.js';
export { Keystream, streamKey } from './random-stream.js';
export { TIME_HOOK_SYSCALLS, TIME_SYSCALLS, type TimePolicy } from './time.js';
export { offsetSeconds as timeOffsetSeconds } from './time-clock.js';
export { type VdsoFunctions, vdsoFunctions } from './vdso-inspect.js';
export { type PatchOutcome, patchVdso, type VdsoPatchOptions, vdsoPatched } from './vdso-patch.js';
