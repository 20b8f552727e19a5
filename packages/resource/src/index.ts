import { type ModuleRef, moduleBeside } from '@sandlock/dispatch/module';

export { formatByteSize, parseByteSize } from '@sandlock/policy';
export { CpuThrottle, type CpuThrottleOptions, type StopContinue, sandboxCpuMs } from './cpu.js';
export { type HeldBuffers, heldBuffers } from './kernel-buffers.js';
export {
  MemoryLimit,
  type MemoryLimitOptions,
  type MemoryReader,
  type MemorySample,
  type MemoryViolation,
  procMemoryReader,
} from './memory.js';
export { UNMEASURED_KILL_MS } from './proc.js';
export { PROCESS_LIMIT_SYSCALLS } from './process-limit.js';
export {
  type CountFailure,
  type ForkVerdict,
  type ProcessCount,
  ProcessCounter,
  type ProcessProbe,
  procProcessProbe,
} from './processes.js';
export { Reaper } from './reaper.js';
export {
  type LimitViolation,
  type ResourceLimits,
  ResourceWatch,
  type UnmeasuredViolation,
  type WatchOptions,
  type WatchStats,
  watchResources,
} from './watch.js';

// The handler modules, for `Supervisor.start({ modules: [{ module:
// PROCESS_LIMIT_MODULE }] })` of @sandlock/dispatch: dist/<name>.js beside
// this file when built, src/<name>.ts when run from the sources (vitest).

/** The process-limit module: clone, fork and vfork counted; on with `maxProcesses`. */
export const PROCESS_LIMIT_MODULE: URL = moduleBeside(import.meta.url, 'process-limit');

/** The socket-buffers module: SO_SNDBUF and SO_RCVBUF held to the default; on with `maxMemory`. */
export const SOCKET_BUFFERS_MODULE: URL = moduleBeside(import.meta.url, 'socket-buffers');

/** This package's handler modules, for a supervisor's built-in modules. */
export const RESOURCE_MODULES: readonly ModuleRef[] = [
  { module: PROCESS_LIMIT_MODULE, load: () => import('./process-limit.js') },
  { module: SOCKET_BUFFERS_MODULE, load: () => import('./socket-buffers.js') },
];
