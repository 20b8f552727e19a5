import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { filesystemRules } from '../src/fs-rules.js';

const dir = mkdtempSync(join(tmpdir(), 'sandlock-fs-rules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fsDeny carving', () => {
  it('allows the siblings along the way, as optional rules, and skips symlinks', () => {
    for (const name of ['a', 'a/hidden', 'a/kept', 'b']) mkdirSync(join(dir, name));
    symlinkSync('/etc', join(dir, 'link'));
    const rules = filesystemRules([dir], [], [join(dir, 'a', 'hidden')]);
    expect(rules.sort((x, y) => x.path.localeCompare(y.path))).toEqual([
      { path: join(dir, 'a', 'kept'), intent: 'readExec', optional: true },
      { path: join(dir, 'b'), intent: 'readExec', optional: true },
    ]);
    // Rules the policy names stay required.
    expect(filesystemRules([dir], [], [])).toEqual([{ path: dir, intent: 'readExec' }]);
  });
});
