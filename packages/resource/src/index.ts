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
export { PROCESS_LIMIT_MODULE, SOCKET_BUFFERS_MODULE } from './module-url.js';
export { UNMEASURED_KILL_MS } from './proc.js';
export { PROCESS_LIMIT_SYSCALLS, type ProcessLimitPolicy } from './process-limit.js';
export {
  type CountFailure,
  type ForkVerdict,
  type ProcessCount,
  ProcessCounter,
  type ProcessProbe,
  procProcessProbe,
} from './processes.js';
export { Reaper } from './reaper.js';
export { formatByteSize, parseByteSize } from './size.js';
export type { SocketBuffersPolicy } from './socket-buffers.js';
export {
  type LimitViolation,
  type ResourceLimits,
  ResourceWatch,
  type UnmeasuredViolation,
  type WatchOptions,
  type WatchStats,
  watchResources,
} from './watch.js';
