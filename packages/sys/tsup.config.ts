import { defineConfig } from 'tsup';
import { libraryBuild } from '../../tsup.config.base.js';

// Two entries: the bindings, and the errno table alone (@sandlock/sys/errno),
// which loads no koffi: @sandlock/dispatch/module's answers use it.
export default defineConfig({ ...libraryBuild, entry: ['src/index.ts', 'src/errno.ts'] });
