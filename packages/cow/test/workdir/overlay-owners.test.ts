// Owners, groups and modes in a workdir against overlayfs: a random
// sequence of creates, mkdirs, writes (copy-ups), chmods and renames, run
// as uid 1000 and as root (no capabilities, as a sandbox runs) in a
// workdir, and on an overlayfs mount of a copy of the same tree by the
// same user: every call's result and the owner, group and mode of every
// entry are the same, in the sandbox's view and in the tree it committed.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { PYTHON, SYSTEM_DIRS } from '../../../../tools/test-support/index.js';
import { Sandbox } from '../../../sandlock/src/index.js';
import { cleanup, scratch, storeEntries } from './helpers.js';

const OWNERS = readFileSync(fileURLToPath(new URL('./owners.py', import.meta.url)), 'utf8');
const USER = { uid: 1000, gid: 1000, groups: [] as number[] };
/** A group neither identity is in. */
const GROUP = 2000;

const asRoot = process.getuid?.() === 0;
const root = scratch('cow-overlay-owners-');
// uid 1000 reaches the trees beneath it.
chmodSync(root, 0o755);

const MOUNT =
  'mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3,redirect_dir=on" "$4" && cd "$4" && shift 4 && exec "$@"';

/** Why no overlayfs can be mounted here (the module loads on the first mount), or null. */
function overlayRefusal(): string | null {
  if (!asRoot) return 'mounting overlayfs needs root';
  const dirs = ['lower', 'upper', 'work', 'merged'].map((name) => join(root, 'probe', name));
  for (const dir of dirs) mkdirSync(dir, { recursive: true });
  const probe = spawnSync('unshare', ['-m', '--', 'sh', '-c', MOUNT, 'sh', ...dirs, 'true'], {
    encoding: 'utf8',
  });
  cleanup(join(root, 'probe'));
  return probe.status === 0 ? null : `no overlayfs mount: ${probe.stderr.trim()}`;
}
const refusal = overlayRefusal();
if (refusal !== null) console.log(`overlay-owners.test skipped: ${refusal}`);
const storage = join(root, 'store');
afterAll(() => cleanup(root));

const NAMES = [
  'f',
  'n',
  'open',
  'open/w',
  'open/n',
  'own',
  'own/f',
  'own/n',
  'own/d',
  'sgid/g',
  'sgid/n',
  'sgid/d',
  'sgid/d/n',
  'sgid/m',
  'closed/x',
  'closed/n',
];
const path = fc.constantFrom(...NAMES);
const op = fc.oneof(
  fc.tuple(fc.constant('umask'), fc.constantFrom(0o022, 0o002, 0o077, 0)),
  fc.tuple(fc.constant('create'), path, fc.constantFrom(0o644, 0o2755, 0o4755, 0o666, 0o777)),
  fc.tuple(fc.constant('mkdir'), path, fc.constantFrom(0o755, 0o2775, 0o1777, 0o700, 0o4755)),
  fc.tuple(fc.constant('write'), path),
  fc.tuple(fc.constant('chmod'), path, fc.constantFrom(0o600, 0o2755, 0o4777, 0o1777, 0o755)),
  fc.tuple(fc.constant('rename'), path, path),
);

let trees = 0;

/**
 * The workdir root's 0755 and root's; `open` 0777 with a set-user-ID file
 * all may write; `own` uid 1000's; `sgid` a set-group-ID 0777 directory of
 * GROUP; `closed` root's 0755 with a file all may write.
 */
function tree(): string {
  const dir = join(root, `t${trees++}`);
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  const entries: [string, 'dir' | 'file', number, number, number][] = [
    ['f', 'file', 0o644, USER.uid, USER.gid],
    ['open', 'dir', 0o777, 0, 0],
    ['open/w', 'file', 0o4777, 0, 0],
    ['own', 'dir', 0o755, USER.uid, USER.gid],
    ['own/f', 'file', 0o644, USER.uid, USER.gid],
    ['sgid', 'dir', 0o2777, 0, GROUP],
    ['sgid/g', 'file', 0o2777, 0, GROUP],
    ['sgid/d', 'dir', 0o2775, USER.uid, GROUP],
    ['closed', 'dir', 0o755, 0, 0],
    ['closed/x', 'file', 0o666, 0, 0],
  ];
  for (const [name, kind, mode, uid, gid] of entries) {
    const at = join(dir, name);
    if (kind === 'dir') mkdirSync(at);
    else writeFileSync(at, `${name}\n`);
    chownSync(at, uid, gid);
    chmodSync(at, mode);
  }
  return dir;
}

/** setpriv's arguments for the identity, with no capabilities (as a sandbox runs). */
function identity(user: typeof USER | undefined): string[] {
  const ids =
    user === undefined ? [] : [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups'];
  return ['setpriv', ...ids, '--bounding-set=-all', '--inh-caps=-all', '--'];
}

/** The program run on an overlayfs mount of `lower` (in a mount namespace of its own). */
function onOverlay(lower: string, ops: unknown[], user: typeof USER | undefined): string {
  const base = `${lower}-overlay`;
  const [upper, work, merged] = ['upper', 'work', 'merged'].map((name) => join(base, name));
  for (const dir of [upper!, work!, merged!]) mkdirSync(dir, { recursive: true });
  chmodSync(base, 0o755);
  const done = spawnSync(
    'unshare',
    [
      '-m',
      '--',
      'sh',
      '-c',
      MOUNT,
      'sh',
      lower,
      upper!,
      work!,
      merged!,
      ...identity(user),
      PYTHON,
      '-c',
      OWNERS,
      JSON.stringify(ops),
    ],
    { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LANG: 'C' } },
  );
  expect(done.stderr).toBe('');
  cleanup(base);
  return done.stdout;
}

/** The listing of a tree as `user` sees it (the program with no operations). */
function listing(dir: string, user: typeof USER | undefined): string {
  const [command, ...args] = identity(user);
  const done = spawnSync(command!, [...args, PYTHON, '-c', OWNERS, '[]'], {
    cwd: dir,
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin', LANG: 'C' },
  });
  expect(done.stderr).toBe('');
  return done.stdout.slice(done.stdout.indexOf('\n') + 1);
}

async function inWorkdir(workdir: string, ops: unknown[], user: typeof USER | undefined) {
  const result = await Sandbox.builder()
    .fsRead(...SYSTEM_DIRS, '/dev/null', '/proc')
    .workdir(workdir)
    .fsStorage(storage)
    .onExit('commit')
    .cwd(workdir)
    .build()
    .run([PYTHON, '-c', OWNERS, JSON.stringify(ops)], {
      encoding: 'utf8',
      env: { PATH: '/usr/bin:/bin', LANG: 'C' },
      ...(user !== undefined ? { user } : {}),
    });
  expect(result.stderr).toBe('');
  return result.stdout;
}

/** Copy-ups of files and directories of others, made set-group-ID directories, chmods after a copy-up. */
const EXAMPLE = [
  ['write', 'closed/x'],
  ['write', 'open/w'],
  ['write', 'sgid/g'],
  ['umask', 0o002],
  ['mkdir', 'sgid/d/n', 0o2775],
  ['mkdir', 'sgid/n', 0o755],
  ['create', 'sgid/m', 0o2755],
  ['chmod', 'closed/x', 0o600],
  ['rename', 'own/f', 'own/n'],
  ['write', 'f'],
  ['mkdir', 'own/d', 0o4755],
  ['mkdir', 'open/n', 0o6775],
];

/** Found by a run: a directory the caller may not write moved to another parent (vfs_rename's `..` check). */
const MOVED_DIRECTORY = [['rename', 'sgid/d', 'own']];

describe.skipIf(refusal !== null)('owners and modes in a workdir, against overlayfs', () => {
  for (const [label, user] of [
    ['uid 1000', USER],
    ['root', undefined],
  ] as const) {
    it(`as ${label}: the same results, owners, groups and modes`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
          const workdir = tree();
          const copy = `${workdir}-copy`;
          // Owners, modes and times kept (cpSync keeps no owner).
          execFileSync('cp', ['-a', workdir, copy]);
          const expected = onOverlay(copy, ops, user);
          expect(await inWorkdir(workdir, ops, user)).toBe(expected);
          expect(listing(workdir, user)).toBe(expected.slice(expected.indexOf('\n') + 1));
          cleanup(workdir, copy);
        }),
        {
          numRuns: Number(process.env.RUNS ?? 8),
          examples: [[EXAMPLE as never], [MOVED_DIRECTORY as never]],
        },
      );
      expect(storeEntries(storage)).toEqual([]);
    }, 900_000);
  }

  it('says something: overlayfs keeps the owner of what it copies up', () => {
    const lower = tree();
    const shown = onOverlay(lower, EXAMPLE, USER);
    // Copied up with root's owner: uid 1000 may write it, not chmod it.
    expect(shown.split('\n')[0]).toBe(
      JSON.stringify(EXAMPLE.map((step) => (step === EXAMPLE[7] ? 'EPERM' : null))).replaceAll(
        ',',
        ', ',
      ),
    );
    expect(shown).toContain('closed/x file 666 0 0');
    expect(shown).toContain(`sgid/g file 777 0 ${GROUP}`);
    expect(shown).toContain(`sgid/d/n dir 2775 ${USER.uid} ${GROUP}`);
    expect(shown).toContain(`own/d dir 755 ${USER.uid} ${USER.gid}`);
    // mkdir(2) takes neither set-id bit from its mode argument.
    expect(shown).toContain(`open/n dir 775 ${USER.uid} ${USER.gid}`);
    cleanup(lower);
  });
});
