// Attacks on a workdir of a sandbox run as another user than its root
// supervisor: a file of root's in the tree must stay root's, in the layer
// and after the commit, and a sticky directory keeps its names from the
// user (check_sticky() and may_linkat() in fs/namei.c). Against the kernel:
// the same program run as that user with no workdir, on a copy of the tree.
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PYTHON, SYSTEM_DIRS } from '../../../../tools/test-support/index.js';
import { Sandbox } from '../../../sandlock/src/index.js';
import { cleanup, scratch } from './helpers.js';

const USER = { uid: 1000, gid: 1000, groups: [] as number[] };
/** A group of root's files, the user's in the exec test. */
const GROUP = 2000;
const asRoot = process.getuid?.() === 0;
if (!asRoot)
  console.log('other-user-escapes.test skipped: a sandbox of another user needs a root supervisor');

const root = scratch('cow-other-user-escapes-');
chmodSync(root, 0o755);
afterAll(() => cleanup(root));

const PROGRAM = `
import os
def attempt(label, action):
    try:
        action()
        print(label, 'ok')
    except OSError as error:
        print(label, os.strerror(error.errno))
def write(path):
    fd = os.open(path, os.O_WRONLY)
    os.write(fd, b'user')
    os.close(fd)
def mine(path):
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644))
attempt('unlink sticky/a', lambda: os.unlink('sticky/a'))
attempt('rename sticky/b own/b', lambda: os.rename('sticky/b', 'own/b'))
attempt('rename sticky/c sticky/c2', lambda: os.rename('sticky/c', 'sticky/c2'))
attempt('rmdir sticky/d', lambda: os.rmdir('sticky/d'))
mine('own/m')
attempt('rename own/m sticky/e', lambda: os.rename('own/m', 'sticky/e'))
attempt('link sticky/f own/f', lambda: os.link('sticky/f', 'own/f'))
attempt('write closed/shared', lambda: write('closed/shared'))
attempt('chmod closed/shared', lambda: os.chmod('closed/shared', 0o4777))
attempt('chown closed/shared', lambda: os.chown('closed/shared', 1000, 1000))
attempt('write sticky/g', lambda: write('sticky/g'))
attempt('unlink sticky/g', lambda: os.unlink('sticky/g'))
attempt('write suid', lambda: write('suid'))
`;

/** root's sticky world-writable \`sticky\` with root's files, root's \`closed\` with a world-writable file, the user's \`own\`. */
function tree(dir: string): string {
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  for (const [name, mode, uid] of [
    ['own', 0o755, USER.uid],
    ['sticky', 0o1777, 0],
    ['sticky/d', 0o755, 0],
    ['closed', 0o755, 0],
  ] as const) {
    mkdirSync(join(dir, name));
    chownSync(join(dir, name), uid, uid);
    chmodSync(join(dir, name), mode);
  }
  for (const [name, mode] of [
    ['sticky/a', 0o644],
    ['sticky/b', 0o644],
    ['sticky/c', 0o644],
    ['sticky/e', 0o644],
    ['sticky/f', 0o644],
    ['sticky/g', 0o666],
    ['closed/shared', 0o666],
    ['suid', 0o4757],
  ] as const) {
    writeFileSync(join(dir, name), 'root');
    chmodSync(join(dir, name), mode);
  }
  return dir;
}

/** Each entry: path, mode, owner and group. */
function owners(dir: string, rel = ''): string[] {
  const lines: string[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const path = rel === '' ? name : `${rel}/${name}`;
    const st = lstatSync(join(dir, path));
    lines.push(`${path} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`);
    if (st.isDirectory()) lines.push(...owners(dir, path));
  }
  return lines;
}

function build(write: { fsWrite: string } | { workdir: string; storage: string }) {
  const builder = Sandbox.builder().fsRead(...SYSTEM_DIRS, '/dev/null', '/proc');
  if ('fsWrite' in write) builder.fsWrite(write.fsWrite).cwd(write.fsWrite);
  else builder.workdir(write.workdir).fsStorage(write.storage).onExit('commit').cwd(write.workdir);
  return builder.build();
}

const options = {
  encoding: 'utf8',
  env: { PATH: '/usr/bin:/bin', LANG: 'C' },
  user: USER,
} as const;

describe.skipIf(!asRoot)('a workdir of a sandbox run as another user, attacked', () => {
  it("keeps root's files root's and a sticky directory's names, as the kernel does", async () => {
    const copy = tree(join(root, 'copy'));
    const direct = await build({ fsWrite: copy }).run([PYTHON, '-c', PROGRAM], options);
    expect(direct.stderr).toBe('');
    // The kernel's answers, so that the comparison says something.
    expect(direct.stdout).toContain('unlink sticky/a Operation not permitted');
    expect(direct.stdout).toContain('chmod closed/shared Operation not permitted');
    expect(direct.stdout).toContain('write closed/shared ok');

    const workdir = tree(join(root, 'w'));
    const result = await build({ workdir, storage: join(root, 'store') }).run(
      [PYTHON, '-c', PROGRAM],
      options,
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(direct.stdout);
    // Committed: the same owners, modes and names as the kernel left.
    expect(owners(workdir)).toEqual(owners(copy));
  }, 120_000);

  it('runs a program of the layer only where its owner, group and mode let the user', async () => {
    const EXEC = `
import os, sys
os.rename('prog', 'moved')
try:
    os.execv('./moved', ['moved'])
except OSError as error:
    print('exec', os.strerror(error.errno))
`;
    const user = { ...USER, groups: [GROUP] };
    const program = (dir: string) => {
      mkdirSync(dir, { mode: 0o755 });
      chownSync(dir, USER.uid, USER.gid);
      // Others may run it, its group (the user's) may not.
      writeFileSync(join(dir, 'prog'), '#!/bin/sh\necho ran\n');
      chownSync(join(dir, 'prog'), 0, GROUP);
      chmodSync(join(dir, 'prog'), 0o705);
      return dir;
    };
    const run = (write: { fsWrite: string } | { workdir: string; storage: string }) =>
      build(write).run([PYTHON, '-c', EXEC], { ...options, user });
    const direct = await run({ fsWrite: program(join(root, 'exec-copy')) });
    expect(direct.stderr).toBe('');
    expect(direct.stdout).toBe('exec Permission denied\n');
    const result = await run({
      workdir: program(join(root, 'exec-w')),
      storage: join(root, 'store'),
    });
    expect({ stdout: result.stdout, stderr: result.stderr }).toEqual({
      stdout: direct.stdout,
      stderr: '',
    });
    // The control: a program its group may run runs from the layer.
    const open = program(join(root, 'exec-open'));
    chmodSync(join(open, 'prog'), 0o755);
    const ran = await run({ workdir: open, storage: join(root, 'store') });
    expect({ stdout: ran.stdout, stderr: ran.stderr }).toEqual({ stdout: 'ran\n', stderr: '' });
  }, 120_000);
});
