import { defineConfig } from 'tsup';

// Two entries: the public API, and the handler module, which the dispatch
// worker imports by URL (CHROOT_MODULE, beside index.js).
export default defineConfig({
  entry: ['src/index.ts', 'src/chroot-module.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
});
