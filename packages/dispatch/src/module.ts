import { pathToFileURL } from 'node:url';
import { type Arch, hasSyscall, syscallNumber } from '@sandlock/sys';
import type { Answer } from './answer.js';
import type { DeferredContext, HandlerContext } from './context.js';
import type { WorkerSession } from './session-view.js';

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
  /** Whether the module is on for a sandbox with this policy (default: always). */
  enabled?(policy: P, options: O): boolean;
  /**
   * The module acts on the sandbox's behalf with the sandbox's own authority
   * (`session.onBehalf`): a sandbox it is on for gets a broker, and the
   * supervisor watches for Landlock domains made inside it
   * (`session.narrowed`).
   */
  readonly onBehalf?: boolean;
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
}

/**
 * The URL of a handler module file beside the caller's: `moduleBeside(
 * import.meta.url, 'audit')` is `./audit.js` next to a built file, or
 * `./audit.ts` when the caller runs from its TypeScript sources (vitest).
 */
export function moduleBeside(callerUrl: string, name: string): URL {
  return new URL(callerUrl.endsWith('.ts') ? `./${name}.ts` : `./${name}.js`, callerUrl);
}

/** A {@link ModuleRef} in the form both threads load. */
export interface ResolvedModuleRef {
  specifier: string;
  exportName: string;
  options: unknown;
}

export function resolveModuleRef(ref: ModuleRef): ResolvedModuleRef {
  if (ref === null || typeof ref !== 'object' || !('module' in ref)) {
    throw new TypeError('sandlock: a module must be given as { module: url, options? }');
  }
  const raw = ref.module;
  let specifier: string;
  if (raw instanceof URL) specifier = raw.href;
  else if (typeof raw !== 'string' || raw === '') {
    throw new TypeError('sandlock: { module } must be a URL, an absolute path or a package name');
  } else if (raw.startsWith('/')) specifier = pathToFileURL(raw).href;
  else if (raw.startsWith('./') || raw.startsWith('../')) {
    throw new TypeError(
      `sandlock: module '${raw}' is relative; pass new URL('${raw}', import.meta.url) instead`,
    );
  } else specifier = raw;
  try {
    structuredClone(ref.options);
  } catch (error) {
    throw new TypeError(
      `sandlock: the options of module '${specifier}' cannot be sent to the worker thread (${String(error)})`,
    );
  }
  return { specifier, exportName: ref.export ?? 'default', options: ref.options };
}

export class ModuleError extends Error {
  override readonly name = 'ModuleError';
}

function describe(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

/** Checks the shape of a loaded module; throws a {@link ModuleError} naming what is wrong. */
export function validateModule(value: unknown, where: string, arch: Arch): DispatchModule {
  if (typeof value !== 'object' || value === null) {
    throw new ModuleError(
      `sandlock: ${where} does not export a module object (got ${describe(value)})`,
    );
  }
  const module = value as Record<string, unknown>;
  if (typeof module.name !== 'string' || module.name === '') {
    throw new ModuleError(`sandlock: the module in ${where} has no name`);
  }
  const name = module.name;
  if (!Array.isArray(module.syscalls) || module.syscalls.some((s) => typeof s !== 'string')) {
    throw new ModuleError(`sandlock: module '${name}': syscalls must be an array of names`);
  }
  const syscalls = new Set<string>(module.syscalls as string[]);
  for (const syscall of syscalls) {
    if (!hasSyscall(syscall, arch)) {
      throw new ModuleError(`sandlock: module '${name}': '${syscall}' is not a syscall on ${arch}`);
    }
  }
  for (const hook of [
    'enabled',
    'setup',
    'sessionStart',
    'sessionEnd',
    'processStart',
    'processExit',
  ]) {
    if (module[hook] !== undefined && typeof module[hook] !== 'function') {
      throw new ModuleError(`sandlock: module '${name}': ${hook} must be a function`);
    }
  }
  if (module.onBehalf !== undefined && typeof module.onBehalf !== 'boolean') {
    throw new ModuleError(`sandlock: module '${name}': onBehalf must be a boolean`);
  }
  for (const table of ['handlers', 'deferred'] as const) {
    const handlers = module[table];
    if (handlers === undefined) continue;
    if (typeof handlers !== 'object' || handlers === null) {
      throw new ModuleError(`sandlock: module '${name}': ${table} must be an object`);
    }
    for (const [syscall, handler] of Object.entries(handlers)) {
      if (typeof handler !== 'function') {
        throw new ModuleError(`sandlock: module '${name}': ${table}.${syscall} must be a function`);
      }
      if (!syscalls.has(syscall)) {
        throw new ModuleError(
          `sandlock: module '${name}' has a handler for '${syscall}' but does not list it in syscalls`,
        );
      }
    }
  }
  return value as DispatchModule;
}

/**
 * Refuses a module that registers on a denied syscall: the filter answers
 * those with EPERM before any notification, so the handler could never run,
 * and a module that expects to see them is mistaken about the sandbox.
 */
export function checkDenied(
  modules: readonly DispatchModule[],
  deny: Iterable<string>,
  what: string,
): void {
  const denied = new Set(deny);
  for (const module of modules) {
    for (const syscall of module.syscalls) {
      if (denied.has(syscall)) {
        throw new ModuleError(
          `sandlock: module '${module.name}' registers on '${syscall}', which ${what} denies`,
        );
      }
    }
  }
}

export function checkUniqueNames(modules: readonly DispatchModule[]): void {
  const seen = new Set<string>();
  for (const module of modules) {
    if (seen.has(module.name)) {
      throw new ModuleError(`sandlock: two modules are named '${module.name}'`);
    }
    seen.add(module.name);
  }
}

/** One link of a dispatch chain. */
export interface ChainLink {
  readonly moduleIndex: number;
  readonly module: DispatchModule;
  readonly syscall: string;
  /** The worker handler, or undefined when the module only has a deferred handler. */
  readonly handler: Handler | undefined;
}

/**
 * The dispatch table: per syscall number, the chain of handlers in module
 * order (registration order is priority). Modules are given in load order;
 * `enabled` lists the indexes that are on.
 */
export function buildTable(
  modules: readonly DispatchModule[],
  enabled: readonly number[],
  arch: Arch,
): (readonly ChainLink[] | undefined)[] {
  const table: ChainLink[][] = [];
  for (const moduleIndex of [...enabled].sort((a, b) => a - b)) {
    const module = modules[moduleIndex]!;
    for (const syscall of module.syscalls) {
      const handler = module.handlers?.[syscall];
      if (handler === undefined && module.deferred?.[syscall] === undefined) continue;
      const nr = syscallNumber(syscall, arch);
      table[nr] ??= [];
      table[nr].push({ moduleIndex, module, syscall, handler });
    }
  }
  return table;
}
