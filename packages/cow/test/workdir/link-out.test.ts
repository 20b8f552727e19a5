// A symlink the sandbox makes in the layer to outside the workdir (issue
// #16): every call through it must answer what the kernel answers a process
// with the same Landlock domain following the same link made in a plain
// directory. Targets the policy grants, and targets it does not (EACCES,
// never the file); relative links whose `..` leave the workdir; a chain
// layer link → real link → outside.
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PYTHON, SYSTEM_DIRS } from '../../../../tools/test-support/index.js';
import { type RunResult, Sandbox } from '../../../sandlock/src/index.js';
import { cleanup, runIn, scratch } from './helpers.js';

const root = scratch('cow-linkout-');
const storage = join(root, 'store');
afterAll(() => cleanup(root));

/** Outside every policy below: the sandbox may neither read nor execute it. */
const secret = join(root, 'secret');
mkdirSync(secret);
writeFileSync(join(secret, 'file'), 'secret\n');
copyFileSync('/usr/bin/true', join(secret, 'prog'));
/** A real symlink outside the workdir, to /etc/hostname. */
const chain = join(root, 'real-link');
symlinkSync('/etc/hostname', chain);

/**
 * Makes the links in its cwd, then calls through each: one line of JSON,
 * [call, result or errno name] pairs. WRITABLE: a directory the policy
 * lets it write, outside its cwd.
 */
const PROGRAM = `
import errno, json, os, subprocess, sys
secret, chain, writable = sys.argv[1:4]
here = os.getcwd()
os.symlink('/etc/hostname', 'h')
os.symlink(os.path.relpath('/etc/hostname', here), 'rel')
os.symlink(os.path.relpath('/usr/bin', here) + '/', 'relbin')
os.symlink(secret + '/file', 'denied')
os.symlink(secret + '/prog', 'denied-prog')
os.symlink(secret, 'sd')
os.symlink('/usr/bin', 'b')
os.symlink(chain, 'chain')
os.symlink(writable, 'wd')
out = []
def rec(name, call):
    try:
        out.append([name, call()])
    except OSError as e:
        out.append([name, errno.errorcode[e.errno]])
def read(path):
    with open(path, 'rb') as f:
        data = f.read()
        return [len(data), data[:32].hex()]
def stat(path, follow=True):
    s = os.stat(path, follow_symlinks=follow)
    return [s.st_dev, s.st_ino, s.st_mode, s.st_size]
def run(path):
    return subprocess.run([path], stdin=subprocess.DEVNULL).returncode
def cd(path):
    os.chdir(path)
    try:
        return [os.getcwd(), os.path.exists('true')]
    finally:
        os.chdir(here)
for name in ['h', 'rel', 'chain', 'denied', 'sd/file', 'relbin/true', 'b/true', 'denied-prog']:
    rec('read ' + name, lambda: read(name))
    rec('stat ' + name, lambda: stat(name))
    rec('access r ' + name, lambda: os.access(name, os.R_OK))
    rec('access x ' + name, lambda: os.access(name, os.X_OK))
rec('lstat b/true', lambda: stat('b/true', False))
rec('readlink b/python3', lambda: os.readlink('b/python3'))
rec('list b', lambda: 'true' in os.listdir('b'))
rec('list sd', lambda: os.listdir('sd'))
rec('exec b/true', lambda: run('b/true'))
rec('exec relbin/true', lambda: run('relbin/true'))
rec('exec denied-prog', lambda: run('./denied-prog'))
rec('exec sd/prog', lambda: run('sd/prog'))
rec('chdir b', lambda: cd('b'))
rec('chdir relbin', lambda: cd('relbin'))
rec('write wd/new', lambda: open('wd/new', 'x').write('made\\n'))
rec('read wd/new', lambda: read('wd/new'))
rec('stat wd/new', lambda: oct(os.stat('wd/new').st_mode))
rec('chmod wd/new', lambda: os.chmod('wd/new', 0o600))
rec('utime wd/new', lambda: os.utime('wd/new', (1, 2)))
rec('stat wd/new after', lambda: [oct(os.stat('wd/new').st_mode), os.stat('wd/new').st_mtime])
rec('chmod h', lambda: os.chmod('h', 0o600))
rec('getxattr h', lambda: os.getxattr('h', 'user.none'))
rec('listxattr b/true', lambda: os.listxattr('b/true'))
rec('setxattr wd/new', lambda: os.setxattr('wd/new', 'user.k', b'v'))
rec('getxattr wd/new', lambda: os.getxattr('wd/new', 'user.k').decode())
rec('write denied', lambda: open('denied', 'w').write('no'))
rec('read h after', lambda: read('h'))
print(json.dumps(out))
`;

function sandbox(cwd: string, writable: string, workdir: string | null) {
  const builder = Sandbox.builder()
    .fsRead(...SYSTEM_DIRS, '/dev/null', '/proc', chain)
    .fsWrite(writable)
    .cwd(cwd);
  if (workdir === null) builder.fsWrite(cwd);
  else builder.workdir(workdir).fsStorage(storage).onExit('abort').onError('abort');
  return builder.build();
}

function calls(result: RunResult<string>): [string, unknown][] {
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  return JSON.parse(result.stdout) as [string, unknown][];
}

describe('a symlink made in the layer to outside the workdir', () => {
  it('is followed as the kernel follows it in a plain directory, the policy applied', async () => {
    const plain = join(root, 'plain');
    const work = join(root, 'work');
    const writablePlain = join(root, 'out-plain');
    const writableWork = join(root, 'out-work');
    for (const dir of [plain, work, writablePlain, writableWork]) mkdirSync(dir);
    const env = { PATH: '/usr/bin:/bin', LANG: 'C' };
    const args = (writable: string) => [PYTHON, '-c', PROGRAM, secret, chain, writable];
    const kernel = calls(
      await sandbox(plain, writablePlain, null).run(args(writablePlain), { encoding: 'utf8', env }),
    );
    const layered = calls(
      await sandbox(work, writableWork, work).run(args(writableWork), {
        encoding: 'utf8',
        env,
        workdirEnd: 'policy',
      }),
    );
    // The table reaches both sides of the policy, as the kernel answers.
    const byName = new Map(kernel);
    expect(byName.get('read h')).toBeInstanceOf(Array);
    expect(byName.get('read denied')).toBe('EACCES');
    expect(byName.get('exec denied-prog')).toBe('EACCES');
    expect(byName.get('list sd')).toBe('EACCES');
    expect(byName.get('exec b/true')).toBe(0);
    expect(byName.get('write wd/new')).toBe(5);
    expect(layered).toEqual(kernel);
  });

  it('runs a venv whose python is a layer link to the system one', async () => {
    const work = join(root, 'venv');
    mkdirSync(work);
    const result = await runIn(
      [
        '/bin/sh',
        '-c',
        `${PYTHON} -m venv --without-pip .venv && .venv/bin/python -c 'import sys; print(sys.prefix)'`,
      ],
      { workdir: work, storage, onExit: 'abort' },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe(join(work, '.venv'));
    expect(result.exitCode).toBe(0);
  });
});
