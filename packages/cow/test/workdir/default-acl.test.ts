// POSIX ACLs in a workdir, against the kernel on a copy of the tree: what
// is made in a directory with a default ACL takes its mode from the ACL,
// not the umask (posix_acl_create() in fs/posix_acl.c), and a file copied
// up keeps its access ACL (and with it who may write it). As root (no
// capabilities, the worker makes what is created) and as uid 1000 (the
// reaper makes it).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PYTHON, SYSTEM_DIRS } from '../../../../tools/test-support/index.js';
import { Sandbox } from '../../../sandlock/src/index.js';
import { cleanup, scratch, storeEntries } from './helpers.js';

const USER = { uid: 1000, gid: 1000, groups: [] as number[] };
const asRoot = process.getuid?.() === 0;
if (!asRoot)
  console.log('default-acl.test skipped: a sandbox of another user needs a root supervisor');

const root = scratch('cow-default-acl-');
chmodSync(root, 0o755);
const storage = join(root, 'store');
afterAll(() => cleanup(root));

const PROGRAM = `
import errno, os
os.umask(0o077)
def attempt(label, action):
    try:
        action()
        print(label, 'ok')
    except OSError as error:
        print(label, errno.errorcode[error.errno])
def create(path, mode):
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, mode))
def write(path):
    with open(path, 'a') as f:
        f.write('more')
attempt('create acl/f', lambda: create('acl/f', 0o666))
attempt('mkdir acl/d', lambda: os.mkdir('acl/d', 0o777))
attempt('create acl/d/g', lambda: create('acl/d/g', 0o640))
attempt('write acl/x', lambda: write('acl/x'))
for path in ['acl/f', 'acl/d', 'acl/d/g', 'acl/x']:
    try:
        st = os.stat(path)
        print(path, '%o' % (st.st_mode & 0o7777), st.st_uid, sorted(os.listxattr(path)))
    except OSError as error:
        print(path, errno.errorcode[error.errno])
`;

/** An ACL as the kernel takes it in system.posix_acl_* (include/uapi/linux/posix_acl_xattr.h). */
const ACLS = `
import os, struct, sys
def acl(entries):
    return struct.pack('<I', 2) + b''.join(struct.pack('<HHI', tag, perm, who) for tag, perm, who in entries)
ANY = 0xffffffff
base = sys.argv[1]
# user::rwx group::r-x other::rwx
os.setxattr(base + '/acl', 'system.posix_acl_default', acl([(1, 7, ANY), (4, 5, ANY), (0x20, 7, ANY)]))
# user::rw- user:1000:r-- group::rw- mask::rw- other::rw-
os.setxattr(base + '/acl/x', 'system.posix_acl_access', acl([(1, 6, ANY), (2, 4, 1000), (4, 6, ANY), (0x10, 6, ANY), (0x20, 6, ANY)]))
`;

let trees = 0;

/** `acl`, 0777 with a default ACL, holding `x`, root's, with an access ACL that lets uid 1000 only read it. */
function tree(): string {
  const dir = join(root, `t${trees++}`);
  mkdirSync(join(dir, 'acl'), { recursive: true });
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'acl'), 0o777);
  writeFileSync(join(dir, 'acl', 'x'), 'x');
  const set = spawnSync(PYTHON, ['-c', ACLS, dir], { encoding: 'utf8' });
  expect(set.stderr).toBe('');
  return dir;
}

function direct(dir: string, user: typeof USER | undefined): string {
  const ids =
    user === undefined ? [] : [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups'];
  const done = spawnSync(
    'setpriv',
    [...ids, '--bounding-set=-all', '--inh-caps=-all', '--', PYTHON, '-c', PROGRAM],
    { cwd: dir, encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LANG: 'C' } },
  );
  expect(done.stderr).toBe('');
  return done.stdout;
}

describe.skipIf(!asRoot)('a workdir with POSIX ACLs', () => {
  for (const [label, user] of [
    ['root', undefined],
    ['uid 1000', USER],
  ] as const) {
    it(`gives what is made and copied up the kernel's modes and ACLs, as ${label}`, async () => {
      const expected = direct(tree(), user);
      // The ACL, not the umask (077): the comparison says something.
      expect(expected).toContain('acl/f 646 ');
      expect(expected).toContain('acl/d 757 ');
      expect(expected).toContain(user === undefined ? 'write acl/x ok' : 'write acl/x EACCES');
      const workdir = tree();
      const result = await Sandbox.builder()
        .fsRead(...SYSTEM_DIRS, '/dev/null', '/proc')
        .workdir(workdir)
        .fsStorage(storage)
        .onExit('abort')
        .cwd(workdir)
        .build()
        .run([PYTHON, '-c', PROGRAM], {
          encoding: 'utf8',
          env: { PATH: '/usr/bin:/bin', LANG: 'C' },
          ...(user !== undefined ? { user } : {}),
        });
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe(expected);
      expect(storeEntries(storage)).toEqual([]);
    }, 120_000);
  }
});
