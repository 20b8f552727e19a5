// The handler module, for `Supervisor.start({ modules: [{ module: FS_META_MODULE }] })`
// of @sandlock/dispatch: dist/fs-meta.js beside this package's entry when
// built, src/fs-meta.ts when run from the sources (vitest).
import { moduleBeside } from '@sandlock/dispatch';

/** The fs-meta module: chmod, utimes and extended attribute changes done on behalf; always on. */
export const FS_META_MODULE: URL = moduleBeside(import.meta.url, 'fs-meta');
