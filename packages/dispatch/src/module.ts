// @sandlock/dispatch/module: what a handler module file imports. Answers,
// CallError, defineModule and the types, and nothing that loads koffi or
// starts anything: a module file is imported on the main thread too, and a
// package that only declares where its modules are stays light.
import type { Arch } from '@sandlock/sys';
import type { Answer } from './answer.js';
import type { DeferredContext, HandlerContext } from './context.js';
import type { WorkerSession } from './session-view.js';

export type { ArgKind, KnownSyscall, SyscallArgs } from '@sandlock/sys';
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
export { brokerOf, int, sessionOf, uint } from './args.js';
export { CallError } from './call-error.js';
export type {
  CallContext,
  CallerWalkOptions,
  DeferredContext,
  HandlerContext,
  Notification,
} from './context.js';
export { gatedBroker, narrowedCallerErrno } from './narrowed-caller.js';
export type { OnBehalf } from './on-behalf.js';
export { readStatus, threadGroupOf, umaskOf } from './proc-status.js';
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
export type { Refusal, RefusalReport } from './refusal.js';
export {
  chdirBeneath,
  expectRetargetedOpen,
  isRetargetedOpen,
  type RetargetedOpen,
} from './retargeted-open.js';
export type { ProcessView, SessionInfo, SessionNotice, WorkerSession } from './session-view.js';

/** Where a module's code runs: handlers in the worker, deferred handlers on the main thread. */
export interface SetupEnv {
  readonly thread: 'worker' | 'main';
  readonly arch: Arch;
}

/** A synchronous handler, run in the worker thread. */
export type Handler<P = unknown> = (ctx: HandlerContext<P>) => Answer;

/** An asynchronous handler for a deferred notification, run on the main thread. */
export type DeferredHandler<P = unknown> = (ctx: DeferredContext<P>) => Answer | Promise<Answer>;

/**
 * A handler module: the syscalls it owns, the condition that turns it on,
 * one function per syscall. A module file's default export (or the export
 * named in its {@link ModuleRef}) is one of these; the file is imported in
 * the worker thread and on the main thread, so keep side effects in `setup`.
 */
export interface DispatchModule<O = unknown, P = unknown> {
  /** Names the module in errors. Unique among a supervisor's modules. */
  readonly name: string;
  /** Every syscall the module wants to see: each one is notified when the module is on. */
  readonly syscalls: readonly string[];
  /**
   * Whether the module is on for a sandbox with this policy (default:
   * always). The only place the module's condition is stated: its handlers
   * and hooks run only for sandboxes it is on for.
   */
  enabled?(policy: P, options: O): boolean;
  /**
   * Modules whose handlers come before this one's in every chain, by name.
   * A name no loaded module has is ignored. Among the modules given to the
   * supervisor together (its built-in modules; its plugins), the order given
   * is kept where no constraint says otherwise; a cycle is refused.
   */
  readonly after?: readonly string[];
  /** Modules whose handlers come after this one's in every chain, by name (see `after`). */
  readonly before?: readonly string[];
  /**
   * The module acts on the sandbox's behalf with the sandbox's own authority
   * (`session.onBehalf`): a sandbox it is on for gets a broker, and the
   * supervisor watches for Landlock domains made inside it
   * (`session.narrowed`).
   */
  readonly onBehalf?: boolean;
  /**
   * Its handlers need the caller's own open file descriptions (`getFd`,
   * `onBehalf`: pidfd_getfd(2)), beyond the files behind them (`openStart`,
   * `walk`), for the policies `enabled` turns it on for, or for those this
   * says (default: none). A seccomp profile may refuse pidfd_getfd (a
   * container's default, without CAP_SYS_PTRACE): a sandbox that needs such
   * a module then does not start.
   */
  takesDescriptors?(policy: P, options: O): boolean;
  /** Runs once per thread that loaded the module, before any handler. */
  setup?(options: O, env: SetupEnv): void;
  /** Worker-thread handlers, by syscall name. Must be synchronous; must not block. */
  readonly handlers?: Readonly<Record<string, Handler<P>>>;
  /**
   * Main-thread handlers for notifications a worker handler deferred, by
   * syscall name. A syscall that has a deferred handler and no worker handler
   * is deferred without a payload.
   */
  readonly deferred?: Readonly<Record<string, DeferredHandler<P>>>;
  /** A sandbox the module is on for started being supervised (worker thread). */
  sessionStart?(session: WorkerSession<P>): void;
  /** Every process of that sandbox has gone (worker thread). */
  sessionEnd?(session: WorkerSession<P>): void;
  /** A process of the sandbox was seen for the first time (worker thread). */
  processStart?(session: WorkerSession<P>, pid: number): void;
  /** A process of the sandbox exited (worker thread, through its pidfd). */
  processExit?(session: WorkerSession<P>, pid: number): void;
}

/** Identity, for type inference: `export default defineModule<Options, Policy>({ … })`. */
export function defineModule<O = unknown, P = unknown>(
  module: DispatchModule<O, P>,
): DispatchModule<O, P> {
  return module;
}

/**
 * A module to load: `module` is an absolute file path, a URL (e.g.
 * `new URL('./audit.js', import.meta.url)`), or a package specifier that
 * resolves from this package. Relative specifiers are refused: they would
 * resolve against this package, not the caller.
 */
export interface ModuleRef {
  module: string | URL;
  /** The export that holds the module (default: the default export). */
  export?: string;
  /** Passed to `setup` and `enabled`; must survive structured clone. */
  options?: unknown;
  /**
   * Imports the file `module` names on the main thread, instead of
   * `import(module)`: `() => import('./audit.js')` beside the declaration,
   * so that a bundle holding its own copy of the module (the sandlock CLI)
   * loads that copy with the code it already has. Worker threads always
   * import `module`.
   */
  load?: () => Promise<Record<string, unknown>>;
}

/**
 * The URL of a handler module file beside the caller's: `moduleBeside(
 * import.meta.url, 'audit')` is `./audit.js` next to a built file, or
 * `./audit.ts` when the caller runs from its TypeScript sources (vitest).
 */
export function moduleBeside(callerUrl: string, name: string): URL {
  return new URL(callerUrl.endsWith('.ts') ? `./${name}.ts` : `./${name}.js`, callerUrl);
}

/** A module was refused: its file, its shape, its syscalls or its place among the others. */
export class ModuleError extends Error {
  override readonly name = 'ModuleError';
}
