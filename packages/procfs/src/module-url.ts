// The handler modules, for `Supervisor.start({ modules: [{ module:
// HOSTNAME_MODULE }, { module: NUM_CPUS_MODULE }, { module: MEMINFO_MODULE },
// { module: SYSINFO_MODULE }] })`
// of @sandlock/dispatch.
// Beside this package's entry: dist/<name>.js built, src/<name>.ts when run
// from the sources (vitest).
const fromSources = import.meta.url.endsWith('.ts');

/** The hostname module: `uname` and /etc/hostname, on when the policy has `hostname`. */
export const HOSTNAME_MODULE: URL = new URL(
  fromSources ? './hostname.ts' : './hostname.js',
  import.meta.url,
);

/** The num-cpus module: sched_getaffinity, /proc/cpuinfo, /proc/stat, /sys CPU lists; on with `numCpus`. */
export const NUM_CPUS_MODULE: URL = new URL(
  fromSources ? './num-cpus.ts' : './num-cpus.js',
  import.meta.url,
);

/** The meminfo module: /proc/meminfo shows the memory limit; on with `maxMemory`. */
export const MEMINFO_MODULE: URL = new URL(
  fromSources ? './meminfo.ts' : './meminfo.js',
  import.meta.url,
);

/** The sysinfo module: sysinfo(2) with the memory limit and the sandbox's load and threads; on with `maxMemory` or `procReadable`. */
export const SYSINFO_MODULE: URL = new URL(
  fromSources ? './sysinfo.ts' : './sysinfo.js',
  import.meta.url,
);

/** The deterministic-dirs module: getdents64/getdents sorted by name; on with `deterministicDirs: true`. */
export const DETERMINISTIC_DIRS_MODULE: URL = new URL(
  fromSources ? './deterministic-dirs.ts' : './deterministic-dirs.js',
  import.meta.url,
);

/** The proc-pids module: /proc without the processes outside the sandbox; on when the policy reads /proc (`procReadable`). */
export const PROC_PIDS_MODULE: URL = new URL(
  fromSources ? './proc-pids.ts' : './proc-pids.js',
  import.meta.url,
);

/** The proc-host module: /proc/loadavg of the sandbox's tasks, mount tables cut to the policy; on with proc-pids (`procReadable`), right after it. */
export const PROC_HOST_MODULE: URL = new URL(
  fromSources ? './proc-host.ts' : './proc-host.js',
  import.meta.url,
);
