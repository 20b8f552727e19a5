import { defineConfig } from 'tsup';

// The public API, and the handler module, which the dispatch worker imports
// by URL (DATAGRAMS_MODULE, beside index.js).
export default defineConfig({
  entry: ['src/index.ts', 'src/datagrams.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
});
