import { defineConfig } from 'tsup';

// Three entries: the public API, and the two handler modules, which the
// dispatch worker imports by URL (RANDOM_MODULE, TIME_MODULE, beside index.js).
export default defineConfig({
  entry: ['src/index.ts', 'src/random.ts', 'src/time.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
});
