// A workdir for a sandbox that runs as another user than its root
// supervisor (SpawnOptions.user): what the user may change in the tree it
// changes in the layer, what it may not is EACCES, a set-group-ID bit the
// kernel clears for it is cleared. Against the kernel: the same program run
// as that user, with no workdir, on a copy of the tree.
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PYTHON, SYSTEM_DIRS } from '../../../../tools/test-support/index.js';
import { Sandbox } from '../../../sandlock/src/index.js';
import { cleanup, scratch } from './helpers.js';

const USER = { uid: 1000, gid: 1000, groups: [] as number[] };
/** A group the user is not in. */
const GROUP = 2000;
const asRoot = process.getuid?.() === 0;
if (!asRoot)
  console.log('other-user.test skipped: a sandbox of another user needs a root supervisor');

const root = scratch('cow-other-user-');
// The user reaches the trees beneath it.
chmodSync(root, 0o755);
afterAll(() => cleanup(root));

const PROGRAM = `
import os
os.umask(0o022)
def attempt(label, action):
    try:
        action()
        print(label, 'ok')
    except OSError as error:
        print(label, os.strerror(error.errno))
def create(path, mode=0o644):
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, mode))
def show(path):
    st = os.lstat(path)
    print(path, '%o' % (st.st_mode & 0o7777), st.st_uid, st.st_gid)
attempt('create own/f', lambda: create('own/f'))
attempt('create open/f', lambda: create('open/f'))
attempt('create closed/f', lambda: create('closed/f'))
attempt('create f', lambda: create('f'))
attempt('create sgid/f', lambda: create('sgid/f', 0o2755))
attempt('create own/deep/f', lambda: create('own/deep/f'))
attempt('mkdir own/d', lambda: os.mkdir('own/d', 0o2775))
attempt('mkdir closed/d', lambda: os.mkdir('closed/d'))
attempt('mkdir sgid/d', lambda: os.mkdir('sgid/d'))
attempt('rename own/f own/g', lambda: os.rename('own/f', 'own/g'))
attempt('rename open/f own/h', lambda: os.rename('open/f', 'own/h'))
attempt('rename closed/x own/x', lambda: os.rename('closed/x', 'own/x'))
attempt('rename own/g closed/g', lambda: os.rename('own/g', 'closed/g'))
for path in ['own/g', 'own/h', 'own/d', 'own/deep/f', 'sgid/f', 'sgid/d']:
    try:
        show(path)
    except OSError as error:
        print(path, os.strerror(error.errno))
`;

/** The tree: the workdir root and \`closed\` root's 0755, \`own\` the user's, \`open\` 0777, \`sgid\` a set-group-ID 0777 of GROUP. */
function tree(dir: string): string {
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  for (const [name, mode, uid, gid] of [
    ['own', 0o755, USER.uid, USER.gid],
    ['own/deep', 0o755, USER.uid, USER.gid],
    ['open', 0o777, 0, 0],
    ['closed', 0o755, 0, 0],
    ['sgid', 0o2777, 0, GROUP],
  ] as const) {
    mkdirSync(join(dir, name));
    chownSync(join(dir, name), uid, gid);
    chmodSync(join(dir, name), mode);
  }
  writeFileSync(join(dir, 'closed', 'x'), 'x');
  return dir;
}

function build(write: { fsWrite: string } | { workdir: string; storage: string }) {
  const builder = Sandbox.builder().fsRead(...SYSTEM_DIRS, '/dev/null', '/proc');
  if ('fsWrite' in write) builder.fsWrite(write.fsWrite).cwd(write.fsWrite);
  else builder.workdir(write.workdir).fsStorage(write.storage).onExit('abort').cwd(write.workdir);
  return builder.build();
}

const options = {
  encoding: 'utf8',
  env: { PATH: '/usr/bin:/bin', LANG: 'C' },
  user: USER,
} as const;

describe.skipIf(!asRoot)('a workdir of a sandbox run as another user', () => {
  it('lets it change what it may change, as the kernel does on the tree', async () => {
    const copy = tree(join(root, 'copy'));
    const direct = await build({ fsWrite: copy }).run([PYTHON, '-c', PROGRAM], options);
    expect(direct.stderr).toBe('');
    // The kernel's answers, so that the comparison says something.
    expect(direct.stdout).toContain('create own/f ok');
    expect(direct.stdout).toContain('create closed/f Permission denied');
    expect(direct.stdout).toContain(`sgid/f 755 ${USER.uid} ${GROUP}`);

    const workdir = tree(join(root, 'w'));
    const result = await build({ workdir, storage: join(root, 'store') }).run(
      [PYTHON, '-c', PROGRAM],
      options,
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(direct.stdout);
  }, 120_000);
});
