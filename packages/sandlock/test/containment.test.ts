import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modulePolicy } from '@sandlock/policy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesystemRules } from '../src/fs-rules.js';
import { DEFAULT_POLICY } from '../src/policy.js';
import { systemBuilder } from './helpers.js';

// The policy's paths are compared by whole names, however they are written.
let tree: string;
beforeAll(() => {
  tree = join(mkdtempSync(join(tmpdir(), 'sandlock-fs-deny-')), 'a');
  for (const name of ['..foo', '.x', 'kept']) {
    mkdirSync(join(tree, name), { recursive: true });
    writeFileSync(join(tree, name, 's'), `${name}\n`);
  }
});
afterAll(() => rmSync(join(tree, '..'), { recursive: true, force: true }));

/** What the sandbox prints for `cat` of each file, or `denied` (cat's errors go to stderr). */
async function reads(deny: readonly string[], files: readonly string[]): Promise<string> {
  const script = files.map((file) => `cat '${file}' || echo denied`).join('; ');
  const result = await systemBuilder()
    .fsRead(tree)
    .fsDeny(...deny)
    .build()
    .run(['/bin/sh', '-c', script]);
  expect(result.exitCode).toBe(0);
  return result.stdout.toString();
}

describe('fsDeny of a name beginning with `..`', () => {
  it('cuts it out of the rules of the tree that holds it', () => {
    const rules = filesystemRules([tree], [], [join(tree, '..foo')]);
    expect(rules.map((rule) => rule.path).sort()).toEqual([join(tree, '.x'), join(tree, 'kept')]);
  });

  it('leaves the file unreadable in the sandbox, and readable without the deny', async () => {
    const files = [join(tree, '..foo', 's'), join(tree, '.x', 's'), join(tree, 'kept', 's')];
    expect(await reads([join(tree, '..foo')], files)).toBe('denied\n.x\nkept\n');
    expect(await reads([], files)).toBe('..foo\n.x\nkept\n');
    // Written with a trailing slash and a `.` component: the same tree.
    expect(await reads([`${tree}/./..foo/`], files)).toBe('denied\n.x\nkept\n');
  });
});

describe('hiding processes', () => {
  it('is off where fsWrite holds /proc, however it is written', () => {
    for (const written of ['/proc', '/proc/', '//proc', '/', '/proc/./']) {
      expect(
        modulePolicy({ ...DEFAULT_POLICY, fsRead: ['/'], fsWrite: [written] }).hidesProcesses,
        written,
      ).toBe(false);
    }
    expect(
      modulePolicy({ ...DEFAULT_POLICY, fsRead: ['/'], fsWrite: ['/proc/sys'] }).hidesProcesses,
    ).toBe(true);
    expect(
      modulePolicy({ ...DEFAULT_POLICY, fsRead: ['/'], fsWrite: ['/procfs'] }).hidesProcesses,
    ).toBe(true);
  });
});
