// A layer's maxDisk on a tmpfs of its own (the kernel's ENOSPC), its
// fallback to the measured bound, and its removal whatever becomes of the
// process that made it.
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { detachMount, pageSize, threadCapabilities } from '@sandlock/sys';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanStaleLayers, Layer } from '../src/index.js';
import { userNamespaceRefusal } from '../src/layer/private-tmpfs.js';
import { childUnder } from './support/run-child.js';

const CAP_SYS_ADMIN = 21n;
const canMount = ((threadCapabilities().effective >> CAP_SYS_ADMIN) & 1n) === 1n;
if (!canMount) {
  console.log('tmpfs upper tests skipped: mounting a tmpfs needs CAP_SYS_ADMIN (run as root)');
}
const MAX = 1024 * 1024;

let base: string;
let lower: string;
let store: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'sandlock-cow-disk-'));
  lower = join(base, 'lower');
  store = join(base, 'store');
  mkdirSync(lower);
  writeFileSync(join(lower, 'README'), 'hello\n');
});
afterEach(() => {
  for (const point of mountsUnder(base)) detachMount(point);
  rmSync(base, { recursive: true, force: true });
});

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point.startsWith(`${dir}/`));
}

/** Writes `bytes` zeros to `path` until the kernel refuses; the bytes written and the refusal's code. */
function fill(path: string, bytes: number): { written: number; code: string | null } {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  let written = 0;
  try {
    while (written < bytes) written += writeSync(fd, chunk);
    return { written, code: null };
  } catch (error) {
    return { written, code: (error as NodeJS.ErrnoException).code ?? null };
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(!canMount)('a tmpfs upper (CAP_SYS_ADMIN)', () => {
  it('holds maxDisk bytes, rounded down to pages, and refuses more with ENOSPC', () => {
    const odd = MAX + 1000;
    const layer = Layer.create({ lower, storage: store, maxDisk: odd });
    expect(layer.diskBound).toBe('tmpfs');
    expect(layer.metadata.diskBound).toBe('tmpfs');
    expect(mountsUnder(base)).toEqual([layer.upper]);
    const fs = statfsSync(layer.upper);
    expect(fs.blocks * fs.bsize).toBe(odd - (odd % pageSize()));
    expect(statSync(layer.upper).mode & 0o7777).toBe(0o700);
    const result = fill(join(layer.upper, 'big'), 2 * MAX);
    expect(result.code).toBe('ENOSPC');
    expect(statSync(join(layer.upper, 'big')).size).toBeLessThanOrEqual(odd);
    // The layer's own count does not refuse what the kernel bounds.
    expect(layer.reserve(2 * MAX)).toBe(true);
    layer.abort();
    expect(mountsUnder(base)).toEqual([]);
    expect(readdirSync(store)).toEqual([]);
  });

  it('is unmounted by a commit, which applies it', () => {
    const layer = Layer.create({ lower, storage: store, maxDisk: MAX });
    writeFileSync(join(layer.upper, 'new.txt'), 'new\n');
    layer.commit();
    expect(readFileSync(join(lower, 'new.txt'), 'utf8')).toBe('new\n');
    expect(mountsUnder(base)).toEqual([]);
    expect(readdirSync(store)).toEqual([]);
  });

  it('stays mounted while kept; gone (a restart), the layer is not committed but can be aborted', () => {
    const layer = Layer.create({ lower, storage: store, maxDisk: MAX });
    writeFileSync(join(layer.upper, 'new.txt'), 'new\n');
    layer.recordDelete('README');
    const kept = layer.keep();
    expect(mountsUnder(base)).toEqual([join(kept, 'upper')]);
    // What a restart does to a tmpfs.
    expect(detachMount(join(kept, 'upper'))).toBe(0);
    expect(() => Layer.open(kept).commit()).toThrow(/on a tmpfs that is gone/);
    expect(readFileSync(join(lower, 'README'), 'utf8')).toBe('hello\n');
    Layer.open(kept).abort();
    expect(readdirSync(store)).toEqual([]);
  });

  it('of a process killed outright is unmounted and removed by the next run', async () => {
    const result = await childUnder([], 'bounded-and-die', lower, store);
    expect(result.code).toBe(0);
    const [dir, bound] = result.stdout.split(' ');
    expect(bound).toBe('tmpfs');
    expect(mountsUnder(base)).toEqual([join(dir!, 'upper')]);
    const report = cleanStaleLayers(store);
    expect(report).toEqual({ removed: [dir], committed: [], failed: [] });
    expect(mountsUnder(base)).toEqual([]);
    expect(existsSync(dir!)).toBe(false);
  });
});

// Root without CAP_SYS_ADMIN in its bounding set gains none at exec.
const WITHOUT_SYS_ADMIN = ['setpriv', '--bounding-set', '-sys_admin', '--inh-caps', '-sys_admin'];
const userns = userNamespaceRefusal();
const asRoot = process.getuid?.() === 0;
if (!asRoot || userns !== null) {
  console.log(
    `tmpfs-in-a-user-namespace tests skipped: ${asRoot ? userns : 'dropping CAP_SYS_ADMIN from a root process needs root'}`,
  );
}

describe.skipIf(!asRoot || userns !== null)(
  'a tmpfs upper in a user namespace (no CAP_SYS_ADMIN)',
  () => {
    it('of a process killed outright is gone with it; the next run removes the layer', async () => {
      const result = await childUnder(WITHOUT_SYS_ADMIN, 'bounded-and-die', lower, store);
      expect(result.stderr).toBe('');
      const [dir, bound] = result.stdout.split(' ');
      expect(bound).toBe('userns-tmpfs');
      // Mounted in the helper's namespace only: nothing here, and the file was on it.
      expect(mountsUnder(base)).toEqual([]);
      expect(existsSync(join(dir!, 'upper/orphan.txt'))).toBe(false);
      expect(cleanStaleLayers(store)).toEqual({ removed: [dir], committed: [], failed: [] });
    });

    it('is copied to the store when kept (modes, hard links, symlinks), and commits from there', async () => {
      const result = await childUnder(WITHOUT_SYS_ADMIN, 'bounded-and-keep', lower, store);
      expect(result.stderr).toBe('');
      const [dir, bound] = result.stdout.split(' ');
      expect(bound).toBe('userns-tmpfs');
      expect(mountsUnder(base)).toEqual([]);
      const upper = join(dir!, 'upper');
      expect(statSync(join(upper, 'dir')).mode & 0o7777).toBe(0o750);
      expect(statSync(join(upper, 'dir/kept.txt')).mode & 0o7777).toBe(0o640);
      expect(statSync(join(upper, 'link.txt')).ino).toBe(statSync(join(upper, 'dir/kept.txt')).ino);
      expect(readlinkSync(join(upper, 'symlink'))).toBe('dir/kept.txt');
      const layer = Layer.open(dir!);
      expect(layer.diskBound).toBe('userns-tmpfs');
      expect(layer.changes().map((change) => `${change.type} ${change.path}`)).toEqual([
        'D README',
        'A dir',
        'A dir/kept.txt',
        'A link.txt',
        'A symlink',
      ]);
      layer.commit();
      expect(readFileSync(join(lower, 'link.txt'), 'utf8')).toBe('kept\n');
      expect(statSync(join(lower, 'link.txt')).ino).toBe(statSync(join(lower, 'dir/kept.txt')).ino);
      expect(existsSync(join(lower, 'README'))).toBe(false);
      expect(readdirSync(store)).toEqual([]);
    });
  },
);

describe('the measured bound', () => {
  it('applies below one page (a tmpfs holds whole pages; size 0 is no bound)', () => {
    const layer = Layer.create({ lower, storage: store, maxDisk: pageSize() - 1 });
    expect(layer.diskBound).toBe('measured');
    expect(mountsUnder(base)).toEqual([]);
    expect(layer.reserve(pageSize())).toBe(false);
    layer.abort();
  });

  it('applies above a quarter of the memory (a tmpfs would fill memory, not a disk)', () => {
    const maxDisk = Math.ceil(totalmem() / 4) + pageSize();
    const layer = Layer.create({ lower, storage: store, maxDisk });
    expect(layer.diskBound).toBe('measured');
    expect(mountsUnder(base)).toEqual([]);
    layer.abort();
  });

  it('applies when asked (kernelBound false)', () => {
    const layer = Layer.create({ lower, storage: store, maxDisk: MAX, kernelBound: false });
    expect(layer.diskBound).toBe('measured');
    expect(mountsUnder(base)).toEqual([]);
    layer.abort();
  });

  it('applies without CAP_SYS_ADMIN where no user namespace may be made', async (context) => {
    if (process.getuid?.() !== 0) {
      console.log('skipped: dropping CAP_SYS_ADMIN from a root process needs root');
      context.skip();
    }
    const refusal = userNamespaceRefusal();
    if (refusal === null) {
      console.log(
        'skipped here: this kernel gives user namespaces (unprivileged-max-disk.test.ts turns them off in one of its own)',
      );
      context.skip();
    }
    const result = await childUnder(WITHOUT_SYS_ADMIN, 'bounded-and-die', lower, store);
    expect(result.stderr).toBe('');
    const [dir, bound] = result.stdout.split(' ');
    expect(bound).toBe('measured');
    expect(mountsUnder(base)).toEqual([]);
    expect(readFileSync(join(dir!, 'upper/orphan.txt'), 'utf8')).toBe('orphan\n');
  });

  it('is all there is without maxDisk: no mount, no bound', () => {
    const layer = Layer.create({ lower, storage: store });
    expect(layer.diskBound).toBeNull();
    expect(mountsUnder(base)).toEqual([]);
    layer.abort();
  });
});
