import { defineConfig } from 'tsup';
import { libraryBuild } from '../../tsup.config.base.js';

// Two entries: the public API, and the worker thread's script, which the
// supervisor finds beside itself (new URL('./worker.js', import.meta.url)).
// Code both use lands in a shared chunk.
export default defineConfig({
  ...libraryBuild,
  entry: ['src/index.ts', 'src/worker.ts'],
  dts: { entry: 'src/index.ts' },
});
