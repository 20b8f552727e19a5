import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests run against the TypeScript sources of every workspace package, so a
// test never needs a build first.
const root = fileURLToPath(new URL('.', import.meta.url));
const alias = readdirSync(`${root}packages`).map((name) => ({
  find: new RegExp(`^@sandlock/${name}$`),
  replacement: `${root}packages/${name}/src/index.ts`,
}));

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
