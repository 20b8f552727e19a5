import { defineConfig } from 'tsup';

// The public API, and the handler modules, which the dispatch worker imports
// by URL (DESTINATIONS_MODULE and the others, beside index.js).
export default defineConfig({
  entry: ['src/index.ts', 'src/destinations.ts', 'src/binds.ts', 'src/port-names.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
});
