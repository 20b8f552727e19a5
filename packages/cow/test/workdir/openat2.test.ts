// openat2 with RESOLVE_* flags on paths the layer serves, against the
// kernel: the same changes made to a tree, once as a sandbox's copy-on-write
// workdir and once directly on a copy of it (a sandbox with the same read
// rules that may write the copy: the same Landlock rules, no capabilities),
// then the same openat2 calls, every dirfd × path × open flags × resolve
// flags. Each result must be the kernel's; the one refusal allowed is the
// documented one (docs/design.md): EXDEV for a walk restricted by more
// than RESOLVE_IN_ROOT that enters the workdir from outside or leaves it.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, PYTHON, runIn, runOnCopy, scratch } from './helpers.js';

const PROBES = readFileSync(fileURLToPath(new URL('./openat2.py', import.meta.url)), 'utf8');
const root = scratch();
const storage = join(root, 'store');
afterAll(() => cleanup(root));

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_APPEND = 0o2000;
const O_CREAT = 0o100;
const O_DIRECTORY = 0o200000;
const O_NOFOLLOW = 0o400000;
const O_PATH = 0o10000000;
const NO_XDEV = 0x01;
const NO_MAGICLINKS = 0x02;
const NO_SYMLINKS = 0x04;
const BENEATH = 0x08;
const IN_ROOT = 0x10;
const CACHED = 0x20;

const DIRFDS = ['.', 'nd', 'moved', 'd', '..'];
const PATHS = [
  'a',
  'la',
  'ldir/s',
  'ldir',
  'nd',
  'nd/f',
  'nd/up',
  'nd/abs',
  'nd/out',
  'nd/out/w/a',
  'nd/dirlink',
  'nd/dirlink/x',
  'nd/loop',
  'nd/sub/x',
  'nd/../a',
  'moved/t',
  'moved/../nd/up',
  'd/s/t',
  'd/x',
  't',
  'f',
  '.',
  '..',
  '../a',
  '../w/a',
  '../w/nd/f',
  'w/nd/f',
  'w/a',
  '/a',
  '/nd/f',
  'nd/up/',
  'missing',
];
const READS = [O_RDONLY, O_PATH, O_NOFOLLOW, O_DIRECTORY];
const RESOLVES = [
  0,
  NO_XDEV,
  NO_MAGICLINKS,
  NO_SYMLINKS,
  BENEATH,
  IN_ROOT,
  BENEATH | NO_SYMLINKS,
  IN_ROOT | NO_SYMLINKS,
  IN_ROOT | NO_XDEV,
  CACHED,
  BENEATH | CACHED,
  0x40, // unknown: EINVAL
  BENEATH | IN_ROOT, // EINVAL
];

type Probe = [string, string, number, number];

/** Writes, after the reads: a refused one leaves the trees different only for writes after it. */
function writes(): Probe[] {
  const list: Probe[] = [];
  for (const path of ['a', 'la', 'nd/f', 'nd/up', 'moved/t', '../w/a', 'new']) {
    for (const resolve of [0, NO_SYMLINKS, BENEATH, IN_ROOT, IN_ROOT | NO_SYMLINKS]) {
      list.push(['.', path, O_WRONLY | O_APPEND, resolve]);
      list.push(['.', path, O_WRONLY | O_CREAT | O_APPEND, resolve | CACHED]);
    }
  }
  return list;
}

const PLAN = { dirfds: DIRFDS, paths: PATHS, reads: READS, resolves: RESOLVES, writes: writes() };
const CALLS = DIRFDS.length * PATHS.length * READS.length * RESOLVES.length + PLAN.writes.length;

/** The starting tree, in `parent/w`. */
function makeTree(parent: string): string {
  const dir = join(parent, 'w');
  mkdirSync(join(dir, 'd', 's'), { recursive: true });
  writeFileSync(join(dir, 'a'), 'alpha\n');
  writeFileSync(join(dir, 'd', 'x'), 'ex\n');
  writeFileSync(join(dir, 'd', 's', 't'), 'tee\n');
  symlinkSync('a', join(dir, 'la'));
  symlinkSync('d', join(dir, 'ldir'));
  return dir;
}

/** The walk enters the workdir from outside it, or leaves it. */
function crosses(dirfd: string, path: string): boolean {
  return (
    dirfd === '..' ||
    path.startsWith('/') ||
    path.startsWith('..') ||
    path.startsWith('nd/out') ||
    path.startsWith('nd/abs')
  );
}

/** The path leaves the workdir through a symlink only the layer holds. */
function throughLayerLink(path: string): boolean {
  return path.startsWith('nd/out') || path.startsWith('nd/abs');
}

function restrictedBeyondInRoot(resolve: number): boolean {
  return (resolve & (NO_XDEV | NO_MAGICLINKS | NO_SYMLINKS | BENEATH)) !== 0;
}

function lines(stdout: string): string[][] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as string[]);
}

describe('openat2 with RESOLVE_* flags in a copy-on-write workdir', () => {
  it('answers as the kernel on a copy of the tree, or with the documented refusal', async () => {
    const argv = [PYTHON, '-c', PROBES, JSON.stringify(PLAN)];

    const copy = makeTree(join(root, 'copy'));
    const direct = await runOnCopy(argv, copy);
    expect(direct.stderr).toBe('');

    const tree = makeTree(join(root, 'cow'));
    const layered = await runIn(argv, { workdir: tree, storage, onExit: 'abort' });
    expect(layered.stderr).toBe('');

    const expected = lines(direct.stdout);
    const got = lines(layered.stdout);
    expect(got.length).toBe(CALLS);
    expect(expected.length).toBe(CALLS);
    const wrong: string[] = [];
    let refused = 0;
    let cachedMisses = 0;
    for (const [index, [dirfd, path, flags, resolve, result]] of got.entries()) {
      const kernel = expected[index]![4]!;
      if (result === kernel) continue;
      const r = Number(resolve);
      if ((r & CACHED) !== 0 && result === 'EAGAIN') {
        cachedMisses++;
        continue;
      }
      if (result === 'EXDEV' && restrictedBeyondInRoot(r) && crosses(dirfd!, path!)) {
        refused++;
        continue;
      }
      // O_PATH through a link of the layer to outside: opened for reading
      // (ADDFD cannot install an O_PATH file), so a place the policy lets
      // the sandbox reach but not read is EACCES (docs/design.md).
      if (result === 'EACCES' && (Number(flags) & O_PATH) !== 0 && throughLayerLink(path!)) {
        refused++;
        continue;
      }
      wrong.push(`${dirfd} ${path} flags=${flags} resolve=${resolve}: ${result}, kernel ${kernel}`);
    }
    expect(wrong).toEqual([]);
    // The refusal is the exception: most restricted walks are answered as the kernel.
    expect(refused).toBeLessThan(CALLS / 10);
    console.log(
      `openat2: ${CALLS} calls, ${refused} refused (EXDEV), ${cachedMisses} EAGAIN for RESOLVE_CACHED`,
    );
  }, 300_000);
});
