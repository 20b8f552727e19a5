// getxattrat and listxattrat (Linux 6.13) in a workdir read what the merged
// view shows, as the kernel alone does on a copy of the tree: an attribute
// changed in the layer, a file the layer removed, a path from a directory
// descriptor, a symlink not followed.
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { syscallNumber } from '@sandlock/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, python, runOnCopy, scratch } from './helpers.js';

const dirs: string[] = [];
afterAll(() => cleanup(...dirs));

const PROGRAM = `
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
L = ctypes.c_long  # every integer a full register: a variadic int leaves the upper half unset
GET, LIST = ${syscallNumber('getxattrat')}, ${syscallNumber('listxattrat')}
AT_FDCWD, NOFOLLOW = -100, 0x100
def get(dirfd, path, name, flags=0):
    value = ctypes.create_string_buffer(64)
    args = struct.pack('QII', ctypes.addressof(value), 64, 0)
    r = libc.syscall(L(GET), L(dirfd), path.encode(), L(flags), name.encode(), args, L(len(args)))
    return value.raw[:r].decode() if r >= 0 else 'errno %d' % ctypes.get_errno()
def names(dirfd, path, flags=0):
    out = ctypes.create_string_buffer(256)
    r = libc.syscall(L(LIST), L(dirfd), path.encode(), L(flags), out, L(256))
    if r < 0: return 'errno %d' % ctypes.get_errno()
    return ','.join(sorted(n.decode() for n in out.raw[:r].split(b'\\0') if n.startswith(b'user.')))
os.setxattr('kept', 'user.color', b'blue')
os.setxattr('kept', 'user.added', b'yes')
os.unlink('gone')
print('kept', get(AT_FDCWD, 'kept', 'user.color'), names(AT_FDCWD, 'kept'))
print('gone', get(AT_FDCWD, 'gone', 'user.color'), names(AT_FDCWD, 'gone'))
d = os.open('sub', os.O_RDONLY | os.O_DIRECTORY)
os.setxattr('sub/inner', 'user.color', b'green')
print('inner', get(d, 'inner', 'user.color'), names(d, 'inner'))
print('link', get(AT_FDCWD, 'link', 'user.color', NOFOLLOW), get(AT_FDCWD, 'link', 'user.color'))
print('untouched', get(AT_FDCWD, 'plain', 'user.color'))
print('bad flags', get(AT_FDCWD, 'kept', 'user.color', 0x1))
`;

function tree(): string {
  const dir = scratch('cow-xattr-at-');
  dirs.push(dir);
  for (const name of ['kept', 'gone', 'plain']) writeFileSync(join(dir, name), `${name}\n`);
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'inner'), 'inner\n');
  symlinkSync('kept', join(dir, 'link'));
  return dir;
}

describe('getxattrat and listxattrat in a workdir', () => {
  it('read the merged view, as the kernel alone reads a copy', async () => {
    const workdir = tree();
    const storage = scratch('cow-xattr-at-store-');
    dirs.push(storage);
    // The lower's attributes, before the sandbox changes them in its layer.
    const seed = await runOnCopy(
      [
        'python3',
        '-c',
        "import os\nfor f in ('kept', 'gone', 'plain', 'sub/inner'): os.setxattr(f, 'user.color', b'red')",
      ],
      workdir,
    );
    expect(seed.stderr).toBe('');
    const copy = scratch('cow-xattr-at-copy-');
    dirs.push(copy);
    // cp -a keeps the attributes (Node's cpSync does not).
    execFileSync('cp', ['-a', `${workdir}/.`, copy]);
    const kernel = await runOnCopy(['python3', '-c', PROGRAM], copy);
    expect(kernel.stderr).toBe('');
    expect(kernel.stdout).toContain('kept blue user.added,user.color');
    const inWorkdir = await python(PROGRAM, { workdir, storage, onExit: 'abort' });
    expect(inWorkdir.stderr).toBe('');
    expect(inWorkdir.stdout).toBe(kernel.stdout);
  });
});
