import { defineConfig } from 'tsup';

// The public API, and the handler modules, which the dispatch worker imports
// by URL (PROCESS_LIMIT_MODULE, SOCKET_BUFFERS_MODULE, beside index.js).
export default defineConfig({
  entry: ['src/index.ts', 'src/process-limit.ts', 'src/socket-buffers.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
});
