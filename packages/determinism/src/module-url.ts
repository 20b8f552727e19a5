// The handler modules, for `Supervisor.start({ modules: [{ module: RANDOM_MODULE },
// { module: TIME_MODULE }] })` of @sandlock/dispatch: dist/<name>.js beside this
// package's entry when built, src/<name>.ts when run from the sources (vitest).
import { moduleBeside } from '@sandlock/dispatch';

/** The random module: getrandom and opens of /dev/urandom, /dev/random; on with `randomSeed`. */
export const RANDOM_MODULE: URL = moduleBeside(import.meta.url, 'random');

/** The time module: shifted realtime clocks (vDSO and syscalls) and timers; patches the vDSO for `timeStart` and `randomSeed`. */
export const TIME_MODULE: URL = moduleBeside(import.meta.url, 'time');
