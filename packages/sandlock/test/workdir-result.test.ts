// A run's result with a workdir carries the layer's changes, commit() and
// abort() at its top (issue #16: `result.changes`, `result.commit()`).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { systemBuilder } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sandlock-result-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'kept.txt'), 'old\n');
  return dir;
}

const SCRIPT = 'echo new > added.txt && echo changed > kept.txt';

describe('a run with a workdir', () => {
  it('lists the changes on the result and commits them when asked', async () => {
    const dir = tree();
    const result = await systemBuilder()
      .workdir(dir)
      .cwd(dir)
      .build()
      .run(['/bin/sh', '-c', SCRIPT], { workdirEnd: 'defer' });
    expect(result.exitCode).toBe(0);
    expect(result.changes?.map((change) => [change.type, change.path]).sort()).toEqual([
      ['A', 'added.txt'],
      ['M', 'kept.txt'],
    ]);
    expect(result.changes).toBe(result.workdir?.changes);
    expect(existsSync(join(dir, 'added.txt'))).toBe(false);
    await result.commit!();
    expect(readFileSync(join(dir, 'added.txt'), 'utf8')).toBe('new\n');
    expect(readFileSync(join(dir, 'kept.txt'), 'utf8')).toBe('changed\n');
  });

  it('leaves the tree as it was when the result is aborted', async () => {
    const dir = tree();
    const result = await systemBuilder()
      .workdir(dir)
      .cwd(dir)
      .build()
      .run(['/bin/sh', '-c', SCRIPT], { workdirEnd: 'defer' });
    expect(result.changes?.length).toBe(2);
    result.abort!();
    expect(existsSync(join(dir, 'added.txt'))).toBe(false);
    expect(readFileSync(join(dir, 'kept.txt'), 'utf8')).toBe('old\n');
  });

  it('has no changes, commit or abort without a workdir', async () => {
    const result = await systemBuilder().build().run(['/bin/true']);
    expect(result.exitCode).toBe(0);
    expect('changes' in result || 'commit' in result || 'abort' in result).toBe(false);
  });
});
