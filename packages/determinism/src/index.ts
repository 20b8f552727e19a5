export { RANDOM_MODULE, TIME_MODULE } from './module-url.js';
export { GETRANDOM_MAX, RANDOM_SYSCALLS, type RandomPolicy, randomSeedOf } from './random.js';
export { Keystream, streamKey } from './random-stream.js';
