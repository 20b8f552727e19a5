import { type ModuleRef, moduleBeside } from '@sandlock/dispatch/module';

export type { ChrootPolicy } from './call.js';
export { CHROOT_SYSCALLS, chrootSyscallsOf } from './chroot-module.js';
export { type ExecFile, execFileInRoot } from './exec.js';
export { type HostPaths, hostPaths, hostPathsInside } from './host-paths.js';
export { Found, type Mount, Root } from './root.js';

// The handler module, for `Supervisor.start({ modules: [{ module: CHROOT_MODULE }] })`
// of @sandlock/dispatch: dist/chroot-module.js beside this file when built,
// src/chroot-module.ts when run from the sources (vitest).

/** The chroot module: the policy's root seen as `/`; on with `chroot`. */
export const CHROOT_MODULE: URL = moduleBeside(import.meta.url, 'chroot-module');

/** This package's handler modules, for a supervisor's built-in modules. */
export const CHROOT_MODULES: readonly ModuleRef[] = [
  { module: CHROOT_MODULE, load: () => import('./chroot-module.js') },
];
