// The handler modules, for `Supervisor.start({ modules: [{ module:
// HOSTNAME_MODULE }, …] })` of @sandlock/dispatch: dist/<name>.js beside this
// package's entry when built, src/<name>.ts when run from the sources (vitest).
import { moduleBeside } from '@sandlock/dispatch';

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

/** The proc-host module: /proc/loadavg of the sandbox's tasks, mount tables cut to the policy; on with proc-pids (`procReadable`), right after it. */
export const PROC_HOST_MODULE: URL = moduleBeside(import.meta.url, 'proc-host');
