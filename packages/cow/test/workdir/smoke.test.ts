import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, python, runIn, scratch, snapshot } from './helpers.js';

const root = scratch();
const storage = join(root, 'store');
afterAll(() => cleanup(root));

describe('smoke', () => {
  it('reads, writes and commits', async () => {
    const dir = join(root, 'w1');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.txt'), 'original\n');
    const result = await runIn(['/bin/sh', '-c', 'cat a.txt; echo more >> a.txt; echo new > b.txt; cat a.txt b.txt; ls'], {
      workdir: dir,
      storage,
      end: 'defer',
    });
    console.log(result.stdout, result.stderr, result.exitCode, result.workdir?.changes);
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('original\n');
    await result.workdir!.commit();
    console.log(snapshot(dir));
  });
});
