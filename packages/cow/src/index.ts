import { type ModuleRef, moduleBeside } from '@sandlock/dispatch/module';

export type { CowPolicy } from './call.js';
export { COW_SYSCALLS } from './cow-module.js';
export { type Disposition, type FinishOptions, type FinishResult, finishLayer } from './finish.js';
export { diffsOf, type FormatOptions, formatChanges } from './format.js';
export {
  type Change,
  type ChangeKind,
  type CleanReport,
  type CreateOptions,
  cleanStaleLayers,
  type DiskBound,
  defaultStore,
  Layer,
  type LayerMeta,
  type LayerState,
  listLayers,
  type OpenOptions,
  type Owner,
  StoreError,
} from './layer/index.js';
export { privateTmpfsRefusal } from './layer/private-tmpfs.js';

// The handler module, for `Supervisor.start({ modules: [{ module: COW_MODULE }] })`
// of @sandlock/dispatch: dist/cow-module.js beside this file when built,
// src/cow-module.ts when run from the sources (vitest).

/** The cow module: a copy-on-write view of the policy's workdir; on with `workdir`. */
export const COW_MODULE: URL = moduleBeside(import.meta.url, 'cow-module');

/** This package's handler modules, for a supervisor's built-in modules. */
export const COW_MODULES: readonly ModuleRef[] = [
  { module: COW_MODULE, load: () => import('./cow-module.js') },
];
