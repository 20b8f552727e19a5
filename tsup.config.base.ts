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

/** What an app bundles: Node 20, every workspace package inside, only koffi (native) outside. */
export const appBundle: Options = {
  target: 'node20',
  platform: 'node',
  bundle: true,
  noExternal: [/^@sandlock\//, /^sandlock$/],
  external: ['koffi'],
  sourcemap: false,
};

/**
 * What a bundled supervisor loads by URL in its worker threads, built beside
 * the app's main file. Paths are from an app's directory (apps/<name>).
 */
export const supervisorModules: Options = {
  ...appBundle,
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
};
