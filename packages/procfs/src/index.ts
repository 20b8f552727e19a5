import { type ModuleRef, moduleBeside } from '@sandlock/dispatch/module';

export {
  affinityReply,
  cpuinfoWith,
  cpuList,
  hostnameFile,
  hostsWith,
  madeUpProcFiles,
  maskBytesFor,
  meminfoWith,
  procStatWith,
  statusMemory,
  UTSNAME_SIZE,
  utsField,
  utsnameWith,
} from './content.js';
export {
  DETERMINISTIC_DIRS_SYSCALLS,
  type DirEntry,
  type DirentFormat,
  packRecords,
  parseDirent64,
  recordLength,
  sortEntries,
} from './deterministic-dirs.js';
export {
  decayLoad,
  decodeMountPath,
  FSHIFT,
  filterMountTable,
  fixedLoad,
  type HostFile,
  hostFileOf,
  type LoadAverages,
  loadavgText,
  type MountTable,
  mountPointVisible,
  ZERO_LOAD,
} from './host-content.js';
export { HOSTNAME_SYSCALLS } from './hostname.js';
export { ListingCache, type ListingCall } from './listing.js';
export { MEMINFO_SYSCALLS } from './meminfo.js';
export {
  filterSocketTable,
  NET_SOCKET_FILES,
  type NetSocketFile,
  socketInodes,
} from './net-content.js';
export { NUM_CPUS_SYSCALLS } from './num-cpus.js';
export { PROC_HOST_SYSCALLS } from './proc-host.js';
export { PROC_PIDS_SYSCALLS, SENSITIVE_PATHS } from './proc-pids.js';
export { SYSINFO_SYSCALLS } from './sysinfo.js';
export {
  SI_LOAD_SHIFT,
  SYSINFO_OFFSETS,
  SYSINFO_SIZE,
  type SysinfoChanges,
  sysinfoWith,
} from './sysinfo-content.js';

// The handler modules, for `Supervisor.start({ modules: [{ module:
// HOSTNAME_MODULE }, …] })` of @sandlock/dispatch: dist/<name>.js beside this
// file when built, src/<name>.ts when run from the sources (vitest).

/** The hostname module: `uname` and /etc/hostname, on when the policy has `hostname`. */
export const HOSTNAME_MODULE: URL = moduleBeside(import.meta.url, 'hostname');

/** The num-cpus module: sched_getaffinity, /proc/cpuinfo, /proc/stat, /sys CPU lists; on with `numCpus`. */
export const NUM_CPUS_MODULE: URL = moduleBeside(import.meta.url, 'num-cpus');

/** The meminfo module: /proc/meminfo shows the memory limit; on with `maxMemory`. */
export const MEMINFO_MODULE: URL = moduleBeside(import.meta.url, 'meminfo');

/** The sysinfo module: sysinfo(2) with the memory limit and the sandbox's load and threads; on with `maxMemory` or `procReadable`. */
export const SYSINFO_MODULE: URL = moduleBeside(import.meta.url, 'sysinfo');

/** The deterministic-dirs module: getdents64/getdents sorted by name; on with `deterministicDirs: true`. */
export const DETERMINISTIC_DIRS_MODULE: URL = moduleBeside(import.meta.url, 'deterministic-dirs');

/** The proc-pids module: /proc without the processes outside the sandbox; on when the policy reads /proc (`procReadable`). */
export const PROC_PIDS_MODULE: URL = moduleBeside(import.meta.url, 'proc-pids');

/** The proc-host module: /proc/loadavg of the sandbox's tasks, mount tables cut to the policy; on with proc-pids (`procReadable`), after it. */
export const PROC_HOST_MODULE: URL = moduleBeside(import.meta.url, 'proc-host');

/** This package's handler modules, for a supervisor's built-in modules. */
export const PROCFS_MODULES: readonly ModuleRef[] = [
  { module: PROC_PIDS_MODULE, load: () => import('./proc-pids.js') },
  { module: PROC_HOST_MODULE, load: () => import('./proc-host.js') },
  { module: HOSTNAME_MODULE, load: () => import('./hostname.js') },
  { module: NUM_CPUS_MODULE, load: () => import('./num-cpus.js') },
  { module: MEMINFO_MODULE, load: () => import('./meminfo.js') },
  { module: SYSINFO_MODULE, load: () => import('./sysinfo.js') },
  { module: DETERMINISTIC_DIRS_MODULE, load: () => import('./deterministic-dirs.js') },
];
