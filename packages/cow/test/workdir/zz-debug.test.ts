import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'vitest';
import { cleanup, PYTHON, runIn, scratch, snapshot, withoutCapabilities } from './helpers.js';
const OPS = readFileSync(fileURLToPath(new URL('./ops.py', import.meta.url)), 'utf8');
it('debug', async () => {
  const root = scratch();
  const dir = join(root, 't');
  mkdirSync(join(dir, 'd', 's'), { recursive: true });
  mkdirSync(join(dir, 'e'));
  writeFileSync(join(dir, 'a'), 'alpha\n');
  writeFileSync(join(dir, 'd', 'x'), 'ex\n', { mode: 0o640 });
  writeFileSync(join(dir, 'd', 's', 't'), 'tee\n');
  symlinkSync('d/x', join(dir, 'l'));
  const copy = `${dir}-copy`;
  cpSync(dir, copy, { recursive: true, verbatimSymlinks: true });
  const ops = JSON.parse(process.env.OPS ?? '[]');
  const expected = execFileSync(...withoutCapabilities([PYTHON, '-c', OPS, JSON.stringify(ops)]), {
    cwd: copy,
    encoding: 'utf8',
  });
  const result = await runIn([PYTHON, '-c', OPS, JSON.stringify(ops)], {
    workdir: dir,
    storage: join(root, 's'),
  });
  console.log('EXPECTED', expected, 'GOT', result.stdout, result.stderr);
  const a = snapshot(dir, false),
    b = snapshot(copy, false);
  if (a !== b) console.log('TREES DIFFER\n' + a + '\n----\n' + b);
  cleanup(root);
});
