import { defineConfig } from 'tsup';
import { libraryBuild } from '../../tsup.config.base.js';

// Four entries: the public API; the handler API for module files
// (@sandlock/dispatch/module, which loads no koffi); a path argument's copy
// (@sandlock/dispatch/path-arg, which does); and the worker thread's
// script, which the supervisor finds beside itself (new URL('./worker.js',
// import.meta.url)). Code they share lands in shared chunks.
export default defineConfig({
  ...libraryBuild,
  entry: ['src/index.ts', 'src/module.ts', 'src/path-arg.ts', 'src/worker.ts'],
  dts: { entry: ['src/index.ts', 'src/module.ts', 'src/path-arg.ts'] },
});
