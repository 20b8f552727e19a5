import { readFileSync } from 'node:fs';
import { defineConfig, type Options } from 'tsup';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

const bundled: Options = {
  target: 'node20',
  platform: 'node',
  bundle: true,
  noExternal: [/^@sandlock\//, /^sandlock$/],
  external: ['koffi'],
  sourcemap: false,
};

export default defineConfig([
  // The runtime: one CommonJS file with every workspace package inside; only
  // koffi (native) stays outside. `import.meta.url` is shimmed to this file's
  // URL, so the supervisor finds its worker and modules beside it. The worker
  // modules are the CLI's list (apps/cli/tsup.config.ts): keep them alike.
  {
    ...bundled,
    entry: { main: 'src/main.ts', supervisor: 'src/supervisor-main.ts' },
    format: ['cjs'],
    outExtension: () => ({ js: '.cjs' }),
    shims: true,
    define: { SANDLOCK_OCI_VERSION: JSON.stringify(version) },
    clean: true,
  },
  // What the supervisor loads by URL in its worker threads.
  {
    ...bundled,
    entry: {
      worker: '../../packages/dispatch/src/worker.ts',
      'process-limit': '../../packages/resource/src/process-limit.ts',
      'socket-buffers': '../../packages/resource/src/socket-buffers.ts',
      hostname: '../../packages/procfs/src/hostname.ts',
      'num-cpus': '../../packages/procfs/src/num-cpus.ts',
      meminfo: '../../packages/procfs/src/meminfo.ts',
      sysinfo: '../../packages/procfs/src/sysinfo.ts',
      'deterministic-dirs': '../../packages/procfs/src/deterministic-dirs.ts',
      'proc-pids': '../../packages/procfs/src/proc-pids.ts',
      'proc-host': '../../packages/procfs/src/proc-host.ts',
      random: '../../packages/determinism/src/random.ts',
      'random-feeder-thread': '../../packages/determinism/src/random-feeder-thread.ts',
      time: '../../packages/determinism/src/time.ts',
      'fs-meta': '../../packages/fsmeta/src/fs-meta.ts',
      destinations: '../../packages/network/src/destinations.ts',
      binds: '../../packages/network/src/binds.ts',
      'port-names': '../../packages/network/src/port-names.ts',
      'cow-module': '../../packages/cow/src/cow-module.ts',
      'chroot-module': '../../packages/chroot/src/chroot-module.ts',
    },
    format: ['esm'],
    clean: false,
  },
]);
