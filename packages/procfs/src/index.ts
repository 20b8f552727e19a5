export {
  affinityReply,
  cpuinfoWith,
  cpuList,
  hostnameFile,
  hostnameOf,
  maskBytesFor,
  numCpusOf,
  type ProcfsPolicy,
  procStatWith,
  UTSNAME_SIZE,
  utsField,
  utsnameWith,
} from './content.js';
export { HOSTNAME_SYSCALLS } from './hostname.js';
export { HOSTNAME_MODULE, NUM_CPUS_MODULE } from './module-url.js';
export { NUM_CPUS_SYSCALLS } from './num-cpus.js';
