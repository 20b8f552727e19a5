import { defineConfig } from 'tsup';

// Two entries: the public API, and the handler module, which the dispatch
// worker imports by URL (FS_META_MODULE, beside index.js).
export default defineConfig({
  entry: ['src/index.ts', 'src/fs-meta.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
});
