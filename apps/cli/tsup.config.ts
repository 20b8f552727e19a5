import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';
import { appBundle, supervisorModules } from '../../tsup.config.base.js';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

export default defineConfig([
  // The CLI: one CommonJS file with every workspace package inside; only
  // koffi (native) stays outside. bin/sandlock.cjs loads it through V8's code
  // cache. `import.meta.url` is shimmed to this file's URL, so the supervisor
  // finds its worker and modules beside it.
  {
    ...appBundle,
    entry: { main: 'src/main.ts' },
    format: ['cjs'],
    outExtension: () => ({ js: '.cjs' }),
    shims: true,
    define: { SANDLOCK_VERSION: JSON.stringify(version) },
    clean: true,
  },
  supervisorModules,
]);
