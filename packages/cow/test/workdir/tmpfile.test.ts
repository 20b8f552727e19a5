// O_TMPFILE in the workdir: the unnamed file is made in the layer's
// directory, linkat(fd, "", AT_EMPTY_PATH) names it in the layer and
// commit brings it, and one never linked leaves nothing (linkat of
// /proc/self/fd/N is the kernel's EXDEV in a Landlock domain). Run once in a copy-on-write workdir and once
// directly on a copy of the tree (a sandbox with the same read rules that
// may write the copy): the same results and the same trees.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, PYTHON, python, runOnCopy, scratch, snapshot, storeEntries } from './helpers.js';

const root = scratch();
const storage = join(root, 'store');
afterAll(() => {
  chmodSync(join(root, 'cow', 'w', 'locked'), 0o755);
  chmodSync(join(root, 'copy', 'w', 'locked'), 0o755);
  cleanup(root);
});

const PROGRAM = `
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000

def res(f):
    try:
        r = f()
    except OSError as e:
        return errno.errorcode[e.errno]
    if isinstance(r, int):
        os.close(r)
        return 'fd'
    return 'ok'

def link_empty(fd, name):
    if libc.linkat(fd, b'', AT_FDCWD, name.encode(), AT_EMPTY_PATH) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

out = []
fd = os.open('sub', os.O_TMPFILE | os.O_WRONLY, 0o640)
os.write(fd, b'via proc\\n')
# EXDEV in a Landlock domain, whatever the directories (measured on 6.18).
out.append(res(lambda: os.link('/proc/self/fd/%d' % fd, 'sub/linked', follow_symlinks=True)))
out.append(res(lambda: link_empty(fd, 'sub/linked')))
fd2 = os.open('.', os.O_TMPFILE | os.O_RDWR, 0o600)
os.write(fd2, b'via empty path\\n')
out.append(res(lambda: link_empty(fd2, 'empty-linked')))
out.append(res(lambda: link_empty(fd2, 'empty-linked')))
out.append(res(lambda: link_empty(fd2, 'missing/x')))
fd3 = os.open('.', os.O_TMPFILE | os.O_WRONLY, 0o600)
os.write(fd3, b'never linked\\n')
os.close(fd3)
fd4 = os.open('.', os.O_TMPFILE | os.O_WRONLY | os.O_EXCL, 0o600)
out.append(res(lambda: link_empty(fd4, 'excl')))
out.append(res(lambda: os.open('a', os.O_TMPFILE | os.O_WRONLY)))
out.append(res(lambda: os.open('missing', os.O_TMPFILE | os.O_WRONLY)))
out.append(res(lambda: os.open('.', os.O_TMPFILE | os.O_RDONLY)))
out.append(res(lambda: os.open('locked', os.O_TMPFILE | os.O_WRONLY)))
os.write(fd, b'after the link\\n')
out.append(open('sub/linked').read())
out.append(oct(os.stat('sub/linked').st_mode & 0o777))
out.append(sorted(os.listdir('.')))
print(out)
`;

function makeTree(parent: string): string {
  const dir = join(parent, 'w');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  mkdirSync(join(dir, 'locked'));
  writeFileSync(join(dir, 'a'), 'alpha\n');
  chmodSync(join(dir, 'locked'), 0o555);
  return dir;
}

describe('O_TMPFILE in a copy-on-write workdir', () => {
  it('makes the file in the layer; linkat names it there, as the kernel on a copy', async () => {
    const copy = makeTree(join(root, 'copy'));
    const direct = await runOnCopy([PYTHON, '-c', PROGRAM], copy);
    expect(direct.stderr).toBe('');

    const tree = makeTree(join(root, 'cow'));
    const layered = await python(PROGRAM, { workdir: tree, storage });
    expect(layered.stderr).toBe('');
    expect(layered.stdout).toBe(direct.stdout);
    expect(layered.stdout).toContain("'via proc\\nafter the link\\n'");
    expect(snapshot(tree)).toBe(snapshot(copy));
    expect(storeEntries(storage)).toEqual([]);
  }, 120_000);
});
