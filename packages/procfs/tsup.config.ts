import { defineConfig } from 'tsup';

// Eight entries: the public API, and the seven handler modules, which the
// dispatch worker imports by URL (PROC_PIDS_MODULE, PROC_HOST_MODULE,
// HOSTNAME_MODULE, NUM_CPUS_MODULE, MEMINFO_MODULE, SYSINFO_MODULE,
// DETERMINISTIC_DIRS_MODULE, beside index.js). Code splitting (tsup's default
// for ESM) puts the files they share (synthetic.ts, load-state.ts) in chunks
// of their own: one instance, and so one state, per worker thread.
export default defineConfig({
  entry: [
    'src/index.ts',
    'src/proc-pids.ts',
    'src/proc-host.ts',
    'src/hostname.ts',
    'src/num-cpus.ts',
    'src/meminfo.ts',
    'src/sysinfo.ts',
    'src/deterministic-dirs.ts',
  ],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
});
