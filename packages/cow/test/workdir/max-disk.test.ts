// maxDisk against what a sandbox writes through the descriptors of layer
// files it was given (the kernel's, not the layer's, writes): each file
// stops at maxDisk (RLIMIT_FSIZE), and the sum is measured and the sandbox
// killed past it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Layer } from '../../src/layer/index.js';
import { cleanup, python, runIn, scratch } from './helpers.js';

const root = scratch();
const storage = join(root, 'store');
afterAll(() => cleanup(root));
let count = 0;

function tree(): string {
  const dir = join(root, `w${count++}`);
  mkdirSync(dir);
  return dir;
}

const sh = (script: string) => ['/bin/sh', '-c', script];
const MAX = 1024 * 1024;

describe('maxDisk through injected descriptors', () => {
  it('stops one file at maxDisk: the write past it fails', async () => {
    const dir = tree();
    const result = await runIn(sh('dd if=/dev/zero of=big bs=64k count=100 2>/dev/null'), {
      workdir: dir,
      storage,
      maxDisk: MAX,
      end: 'defer',
    });
    try {
      // EFBIG, or SIGXFSZ (its default action ends dd).
      expect(result.exitCode).not.toBe(0);
      expect(statSync(join(result.workdir!.upper!, 'big')).size).toBeLessThanOrEqual(MAX);
    } finally {
      result.workdir!.abort();
    }
  });

  it('kills the sandbox when files each within maxDisk together go over it', async () => {
    const dir = tree();
    const result = await runIn(
      sh('head -c 700000 /dev/zero > one; head -c 700000 /dev/zero > two; sleep 30; echo survived'),
      { workdir: dir, storage, maxDisk: MAX, onExit: 'commit', onError: 'abort' },
    );
    expect(result.stdout).toBe('');
    expect(result.killedBy?.message).toMatch(/over maxDisk/);
    expect(result.workdir!.done).toBe('abort');
    expect(existsSync(join(dir, 'one'))).toBe(false);
  }, 60_000);

  it('does not commit a layer over maxDisk when the program ends before a measure', async () => {
    const dir = tree();
    const result = await runIn(
      sh('head -c 700000 /dev/zero > one; head -c 700000 /dev/zero > two'),
      { workdir: dir, storage, maxDisk: MAX, onExit: 'commit', onError: 'abort' },
    );
    // Killed by a measure meanwhile, or ended first: aborted either way.
    expect(result.workdir!.done).toBe('abort');
    expect(existsSync(join(dir, 'one'))).toBe(false);
    expect(existsSync(join(dir, 'two'))).toBe(false);
  });

  it('lets writes within maxDisk through and commits them', async () => {
    const dir = tree();
    const result = await runIn(
      sh('head -c 500000 /dev/zero > one; dd if=/dev/zero of=two bs=1000 count=400 2>/dev/null'),
      { workdir: dir, storage, maxDisk: MAX, onExit: 'commit' },
    );
    expect(result.exitCode).toBe(0);
    expect(result.killedBy).toBeNull();
    expect(readFileSync(join(dir, 'one')).length).toBe(500000);
    expect(statSync(join(dir, 'two')).size).toBe(400000);
  });

  // fallocate(2) with FALLOC_FL_KEEP_SIZE allocates past the end of file, unbounded by
  // RLIMIT_FSIZE: 64 MiB on a layer bounded to 1 MiB.
  const KEEP_SIZE = 'touch big; fallocate -n -l 64M big; echo "rc $?"; ls -s big';

  it('refuses fallocate that keeps the size (control: the same allocation without maxDisk)', async () => {
    const control = await runIn(sh(KEEP_SIZE), { workdir: tree(), storage, end: 'defer' });
    try {
      expect(control.stdout).toMatch(/^rc 0\n6553[0-9] big\n$/);
    } finally {
      control.workdir!.abort();
    }
    const result = await runIn(sh(KEEP_SIZE), {
      workdir: tree(),
      storage,
      maxDisk: MAX,
      end: 'defer',
    });
    try {
      expect(result.stdout).toBe('rc 1\n0 big\n');
      expect(statSync(join(result.workdir!.upper!, 'big')).blocks).toBe(0);
    } finally {
      result.workdir!.abort();
    }
  }, 60_000);

  it('measures the blocks a file holds past its size', () => {
    const lower = tree();
    const layer = Layer.create({ lower, storage, maxDisk: MAX });
    try {
      writeFileSync(join(layer.upper, 'small'), 'x');
      writeFileSync(join(layer.upper, 'big'), '');
      expect(layer.measure()).toBe(1);
      execFileSync('fallocate', ['-n', '-l', '4M', join(layer.upper, 'big')]);
      expect(statSync(join(layer.upper, 'big')).size).toBe(0);
      expect(layer.measure()).toBeGreaterThanOrEqual(1 + 4 * MAX);
    } finally {
      layer.abort();
    }
  });

  // Three files of 700000 bytes each within maxDisk, together over it, that no name leads
  // to while the program holds them open.
  const holding = (kind: 'tmpfile' | 'unlinked') => `
import os, time
fds = []
for i in range(3):
    if '${kind}' == 'tmpfile':
        fd = os.open('.', os.O_TMPFILE | os.O_WRONLY, 0o600)
    else:
        fd = os.open('f%d' % i, os.O_CREAT | os.O_WRONLY, 0o600)
        os.unlink('f%d' % i)
    os.write(fd, bytes(700000))
    fds.append(fd)
print('holding', flush=True)
time.sleep(20)
print('survived', flush=True)
`;

  it.each(['tmpfile', 'unlinked'] as const)(
    'counts the files the sandbox holds open with no name left (%s)',
    async (kind) => {
      // Control: without maxDisk the program holds them to its end.
      const control = await python(holding(kind).replace('20', '0'), {
        workdir: tree(),
        storage,
      });
      expect(control.stdout).toBe('holding\nsurvived\n');
      const result = await python(holding(kind), {
        workdir: tree(),
        storage,
        maxDisk: MAX,
        onExit: 'commit',
        onError: 'abort',
      });
      expect(result.stdout).not.toContain('survived');
      expect(result.killedBy?.message).toMatch(/over maxDisk/);
    },
    90_000,
  );

  it('counts a file of the layer once whatever its hard links', async () => {
    const dir = tree();
    const result = await runIn(
      sh('head -c 700000 /dev/zero > one; ln one two; ln one three; sleep 1; echo survived'),
      { workdir: dir, storage, maxDisk: MAX, onExit: 'commit', onError: 'abort' },
    );
    expect(result.killedBy).toBeNull();
    expect(result.stdout).toBe('survived\n');
    expect(statSync(join(dir, 'three')).size).toBe(700000);
  }, 60_000);
});
