export { type Change, formatChanges } from '@sandlock/cow';
export type { Denial as HttpDenial } from '@sandlock/http';
export { type Origin, PolicyDraft } from '@sandlock/policy';
export { PolicyBuilder } from './builder.js';
export type { StdioOption } from './call-options.js';
export { checkKernel, type KernelCheck, type KernelFeature } from './check.js';
export { type Confinement, type ConfinementOptions, prepareConfinement } from './confine.js';
export type { SandboxDescription } from './describe.js';
export { CommandError } from './environment.js';
export { AbortError, PolicyError, type PolicyProblem, SandboxError } from './errors.js';
export { type JoinedExit, JoinedProcess } from './joined.js';
export type { LimitUpdate, SandboxLimits } from './limits.js';
export {
  DEFAULT_POLICY,
  type PluginRef,
  type Policy,
  type PortSpec,
  parsePolicy,
} from './policy.js';
export {
  type ExitStatus,
  type KillCause,
  SANDBOX_SIGNALS,
  type SandboxPort,
  SandboxProcess,
  type SandboxProcessEvents,
  type SandboxRefusal,
} from './process.js';
export {
  badSandboxName,
  type PortMapping,
  registryDirectory,
  type SandboxEntry,
} from './registry.js';
export {
  type RunOptions,
  type RunResult,
  Sandbox,
  type SandboxUser,
  type SpawnOptions,
} from './sandbox.js';
export { afterDelay, parseDuration } from './timers.js';
export type { WorkdirEnd, WorkdirResult } from './workdir.js';
