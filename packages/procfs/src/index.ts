export {
  affinityReply,
  cpuinfoWith,
  cpuList,
  deterministicDirsOf,
  hostnameFile,
  hostnameOf,
  hostsWith,
  madeUpProcFiles,
  maskBytesFor,
  maxMemoryOf,
  meminfoWith,
  numCpusOf,
  type ProcfsPolicy,
  policyReads,
  procReadable,
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
export { MEMINFO_SYSCALLS } from './meminfo.js';
export {
  DETERMINISTIC_DIRS_MODULE,
  HOSTNAME_MODULE,
  MEMINFO_MODULE,
  NUM_CPUS_MODULE,
  PROC_HOST_MODULE,
  PROC_PIDS_MODULE,
  SYSINFO_MODULE,
} from './module-url.js';
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
