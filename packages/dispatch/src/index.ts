export { type ArgKind, type KnownSyscall, namedArgs, type SyscallArgs } from '@sandlock/sys';
export {
  type Answer,
  type AnswerKind,
  answer,
  type ExecArg,
  type InjectOptions,
  type RetargetApart,
  type RetargetArg,
  type RetargetOptions,
  type RetargetSecond,
} from './answer.js';
export { CallError } from './call-error.js';
export type {
  CallContext,
  CallerWalkOptions,
  DeferredContext,
  HandlerContext,
  Notification,
} from './context.js';
export {
  type DeferredHandler,
  type DispatchModule,
  defineModule,
  type Handler,
  ModuleError,
  type ModuleRef,
  moduleBeside,
  type SetupEnv,
} from './module.js';
export type { OnBehalf } from './on-behalf.js';
export { sandboxProcesses } from './processes.js';
export {
  LAYER_VIEW,
  type LayerView,
  type LayerWalked,
  PATH_VIEW,
  type PathView,
  type PathViewWalk,
  PROC_NET_PORTS,
  type ProcNetTranslator,
  type Provision,
  ROOT_VIEW,
  type RootView,
} from './provisions.js';
export {
  REFUSAL_BURST,
  REFUSAL_RATE,
  type Refusal,
  type RefusalReport,
} from './refusal.js';
export type { ProcessView, SessionInfo, SessionNotice, WorkerSession } from './session-view.js';
export {
  type AttachOptions,
  type DelegateOptions,
  DelegationError,
  type DispatchError,
  type SandboxContext,
  Session,
  Supervisor,
  type SupervisorOptions,
} from './supervisor.js';
