import type { Arch } from '@sandlock/sys';
import { type DispatchModule, ModuleError, type ModuleRef } from './module.js';
import { checkUniqueNames, type ResolvedModuleRef, validateModule } from './registry.js';

/**
 * Where a program loads this package from code compiled with `vm.Script` (the
 * sandlock CLI does, for V8's code cache), `import()` has no module loader
 * there; such a host puts a real one under this symbol.
 */
const HOST_IMPORT = Symbol.for('sandlock.importModule');

function importModule(specifier: string): Promise<Record<string, unknown>> {
  const host = (globalThis as Record<symbol, unknown>)[HOST_IMPORT];
  if (typeof host === 'function') return host(specifier);
  return import(/* @vite-ignore */ specifier);
}

/**
 * Imports and checks the modules, in order, in the calling thread; `loads`
 * holds, by index, a ref's own way to import its file here (ModuleRef.load).
 */
export async function importModules(
  refs: readonly ResolvedModuleRef[],
  arch: Arch,
  loads: readonly ModuleRef['load'][] = [],
): Promise<DispatchModule[]> {
  const modules: DispatchModule[] = [];
  for (const [index, ref] of refs.entries()) {
    let namespace: Record<string, unknown>;
    try {
      const load = loads[index];
      namespace = await (load ? load() : importModule(ref.specifier));
    } catch (error) {
      throw new ModuleError(
        `sandlock: cannot load module '${ref.specifier}': ${(error as Error).message}`,
        { cause: error },
      );
    }
    const where = `'${ref.specifier}'${ref.exportName === 'default' ? '' : ` (export ${ref.exportName})`}`;
    modules.push(validateModule(namespace[ref.exportName], where, arch));
  }
  checkUniqueNames(modules);
  return modules;
}

/** Runs each module's `setup` in the calling thread. */
export function setUpModules(
  modules: readonly DispatchModule[],
  refs: readonly ResolvedModuleRef[],
  arch: Arch,
  thread: 'worker' | 'main',
): void {
  modules.forEach((module, index) => {
    try {
      module.setup?.(refs[index]!.options, { thread, arch });
    } catch (error) {
      throw new ModuleError(
        `sandlock: module '${module.name}': setup failed in the ${thread} thread: ${(error as Error).message}`,
        { cause: error },
      );
    }
  });
}

/** Imports, checks and sets up the modules, in order, in the calling thread. */
export async function loadModules(
  refs: readonly ResolvedModuleRef[],
  arch: Arch,
  thread: 'worker' | 'main',
): Promise<DispatchModule[]> {
  const modules = await importModules(refs, arch);
  setUpModules(modules, refs, arch, thread);
  return modules;
}
