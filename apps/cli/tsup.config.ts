import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

// One CommonJS file with every workspace package inside; only koffi (native)
// stays outside. bin/sandlock.cjs loads it through V8's code cache.
export default defineConfig({
  entry: { main: 'src/main.ts' },
  format: ['cjs'],
  outExtension: () => ({ js: '.cjs' }),
  target: 'node20',
  platform: 'node',
  bundle: true,
  noExternal: [/^@sandlock\//, /^sandlock$/],
  external: ['koffi'],
  define: { SANDLOCK_VERSION: JSON.stringify(version) },
  sourcemap: false,
  clean: true,
});
