// @sandlock/dispatch/module must load nothing native: a package that only
// declares its modules, or a module file on the main thread, imports it.
// Checked in a fresh process on the built entry, by the shared objects the
// kernel has mapped in it (koffi's addon is a .node library).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));

/** Whether importing `entries` (in order) maps koffi's addon into a new node process. */
function mapsKoffiAfter(...entries: string[]): boolean {
  const script = `
    import { readFileSync } from 'node:fs';
    for (const entry of ${JSON.stringify(entries)}) await import(entry);
    process.stdout.write(String(/koffi/.test(readFileSync('/proc/self/maps', 'utf8'))));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: dist,
    encoding: 'utf8',
  });
  return JSON.parse(out) as boolean;
}

it('loads no koffi when importing @sandlock/dispatch/module, as the full entry does', () => {
  expect(existsSync(`${dist}module.js`), 'build @sandlock/dispatch first (pnpm build)').toBe(true);
  expect(mapsKoffiAfter('./module.js')).toBe(false);
  // The same check sees koffi when it is there.
  expect(mapsKoffiAfter('./module.js', './index.js')).toBe(true);
});
