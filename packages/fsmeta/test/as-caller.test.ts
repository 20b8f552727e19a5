// Metadata changes made on a sandbox's behalf take the caller's credentials:
// the same calls run by a sandbox through the supervisor (sandlock, fs-meta
// on) and by a process under the same Landlock domain and ids with no
// supervisor at all give the same errno and leave the same metadata, on
// every file the policy lets the sandbox write; on the others they fail and
// change nothing. Run as root and as another user (SpawnOptions.user).
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { close, launch, syscallNumber, trySyscall } from '@sandlock/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { collect, PYTHON, SYSTEM_DIRS } from '../../../tools/test-support/index.js';
import { parsePolicy, prepareConfinement, Sandbox } from '../../sandlock/src/index.js';

const asRoot = process.getuid?.() === 0;
const hasPython = existsSync(PYTHON);
if (!asRoot) console.warn('as-caller.test: skipped: fs-meta is on for a root supervisor only');
if (!hasPython) console.warn(`as-caller.test: skipped: ${PYTHON} is missing`);

/** Another user, owner of some files: neither the caller nor root. */
const OTHER = 2000;

/** name → [owner ('self', 'root', 'other'), mode]; `locked/` is a root 0700 directory. */
const FILES: Record<string, readonly ['self' | 'root' | 'other', number]> = {
  own600: ['self', 0o600],
  own644: ['self', 0o644],
  own755: ['self', 0o755],
  root600: ['root', 0o600],
  root644: ['root', 0o644],
  root666: ['root', 0o666],
  other600: ['other', 0o600],
  other666: ['other', 0o666],
  'locked/own644': ['self', 0o644],
};

/**
 * For each file, in order: utimensat now and explicit, setxattr, through a
 * descriptor (futimens, fsetxattr, fchmod), relative to a dirfd (fchmodat,
 * utimensat), file_setattr (the nodump flag), chmod, chown to its group, to
 * itself, to another user; one line `<file> <op> <ok|errno name>` each.
 */
const SCRIPT = `
import ctypes, errno, os, sys
tree, uid, gid, other = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
names = sys.argv[5:]
def attempt(fn):
    try:
        fn()
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def file_setattr(p):
    attr = (ctypes.c_uint64 * 3)(0x80, 0, 0)  # struct file_attr: FS_XFLAG_NODUMP
    if libc.syscall(${syscallNumber('file_setattr')}, -100, p.encode(), attr, ctypes.c_size_t(24), 0) < 0:
        raise OSError(ctypes.get_errno(), 'file_setattr')
out = []
for side in ('w', 'r'):
    for name in names:
        p = os.path.join(tree, side, name)
        def say(op, fn):
            out.append('%s/%s %s %s' % (side, name, op, attempt(fn)))
        say('now', lambda: os.utime(p, None))
        say('explicit', lambda: os.utime(p, ns=(1000000000, 2000000000)))
        say('xattr', lambda: os.setxattr(p, 'user.t', b'v'))
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError as e:
            out.append('%s/%s open %s' % (side, name, errno.errorcode[e.errno]))
        else:
            say('futimens', lambda: os.utime(fd, ns=(3000000000, 4000000000)))
            say('fsetxattr', lambda: os.setxattr(fd, 'user.f', b'w'))
            say('fchmod', lambda: os.chmod(fd, 0o640))
            os.close(fd)
        try:
            dfd = os.open(os.path.dirname(p), os.O_PATH)
        except OSError as e:
            out.append('%s/%s dir %s' % (side, name, errno.errorcode[e.errno]))
        else:
            say('chmodat', lambda: os.chmod(os.path.basename(p), 0o606, dir_fd=dfd))
            say('utimensat', lambda: os.utime(os.path.basename(p), ns=(5000000000, 6000000000), dir_fd=dfd))
            os.close(dfd)
        say('fileattr', lambda: file_setattr(p))
        say('chmod', lambda: os.chmod(p, 0o604))
        say('chgrp', lambda: os.chown(p, -1, gid))
        say('chown-self', lambda: os.chown(p, uid, -1))
        say('chown-other', lambda: os.chown(p, other, -1))
print('\\n'.join(out))
`;

const trees: string[] = [];
afterAll(() => {
  for (const tree of trees) rmSync(tree, { recursive: true, force: true });
});

/** A tree with `w` and `r`, each holding FILES owned by `uid` ('self'), root or OTHER. */
function makeTree(uid: number, gid: number): string {
  const tree = mkdtempSync(join(tmpdir(), 'sandlock-as-caller-'));
  trees.push(tree);
  chmodSync(tree, 0o755);
  for (const side of ['w', 'r']) {
    mkdirSync(join(tree, side, 'locked'), { recursive: true });
    chmodSync(join(tree, side), 0o777);
    chmodSync(join(tree, side, 'locked'), 0o700);
    for (const [name, [owner, mode]] of Object.entries(FILES)) {
      const path = join(tree, side, name);
      writeFileSync(path, 'x\n');
      const [u, g] = owner === 'self' ? [uid, gid] : owner === 'root' ? [0, 0] : [OTHER, OTHER];
      chownSync(path, u, g);
      chmodSync(path, mode);
    }
  }
  return tree;
}

/** A file's mode, owner, mtime (the explicit ones the script sets, or `changed`) and user xattrs. */
function metadata(tree: string, side: string, start: bigint): Record<string, string> {
  const shown: Record<string, string> = {};
  for (const name of Object.keys(FILES)) {
    const path = join(tree, side, name);
    const st = statSync(path, { bigint: true });
    const mtime = st.mtimeNs < start ? String(st.mtimeNs) : 'changed';
    const attrs = ['user.t', 'user.f'].filter((attr) => hasXattr(path, attr));
    shown[name] = `${(st.mode & 0o7777n).toString(8)} ${st.uid}:${st.gid} ${mtime} ${attrs}`;
  }
  return shown;
}

function hasXattr(path: string, name: string): boolean {
  const value = Buffer.alloc(16);
  return trySyscall('getxattr', Buffer.from(`${path}\0`), Buffer.from(`${name}\0`), value, 16) >= 0;
}

/** The calls of the script fs-meta mediates: all of them. */
const MEDIATED = [
  'now',
  'explicit',
  'xattr',
  'futimens',
  'fsetxattr',
  'fchmod',
  'chmodat',
  'utimensat',
  'fileattr',
  'chmod',
  'chgrp',
  'chown-self',
  'chown-other',
];

/** The script's lines, run under the policy's own Landlock domain and the user's ids, no supervisor. */
async function reference(
  argv: readonly string[],
  policy: { fsRead: string[]; fsWrite: string[] },
  user: { uid: number; gid: number; groups: number[] } | undefined,
) {
  const confinement = prepareConfinement(parsePolicy(policy), {
    notify: [],
    ...(user !== undefined ? { user } : {}),
  });
  let launched: ReturnType<typeof launch>;
  try {
    launched = launch({
      path: argv[0]!,
      argv,
      env: { PATH: '/usr/bin:/bin', LANG: 'C' },
      steps: confinement.steps,
      stdio: ['ignore', 'pipe', 'pipe'],
      handshake: false,
    });
  } finally {
    for (const fd of confinement.fds) close(fd);
  }
  return collect(launched.child);
}

describe.skipIf(!asRoot || !hasPython)('fs-meta changes metadata as the caller', () => {
  for (const [who, uid, gid] of [
    ['root', 0, 0],
    ['uid 1000', 1000, 1000],
  ] as const) {
    it(`gives a sandbox running as ${who} the kernel's answers where it may write, and refuses elsewhere`, async () => {
      // Times before this are the script's explicit ones.
      const start = BigInt(Date.now() - 60_000) * 1_000_000n;
      const supervisedTree = makeTree(uid, gid);
      const aloneTree = makeTree(uid, gid);
      const user = uid === 0 ? undefined : { uid, gid, groups: [gid] };
      const args = (tree: string) => [
        PYTHON,
        '-c',
        SCRIPT,
        tree,
        String(uid),
        String(gid),
        String(OTHER),
        ...Object.keys(FILES),
      ];
      const sandbox = Sandbox.builder()
        .fsRead(...SYSTEM_DIRS, join(supervisedTree, 'r'))
        .fsWrite(join(supervisedTree, 'w'))
        .build();
      const supervised = await sandbox.run(args(supervisedTree), {
        encoding: 'utf8',
        ...(user !== undefined ? { user } : {}),
      });
      const alone = await reference(
        args(aloneTree),
        { fsRead: [...SYSTEM_DIRS, join(aloneTree, 'r')], fsWrite: [join(aloneTree, 'w')] },
        user,
      );
      expect(supervised.stderr).toBe('');
      expect(alone.stderr).toBe('');
      const mine = String(supervised.stdout).trim().split('\n');
      const kernel = alone.stdout.trim().split('\n');
      expect(mine).toHaveLength(kernel.length);
      const side = (lines: string[], prefix: string) => lines.filter((l) => l.startsWith(prefix));
      // Where it may write: the kernel's answers, and the same metadata after.
      expect(side(mine, 'w/')).toEqual(side(kernel, 'w/'));
      expect(metadata(supervisedTree, 'w', start)).toEqual(metadata(aloneTree, 'w', start));
      // Not vacuous: some changes were made, some refused by the kernel's checks.
      expect(side(mine, 'w/').some((line) => line.endsWith(' ok'))).toBe(true);
      expect(side(mine, 'w/').some((line) => line.endsWith(' EPERM'))).toBe(true);
      // Elsewhere: refused, nothing changed (compared with a tree no one touched).
      const refusedHere = side(mine, 'r/').filter((line) => {
        const [, op, result] = line.split(' ');
        return MEDIATED.includes(op!) && result === 'ok';
      });
      expect(refusedHere).toEqual([]);
      const untouched = makeTree(uid, gid);
      expect(metadata(supervisedTree, 'r', start)).toEqual(metadata(untouched, 'r', start));
    });
  }
});
