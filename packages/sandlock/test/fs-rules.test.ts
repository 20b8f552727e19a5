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

  it("leaves /proc's process directories and sensitive files out when processes are hidden", () => {
    const paths = (rules: { path: string }[]) => rules.map((rule) => rule.path);
    const hidden = filesystemRules(['/'], [], [], { hideProcesses: true });
    expect(paths(hidden)).not.toContain('/');
    expect(paths(hidden)).not.toContain('/proc');
    expect(paths(hidden)).toContain('/usr');
    expect(hidden.find((rule) => rule.path === '/proc/sys')).toEqual({
      path: '/proc/sys',
      intent: 'readExec',
      optional: true,
    });
    expect(paths(hidden).filter((path) => /^\/proc\/\d+$/.test(path))).toEqual([]);
    expect(paths(hidden)).not.toContain('/proc/kallsyms');
    expect(paths(hidden)).not.toContain('/proc/self');
    // Carving for fsDeny beneath /proc lists the process directories too: they go as well.
    const denied = filesystemRules(['/proc'], [], ['/proc/sys'], { hideProcesses: true });
    expect(paths(denied).filter((path) => /^\/proc\/\d+$/.test(path))).toEqual([]);
    expect(paths(denied)).not.toContain('/proc/sys');
    expect(paths(denied)).toContain('/proc/meminfo');
    // Without hiding, /proc is one rule.
    expect(paths(filesystemRules(['/proc'], [], []))).toEqual(['/proc']);
  });
});
