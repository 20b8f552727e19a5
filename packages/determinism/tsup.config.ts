import { defineConfig } from 'tsup';

// Four entries: the public API, the two handler modules, which the dispatch
// worker imports by URL (RANDOM_MODULE, TIME_MODULE, beside index.js), and the
// random module's feeder thread, which it starts from beside its own file.
export default defineConfig({
  entry: ['src/index.ts', 'src/random.ts', 'src/time.ts', 'src/random-feeder-thread.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
});
