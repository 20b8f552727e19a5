import { defineConfig } from 'tsup';

// Two entries: the public API, and the process-limit handler module, which
// the dispatch worker imports by URL (PROCESS_LIMIT_MODULE, beside index.js).
export default defineConfig({
  entry: ['src/index.ts', 'src/process-limit.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
});
