import { defineConfig } from 'tsup';

// The public API, and the handler module, which the dispatch worker imports
// by URL (DESTINATIONS_MODULE, beside index.js).
export default defineConfig({
  entry: ['src/index.ts', 'src/destinations.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
});
