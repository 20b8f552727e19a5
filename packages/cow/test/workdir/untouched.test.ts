// The calls that only look (stat, access, readlink, an open for reading)
// are left to the kernel without a walk where the layer holds nothing on
// the path (untouchedPath). Each test looks first, then has the layer
// change what the path leads to, then looks again: a fast path that let
// the second look through to the kernel would show the real tree.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, python, scratch } from './helpers.js';

const root = scratch();
const storage = join(root, 'store');
afterAll(() => cleanup(root));
let count = 0;

/** A workdir holding `files` (path → content; a value {link} is a symlink). */
function tree(files: Record<string, string | { link: string }>): string {
  const dir = join(root, `w${count++}`);
  mkdirSync(dir);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    if (typeof content === 'string') writeFileSync(join(dir, path), content);
    else symlinkSync(content.link, join(dir, path));
  }
  return dir;
}

/**
 * A Python program that defines look(label, call): prints the label and
 * the call's value, or the errno's name.
 */
function program(...lines: string[]): string {
  return [
    'import errno, os, shutil',
    'def look(label, call):',
    '  try:',
    '    print(label, call())',
    '  except OSError as e:',
    '    print(label, errno.errorcode[e.errno])',
    'def read(path, **kw):',
    '  fd = os.open(path, os.O_RDONLY, **kw)',
    '  try:',
    '    return os.read(fd, 100).decode()',
    '  finally:',
    '    os.close(fd)',
    ...lines,
  ].join('\n');
}

async function run(dir: string, ...lines: string[]): Promise<string[]> {
  const result = await python(program(...lines), { workdir: dir, storage, onExit: 'abort' });
  expect(result.stderr).toBe('');
  return result.stdout.trimEnd().split('\n');
}

// The first sandbox of a file starts the supervisor from the sources: slow on a loaded machine.
describe('reads the layer holds nothing for', { timeout: 300_000 }, () => {
  it('sees an upper entry made after a first look', async () => {
    const dir = tree({ 'd/f': 'abc' });
    const lines = await run(
      dir,
      `absolute = ${JSON.stringify(dir)} + '/d/f'`,
      "look('lstat', lambda: os.lstat('d/f').st_size)",
      "look('stat', lambda: os.stat(absolute).st_size)",
      "look('read', lambda: read('d/f'))",
      "look('new', lambda: os.stat('d/new').st_size)",
      "with open('d/f', 'a') as f: f.write('defg')",
      "with open('d/new', 'w') as f: f.write('xy')",
      "look('lstat', lambda: os.lstat('d/f').st_size)",
      "look('stat', lambda: os.stat(absolute).st_size)",
      "look('read', lambda: read('d/f'))",
      "look('new', lambda: os.stat('d/new').st_size)",
      "look('access', lambda: os.access('d/new', os.R_OK))",
    );
    expect(lines).toEqual([
      'lstat 3',
      'stat 3',
      'read abc',
      'new ENOENT',
      'lstat 7',
      'stat 7',
      'read abcdefg',
      'new 2',
      'access True',
    ]);
  });

  it('hides what a whiteout deletes', async () => {
    const dir = tree({ 'd/f': 'f', 'e/g/h': 'h', link: { link: 'd/f' } });
    const lines = await run(
      dir,
      "look('f', lambda: os.stat('d/f').st_size)",
      "look('h', lambda: read('e/g/h'))",
      "look('link', lambda: os.readlink('link'))",
      "os.unlink('d/f'); shutil.rmtree('e'); os.unlink('link')",
      "look('f', lambda: os.stat('d/f').st_size)",
      "look('f access', lambda: os.access('d/f', os.F_OK))",
      "look('h', lambda: read('e/g/h'))",
      "look('h stat', lambda: os.lstat('e/g/h'))",
      "look('link', lambda: os.readlink('link'))",
    );
    expect(lines).toEqual([
      'f 1',
      'h h',
      'link d/f',
      'f ENOENT',
      'f access False',
      'h ENOENT',
      'h stat ENOENT',
      'link ENOENT',
    ]);
  });

  it('follows a rename of a directory of the real tree', async () => {
    const dir = tree({ 'a/f': 'in a', 'a/sub/g': 'g' });
    const lines = await run(
      dir,
      "look('a', lambda: read('a/f'))",
      "look('b', lambda: read('b/f'))",
      "os.rename('a', 'b')",
      "look('a', lambda: read('a/f'))",
      "look('a stat', lambda: os.stat('a/sub/g').st_size)",
      "look('b', lambda: read('b/f'))",
      "look('b stat', lambda: os.stat('b/sub/g').st_size)",
    );
    expect(lines).toEqual([
      'a in a',
      'b ENOENT',
      'a ENOENT',
      'a stat ENOENT',
      'b in a',
      'b stat 1',
    ]);
  });

  it('follows a symlink of the real tree into a directory the layer changed', async () => {
    const dir = tree({
      'd/f': 'old',
      link: { link: 'd' },
      'sub/up': { link: '../d' },
      file: { link: 'd/f' },
    });
    symlinkSync(join(dir, 'd'), join(dir, 'absolute'));
    const lines = await run(
      dir,
      "look('link', lambda: read('link/f'))",
      "look('up', lambda: os.stat('sub/up/f').st_size)",
      "with open('d/f', 'w') as f: f.write('changed')",
      "look('link', lambda: read('link/f'))",
      "look('link stat', lambda: os.stat('link/f').st_size)",
      "look('up', lambda: os.stat('sub/up/f').st_size)",
      "look('absolute', lambda: read('absolute/f'))",
      "look('file', lambda: os.stat('file').st_size)",
      "look('file read', lambda: read('file'))",
    );
    expect(lines).toEqual([
      'link old',
      'up 3',
      'link changed',
      'link stat 7',
      'up 7',
      'absolute changed',
      'file 7',
      'file read changed',
    ]);
  });

  it('takes `..` in the merged view: not past a deleted directory, into a changed one', async () => {
    const dir = tree({ 'd/x': 'x', 'e/f': 'f', 'g/h': 'h' });
    const lines = await run(
      dir,
      "look('before', lambda: os.stat('d/../e/f').st_size)",
      "look('into', lambda: read('e/../g/h'))",
      "shutil.rmtree('d')",
      "with open('g/h', 'w') as f: f.write('changed')",
      "look('after', lambda: os.stat('d/../e/f').st_size)",
      "look('read', lambda: read('d/../e/f'))",
      "look('into', lambda: read('e/../g/h'))",
      "look('into stat', lambda: os.stat('e/../g/h').st_size)",
    );
    expect(lines).toEqual([
      'before 1',
      'into h',
      'after ENOENT',
      'read ENOENT',
      'into changed',
      'into stat 7',
    ]);
  });

  it('checks search permission on a directory whose mode the layer changed', async () => {
    const dir = tree({ 'd/f': 'f' });
    const lines = await run(
      dir,
      "look('before', lambda: os.stat('d/f').st_size)",
      "os.chmod('d', 0)",
      "look('after', lambda: os.stat('d/f').st_size)",
      "look('read', lambda: read('d/f'))",
    );
    // The sandbox has no capabilities: search permission is its own.
    expect(lines).toEqual(['before 1', 'after EACCES', 'read EACCES']);
  });

  it('looks beneath a descriptor of a directory of the layer in the merged view', async () => {
    const dir = tree({ 'd/f': 'lower' });
    const lines = await run(
      dir,
      "os.mkdir('n'); open('n/x', 'w').write('new')",
      "fd = os.open('n', os.O_RDONLY | os.O_DIRECTORY)",
      "look('x', lambda: read('x', dir_fd=fd))",
      "look('x stat', lambda: os.stat('x', dir_fd=fd).st_size)",
      "os.chdir('n')",
      "look('cwd', lambda: read('x'))",
      "look('up', lambda: read('../d/f'))",
    );
    expect(lines).toEqual(['x new', 'x stat 3', 'cwd new', 'up lower']);
  });
});
