import type { Arch } from '@sandlock/sys';
import {
  checkUniqueNames,
  type DispatchModule,
  ModuleError,
  type ResolvedModuleRef,
  validateModule,
} from './module.js';

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

/** Imports, checks and sets up the modules, in order, in the calling thread. */
export async function loadModules(
  refs: readonly ResolvedModuleRef[],
  arch: Arch,
  thread: 'worker' | 'main',
): Promise<DispatchModule[]> {
  const modules: DispatchModule[] = [];
  for (const ref of refs) {
    let namespace: Record<string, unknown>;
    try {
      namespace = await importModule(ref.specifier);
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
  return modules;
}
