import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests run against the TypeScript sources of every workspace package, so a
// test never needs a build first: `@sandlock/<name>` is its src/index.ts,
// a subpath `@sandlock/<name>/<entry>` its src/<entry>.ts.
const root = fileURLToPath(new URL('.', import.meta.url));
const alias = readdirSync(`${root}packages`).flatMap((name) => [
  { find: new RegExp(`^@sandlock/${name}$`), replacement: `${root}packages/${name}/src/index.ts` },
  {
    find: new RegExp(`^@sandlock/${name}/([\\w-]+)$`),
    replacement: `${root}packages/${name}/src/$1.ts`,
  },
]);

export default defineConfig({
  resolve: { alias },
  test: {
    include: [
      'packages/*/test/**/*.test.ts',
      'apps/*/test/**/*.test.ts',
      'examples/*/test/**/*.test.ts',
      'tools/*/test/**/*.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default', './tools/vitest/summary-reporter.ts'],
  },
});
