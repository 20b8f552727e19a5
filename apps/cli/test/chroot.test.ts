// `sandlock run --chroot DIR --fs-mount VIRT:HOST[:ro]`: a busybox root from
// the command line, a read-only mount, and a dry run of a workdir over it.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRootfs, missing, type Rootfs } from '../../../packages/chroot/test/support/rootfs.js';
import { sandlock } from './helpers.js';

const why = missing();
if (why !== null) console.log(`sandlock run --chroot tests skipped: ${why}`);

describe.skipIf(why !== null)('sandlock run --chroot', () => {
  let fs: Rootfs;
  let data: string;
  beforeAll(() => {
    fs = buildRootfs();
    data = mkdtempSync(join(tmpdir(), 'sandlock-chroot-cli-'));
    writeFileSync(join(data, 'x'), 'from the host\n');
  });
  afterAll(() => {
    fs?.remove();
    rmSync(data, { recursive: true, force: true });
  });

  it('runs a program of the root with a read-only mount', () => {
    const result = sandlock([
      'run',
      '--chroot',
      fs.dir,
      '--fs-mount',
      `/mnt:${data}:ro`,
      '--',
      '/probe',
      'cat:/etc/os-release',
      'cat:/mnt/x',
      'write:/mnt/y:no',
      'cwd',
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      [
        'cat /etc/os-release: [PRETTY_NAME="sandlock chroot test"]',
        'cat /mnt/x: [from the host]',
        'write /mnt/y no: EROFS',
        'cwd : /',
        '',
      ].join('\n'),
    );
    expect(result.status).toBe(0);
  });

  it('takes --cwd as a path inside the root', () => {
    // A directory only the root has: the policy does not look for it on the host.
    const only = `/only-in-root-${process.pid}`;
    mkdirSync(join(fs.dir, only));
    const result = sandlock(['run', '--chroot', fs.dir, '--cwd', only, '--', '/probe', 'cwd']);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`cwd : ${only}\n`);
    expect(result.status).toBe(0);
  });

  it('takes --workdir over the root, with --dry-run', () => {
    mkdirSync(join(fs.dir, 'work'), { recursive: true });
    const result = sandlock([
      'run',
      '--chroot',
      fs.dir,
      '--workdir',
      fs.dir,
      '--dry-run',
      '--',
      '/probe',
      'write:/work/new:made',
      'cat:/work/new',
    ]);
    expect(result.stderr).toBe('');
    const lines = result.stdout.split('\n').filter(Boolean);
    expect(lines).toEqual(['write /work/new made: ok', 'cat /work/new: [made]', 'A work/new']);
    expect(readdirSync(join(fs.dir, 'work'))).toEqual([]);
  });
});
