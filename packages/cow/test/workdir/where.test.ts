// chdir, fchdir, getcwd, relative opens, execve and execveat (binaries and
// `#!` scripts) in a copy-on-write workdir, against the kernel: the same
// program run once in the workdir and once directly on a copy of the tree
// (a sandbox with the same read rules that may write the copy) prints the
// same results and errnos (ENOENT, ENOTDIR, EACCES for a directory that
// cannot be searched, ELOOP).
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, PYTHON, python, runOnCopy, scratch } from './helpers.js';

const PROGRAM = readFileSync(fileURLToPath(new URL('./where.py', import.meta.url)), 'utf8');
const root = scratch();
const storage = join(root, 'store');
afterAll(() => {
  chmodSync(join(root, 'copy', 'w', 'locked'), 0o755);
  cleanup(root);
});

function makeTree(parent: string): string {
  const dir = join(parent, 'w');
  mkdirSync(join(dir, 'lowerdir'), { recursive: true });
  writeFileSync(join(dir, 'lowerdir', 'x'), 'x\n');
  return dir;
}

describe('chdir and exec in a copy-on-write workdir', () => {
  it('give the results and errnos the kernel gives on a copy of the tree', async () => {
    const copy = makeTree(join(root, 'copy'));
    const direct = await runOnCopy([PYTHON, '-c', PROGRAM], copy);
    expect(direct.stderr).toBe('');

    const tree = makeTree(join(root, 'cow'));
    const layered = await python(PROGRAM, { workdir: tree, storage, onExit: 'abort' });
    expect(layered.stderr).toBe('');
    expect(layered.stdout).toBe(direct.stdout);
    expect(layered.stdout).toContain('script exec ./s.sh in <w>/new');
    expect(layered.stdout).toContain('chdir locked: EACCES');
  }, 180_000);
});
