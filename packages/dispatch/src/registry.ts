// What the supervisor does with handler modules: resolves their refs,
// checks their shape, orders them and builds the dispatch table.
import { pathToFileURL } from 'node:url';
import { type Arch, hasSyscall, syscallNumber } from '@sandlock/sys';
import { type DispatchModule, type Handler, ModuleError, type ModuleRef } from './module.js';

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
    'takesDescriptors',
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
  for (const field of ['after', 'before'] as const) {
    const names = module[field];
    if (
      names !== undefined &&
      (!Array.isArray(names) || names.some((entry) => typeof entry !== 'string'))
    ) {
      throw new ModuleError(
        `sandlock: module '${name}': ${field} must be an array of module names`,
      );
    }
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

/**
 * The chain order of `modules` (indexes into it): each module's `after` and
 * `before` constraints hold, and otherwise the given order is kept. A name
 * no module of `modules` has is ignored (that module is not loaded).
 * Throws a {@link ModuleError} naming the modules of a cycle.
 */
export function orderModules(modules: readonly DispatchModule[]): number[] {
  const indexOf = new Map(modules.map((module, index) => [module.name, index]));
  const successors = modules.map(() => new Set<number>());
  modules.forEach((module, index) => {
    for (const name of module.after ?? []) {
      const other = indexOf.get(name);
      if (other !== undefined && other !== index) successors[other]!.add(index);
    }
    for (const name of module.before ?? []) {
      const other = indexOf.get(name);
      if (other !== undefined && other !== index) successors[index]!.add(other);
    }
  });
  const waiting = modules.map(() => 0);
  for (const next of successors) for (const index of next) waiting[index]!++;
  const order: number[] = [];
  const placed = new Set<number>();
  while (order.length < modules.length) {
    // The first module in the given order whose predecessors are all placed.
    const index = waiting.findIndex((count, at) => count === 0 && !placed.has(at));
    if (index < 0) throw new ModuleError(`sandlock: ${describeCycle(modules, successors, placed)}`);
    placed.add(index);
    order.push(index);
    for (const next of successors[index]!) waiting[next]!--;
  }
  return order;
}

/** One cycle among the modules not `placed` (each of them has an unplaced predecessor). */
function describeCycle(
  modules: readonly DispatchModule[],
  successors: readonly ReadonlySet<number>[],
  placed: ReadonlySet<number>,
): string {
  const predecessor = new Map<number, number>();
  successors.forEach((next, index) => {
    if (placed.has(index)) return;
    for (const to of next) if (!placed.has(to)) predecessor.set(to, index);
  });
  // Walking back through predecessors from any unplaced module enters a cycle.
  let at = predecessor.keys().next().value as number;
  const seen = new Set<number>();
  while (!seen.has(at)) {
    seen.add(at);
    at = predecessor.get(at)!;
  }
  const cycle = [at];
  for (let next = predecessor.get(at)!; next !== at; next = predecessor.get(next)!) {
    cycle.unshift(next);
  }
  const names = [...cycle, cycle[0]!].map((index) => `'${modules[index]!.name}'`);
  return `the modules' after/before constraints form a cycle: ${names.join(' before ')}`;
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
