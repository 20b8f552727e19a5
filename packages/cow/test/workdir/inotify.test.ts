// inotify_add_watch in a copy-on-write workdir: a watch is on what the
// sandbox sees (the layer's file or directory where the layer has it),
// with the kernel's errors and watch descriptors. Run once in the workdir
// and once directly on a copy of the tree (a sandbox with the same read
// rules that may write the copy): the same results and events.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, PYTHON, python, runOnCopy, scratch } from './helpers.js';

const root = scratch();
const storage = join(root, 'store');
afterAll(() => cleanup(root));

const PRELUDE = `
import ctypes, errno, os, struct
libc = ctypes.CDLL(None, use_errno=True)
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_CREATE, IN_DELETE = 0x100, 0x200
IN_ONLYDIR, IN_DONT_FOLLOW = 0x01000000, 0x02000000
ino = libc.inotify_init1(os.O_NONBLOCK)

def watch(path, mask, fd=None):
    wd = libc.inotify_add_watch(ino if fd is None else fd, path.encode(), mask)
    return wd if wd >= 0 else errno.errorcode[ctypes.get_errno()]

def events():
    out = []
    try:
        data = os.read(ino, 65536)
    except BlockingIOError:
        return out
    at = 0
    while at < len(data):
        wd, mask, cookie, length = struct.unpack_from('iIII', data, at)
        out.append((wd, hex(mask), data[at + 16:at + 16 + length].rstrip(b'\\0').decode()))
        at += 16 + length
    return out
`;

const PROGRAM = `${PRELUDE}
with open('new.txt', 'w') as f:
    f.write('x')
os.symlink('new.txt', 'link')
open('mine', 'w').close()
os.chmod('mine', 0)
with open('a', 'a') as f:
    f.write('copied up\\n')
out = []
out.append(watch('new.txt', IN_MODIFY))
out.append(watch('.', IN_CREATE | IN_DELETE))
out.append(watch('a', IN_MODIFY))
out.append(watch('link', IN_ATTRIB | IN_DONT_FOLLOW))
out.append(watch('link', IN_ATTRIB))
out.append(watch('new.txt', IN_MODIFY | IN_ONLYDIR))
out.append(watch('missing', IN_MODIFY))
out.append(watch('mine', IN_MODIFY))
out.append(watch('new.txt', 0))
out.append(watch('new.txt', IN_MODIFY, fd=0))
out.append(watch('sub', IN_CREATE))
with open('new.txt', 'a') as f:
    f.write('more')
with open('a', 'a') as f:
    f.write('again\\n')
open('made', 'w').close()
os.unlink('made')
os.chmod('new.txt', 0o600)
open('sub/in-lower-dir', 'w').close()
out.append(events())
print(out)
`;

function makeTree(parent: string): string {
  const dir = join(parent, 'w');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'a'), 'alpha\n');
  return dir;
}

describe('inotify_add_watch in a copy-on-write workdir', () => {
  it('watches what the sandbox sees, as the kernel on a copy', async () => {
    const copy = makeTree(join(root, 'copy'));
    const direct = await runOnCopy([PYTHON, '-c', PROGRAM], copy);
    expect(direct.stderr).toBe('');
    chmodSync(join(copy, 'mine'), 0o600);

    const tree = makeTree(join(root, 'cow'));
    const layered = await python(PROGRAM, { workdir: tree, storage, onExit: 'abort' });
    expect(layered.stderr).toBe('');
    // The one difference allowed (docs/design.md): a lower directory the
    // layer copies up (here to watch it) is IN_CREATE|IN_ISDIR to a watch
    // on its parent in the layer.
    const copiedUp = "(2, '0x40000100', 'sub'), ";
    expect(layered.stdout.split(copiedUp).length).toBeLessThanOrEqual(2);
    expect(layered.stdout.replace(copiedUp, '')).toBe(direct.stdout);
    expect(layered.stdout).toContain("(3, '0x2', '')");
    expect(layered.stdout).toContain("(2, '0x100', 'made')");
    expect(layered.stdout).toContain("'0x100', 'in-lower-dir')");
  }, 120_000);

  it('a watch on a lower file follows its copy-up, as on overlayfs (the file is copied up to be watched)', async () => {
    const program = `${PRELUDE}
print(watch('a', IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE))
with open('a', 'a') as f:
    f.write('copied up\\n')
os.chmod('a', 0o600)
print(events())
`;
    const direct = await runOnCopy([PYTHON, '-c', program], makeTree(join(root, 'follow-copy')));
    expect(direct.stderr).toBe('');
    expect(direct.stdout).toBe("1\n[(1, '0x2', ''), (1, '0x8', ''), (1, '0x4', '')]\n");
    const tree = makeTree(join(root, 'follow'));
    const layered = await python(program, { workdir: tree, storage, onExit: 'commit' });
    expect(layered.stderr).toBe('');
    expect(layered.stdout).toBe(direct.stdout);
    expect(readFileSync(join(tree, 'a'), 'utf8')).toBe('alpha\ncopied up\n');
  }, 60_000);

  it('a watch alone copies a lower file up, unchanged: nothing to commit', async () => {
    const tree = makeTree(join(root, 'watch-only'));
    const layered = await python(`${PRELUDE}\nprint(watch('a', IN_MODIFY))\n`, {
      workdir: tree,
      storage,
      end: 'defer',
    });
    try {
      expect(layered.stdout).toBe('1\n');
      expect(layered.workdir!.changes).toEqual([]);
    } finally {
      layered.workdir!.abort();
    }
  }, 60_000);
});
