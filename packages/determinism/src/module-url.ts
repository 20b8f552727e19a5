// The handler modules, for `Supervisor.start({ modules: [{ module: RANDOM_MODULE },
// { module: TIME_MODULE }] })` of @sandlock/dispatch. Beside this package's
// entry: dist/<name>.js built, src/<name>.ts when run from the sources (vitest).
const fromSources = import.meta.url.endsWith('.ts');

/** The random module: getrandom and opens of /dev/urandom, /dev/random; on with `randomSeed`. */
export const RANDOM_MODULE: URL = new URL(
  fromSources ? './random.ts' : './random.js',
  import.meta.url,
);

/** The time module: shifted realtime clocks (vDSO and syscalls) and timers; patches the vDSO for `timeStart` and `randomSeed`. */
export const TIME_MODULE: URL = new URL(fromSources ? './time.ts' : './time.js', import.meta.url);
