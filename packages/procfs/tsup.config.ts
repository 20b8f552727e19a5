import { defineConfig } from 'tsup';

// Seven entries: the public API, and the six handler modules, which the
// dispatch worker imports by URL (PROC_PIDS_MODULE, PROC_HOST_MODULE,
// HOSTNAME_MODULE, NUM_CPUS_MODULE, MEMINFO_MODULE, DETERMINISTIC_DIRS_MODULE,
// beside index.js).
export default defineConfig({
  entry: [
    'src/index.ts',
    'src/proc-pids.ts',
    'src/proc-host.ts',
    'src/hostname.ts',
    'src/num-cpus.ts',
    'src/meminfo.ts',
    'src/deterministic-dirs.ts',
  ],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
});
