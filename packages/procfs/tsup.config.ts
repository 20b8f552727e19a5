import { defineConfig } from 'tsup';

// Four entries: the public API, and the three handler modules, which the
// dispatch worker imports by URL (HOSTNAME_MODULE, NUM_CPUS_MODULE,
// MEMINFO_MODULE, beside index.js).
export default defineConfig({
  entry: ['src/index.ts', 'src/hostname.ts', 'src/num-cpus.ts', 'src/meminfo.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
});
