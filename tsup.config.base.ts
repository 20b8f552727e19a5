import type { Options } from 'tsup';

/** What every library package builds: ESM for Node 20 with declarations. */
export const libraryBuild: Options = {
  entry: ['src/index.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
};
