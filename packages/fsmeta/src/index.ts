import { type ModuleRef, moduleBeside } from '@sandlock/dispatch/module';

export { FS_META_SYSCALLS } from './fs-meta.js';
export { writableByPolicy } from './policy.js';

// The handler module, for `Supervisor.start({ modules: [{ module: FS_META_MODULE }] })`
// of @sandlock/dispatch: dist/fs-meta.js beside this file when built,
// src/fs-meta.ts when run from the sources (vitest).

/** The fs-meta module: chmod, utimes and extended attribute changes done on behalf; on with `mediatesMetadata`. */
export const FS_META_MODULE: URL = moduleBeside(import.meta.url, 'fs-meta');

/** This package's handler modules, for a supervisor's built-in modules. */
export const FSMETA_MODULES: readonly ModuleRef[] = [
  { module: FS_META_MODULE, load: () => import('./fs-meta.js') },
];
