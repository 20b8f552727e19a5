import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';
import { appBundle, supervisorModules } from '../../tsup.config.base.js';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

export default defineConfig([
  // The runtime: one CommonJS file with every workspace package inside; only
  // koffi (native) stays outside. `import.meta.url` is shimmed to this file's
  // URL, so the supervisor finds its worker and modules (supervisorModules, as
  // the CLI's) beside it.
  {
    ...appBundle,
    entry: { main: 'src/main.ts', supervisor: 'src/supervisor-main.ts' },
    format: ['cjs'],
    outExtension: () => ({ js: '.cjs' }),
    shims: true,
    define: { SANDLOCK_OCI_VERSION: JSON.stringify(version) },
    clean: true,
  },
  supervisorModules,
]);
