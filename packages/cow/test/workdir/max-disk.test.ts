// maxDisk against what a sandbox writes through the descriptors of layer
// files it was given (the kernel's, not the layer's, writes). With
// CAP_SYS_ADMIN the upper is a tmpfs of maxDisk bytes: a write past it fails
// with ENOSPC and the program goes on. Otherwise (and below one page) it is
// measured: each file stops at maxDisk (RLIMIT_FSIZE), and the sum is
// measured and the sandbox killed past it.
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { threadCapabilities } from '@sandlock/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { Layer } from '../../src/layer/index.js';
import { cleanup, python, runIn, scratch, storeEntries } from './helpers.js';

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

const CAP_SYS_ADMIN = 21n;
const canMount = ((threadCapabilities().effective >> CAP_SYS_ADMIN) & 1n) === 1n;
if (!canMount) {
  console.log('maxDisk tmpfs tests skipped: mounting a tmpfs needs CAP_SYS_ADMIN (run as root)');
}

/** The bytes of the regular files beneath `dir`. */
function bytesIn(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const stat = lstatSync(join(dir, name));
    if (stat.isDirectory()) total += bytesIn(join(dir, name));
    else if (stat.isFile()) total += stat.size;
  }
  return total;
}

/** Mount points beneath `dir` in this process's mount namespace. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point.startsWith(`${dir}/`));
}

describe.skipIf(!canMount)('maxDisk on a tmpfs upper (CAP_SYS_ADMIN)', () => {
  it('fails a write past maxDisk with ENOSPC; the program sees it and goes on', async () => {
    const dir = tree();
    const result = await runIn(
      // Its messages to a pipe: a file of the layer would be full too.
      sh(
        '{ dd if=/dev/zero of=big bs=64k count=100; echo "dd=$?"; } 2>&1 | grep -E "No space left on device|^dd="',
      ),
      { workdir: dir, storage, maxDisk: MAX, end: 'defer' },
    );
    try {
      expect(result.killedBy).toBeNull();
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toBe("dd: error writing 'big': No space left on device\ndd=1\n");
      expect(result.workdir!.diskBound).toBe('tmpfs');
      const upper = result.workdir!.upper!;
      expect(statSync(join(upper, 'big')).size).toBeLessThanOrEqual(MAX);
      expect(bytesIn(upper)).toBeLessThanOrEqual(MAX);
    } finally {
      result.workdir!.abort();
    }
  });

  it('commits what fits when the program cleans up after ENOSPC', async () => {
    const dir = tree();
    const result = await runIn(
      sh(
        'head -c 300000 /dev/urandom > kept; if ! dd if=/dev/zero of=big bs=64k count=100 2>/dev/null; then rm big; fi',
      ),
      { workdir: dir, storage, maxDisk: MAX, onExit: 'commit', onError: 'abort' },
    );
    expect(result.exitCode).toBe(0);
    expect(result.workdir!.done).toBe('commit');
    expect(statSync(join(dir, 'kept')).size).toBe(300000);
    expect(existsSync(join(dir, 'big'))).toBe(false);
    expect(storeEntries(storage)).toEqual([]);
    expect(mountsUnder(storage)).toEqual([]);
  });

  it('keeps k writers in parallel under maxDisk together', async () => {
    const dir = tree();
    // 8 writers of 512 KiB each against 1 MiB: at most two fit.
    const writers = Array.from(
      { length: 8 },
      (_, index) => `(dd if=/dev/zero of=f${index} bs=4k count=128 2>/dev/null; echo "w$?") &`,
    ).join(' ');
    const result = await runIn(sh(`${writers} wait`), {
      workdir: dir,
      storage,
      maxDisk: MAX,
      end: 'defer',
    });
    try {
      expect(result.killedBy).toBeNull();
      expect(result.exitCode).toBe(0);
      // Every writer ended, some of them failing (ENOSPC); none was killed.
      const statuses = result.stdout.trim().split('\n').sort();
      expect(statuses).toHaveLength(8);
      expect(statuses).toContain('w1');
      expect(statuses.every((status) => status === 'w0' || status === 'w1')).toBe(true);
      expect(bytesIn(result.workdir!.upper!)).toBeLessThanOrEqual(MAX);
    } finally {
      result.workdir!.abort();
    }
  });

  it('leaves no layer and no mount after a sandbox that timed out', async () => {
    const dir = tree();
    const result = await runIn(sh('head -c 100000 /dev/zero > one; sleep 60'), {
      workdir: dir,
      storage,
      maxDisk: MAX,
      timeout: 2_000,
    });
    expect(result.timedOut).toBe(true);
    expect(result.workdir!.done).toBe('abort');
    expect(existsSync(join(dir, 'one'))).toBe(false);
    expect(storeEntries(storage)).toEqual([]);
    expect(mountsUnder(storage)).toEqual([]);
  }, 60_000);

  it('does not cap files outside the workdir (no RLIMIT_FSIZE)', async () => {
    const dir = tree();
    const outside = join(root, `out${count++}`);
    mkdirSync(outside);
    const result = await runIn(
      sh(`head -c ${2 * MAX} /dev/zero > ${outside}/big && echo written`),
      { workdir: dir, storage, maxDisk: MAX, fsWrite: [outside], onExit: 'abort' },
    );
    expect(result.stdout).toBe('written\n');
    expect(statSync(join(outside, 'big')).size).toBe(2 * MAX);
  });

  it('finishes a layer of sparse files over maxDisk as an error', async () => {
    const dir = tree();
    const result = await runIn(sh(`truncate -s ${4 * MAX} sparse`), {
      workdir: dir,
      storage,
      maxDisk: MAX,
      onExit: 'commit',
      onError: 'abort',
    });
    expect(result.exitCode).toBe(0);
    expect(result.workdir!.done).toBe('abort');
    expect(existsSync(join(dir, 'sparse'))).toBe(false);
  });
});

// Below one page, a tmpfs cannot hold maxDisk (its size is whole pages, and
// a size of 0 is no bound): the measured bound, also the one without
// CAP_SYS_ADMIN.
const SMALL = 4000;

describe('maxDisk measured (below a page, or without CAP_SYS_ADMIN)', () => {
  it('stops one file at maxDisk: the write past it fails', async () => {
    const dir = tree();
    const result = await runIn(sh('dd if=/dev/zero of=big bs=1k count=100 2>/dev/null'), {
      workdir: dir,
      storage,
      maxDisk: SMALL,
      end: 'defer',
    });
    try {
      expect(result.workdir!.diskBound).toBe('measured');
      // EFBIG, or SIGXFSZ (its default action ends dd).
      expect(result.exitCode).not.toBe(0);
      expect(statSync(join(result.workdir!.upper!, 'big')).size).toBeLessThanOrEqual(SMALL);
    } finally {
      result.workdir!.abort();
    }
  });

  it('kills the sandbox when files each within maxDisk together go over it', async () => {
    const dir = tree();
    const result = await runIn(
      sh('head -c 2500 /dev/zero > one; head -c 2500 /dev/zero > two; sleep 30; echo survived'),
      { workdir: dir, storage, maxDisk: SMALL, onExit: 'commit', onError: 'abort' },
    );
    expect(result.stdout).toBe('');
    expect(result.killedBy?.message).toMatch(/over maxDisk/);
    expect(result.workdir!.done).toBe('abort');
    expect(existsSync(join(dir, 'one'))).toBe(false);
  }, 60_000);

  it('does not commit a layer over maxDisk when the program ends before a measure', async () => {
    const dir = tree();
    const result = await runIn(sh('head -c 2500 /dev/zero > one; head -c 2500 /dev/zero > two'), {
      workdir: dir,
      storage,
      maxDisk: SMALL,
      onExit: 'commit',
      onError: 'abort',
    });
    // Killed by a measure meanwhile, or ended first: aborted either way.
    expect(result.workdir!.done).toBe('abort');
    expect(existsSync(join(dir, 'one'))).toBe(false);
    expect(existsSync(join(dir, 'two'))).toBe(false);
  });

  it('lets writes within maxDisk through and commits them', async () => {
    const dir = tree();
    const result = await runIn(
      sh('head -c 1500 /dev/zero > one; dd if=/dev/zero of=two bs=100 count=20 2>/dev/null'),
      { workdir: dir, storage, maxDisk: SMALL, onExit: 'commit' },
    );
    expect(result.exitCode).toBe(0);
    expect(result.killedBy).toBeNull();
    expect(result.workdir!.diskBound).toBe('measured');
    expect(readFileSync(join(dir, 'one')).length).toBe(1500);
    expect(statSync(join(dir, 'two')).size).toBe(2000);
  });

  // fallocate(2) with FALLOC_FL_KEEP_SIZE allocates past the end of file, unbounded by
  // RLIMIT_FSIZE: 64 MiB on a layer bounded to 4000 bytes.
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
      maxDisk: SMALL,
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
    const layer = Layer.create({ lower, storage, maxDisk: MAX, kernelBound: false });
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

  // Three files of 3000 bytes each within maxDisk, together over it, that no name leads
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
    os.write(fd, bytes(3000))
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
        maxDisk: SMALL,
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
      sh('head -c 3000 /dev/zero > one; ln one two; ln one three; sleep 1; echo survived'),
      { workdir: dir, storage, maxDisk: SMALL, onExit: 'commit', onError: 'abort' },
    );
    expect(result.killedBy).toBeNull();
    expect(result.stdout).toBe('survived\n');
    expect(statSync(join(dir, 'three')).size).toBe(3000);
  }, 60_000);
});
