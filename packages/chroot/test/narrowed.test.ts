// A program inside the emulated chroot that narrows itself with Landlock
// (support/narrowed.c: reads of /ro, anything in /rw, nothing else), against
// the kernel under a real chroot(2): its opens are its own (its domain
// decides them, as the kernel's), what its own domain refuses stays refused
// when the chroot module answers on its behalf, and what the module would
// have to do with the sandbox's wider authority is refused too (fail
// closed), never done.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProbe, makeTree, OPS, outcomes, refusedByBoth } from './support/narrowed.js';
import { runInRoot } from './support/rootfs.js';

const root = process.getuid?.() === 0;
const compiler = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const why = !root
  ? 'a real chroot(2) needs root'
  : !compiler
    ? 'no C compiler for the static probe'
    : null;
if (why !== null) console.log(`narrowed chroot tests skipped: ${why}`);

describe.skipIf(why !== null)('a program that narrows itself with Landlock inside a chroot', () => {
  const base = why === null ? realpathSync(mkdtempSync(join(tmpdir(), 'sandlock-narrowed-'))) : '';
  afterAll(() => {
    if (base !== '') rmSync(base, { recursive: true, force: true });
  });
  const probe = why === null ? buildProbe(base) : '';
  let made = 0;
  const fresh = (name: string) => {
    made += 1;
    const dir = join(base, `${name}-${made}`);
    makeTree(dir, probe);
    return dir;
  };
  const kernel = () => {
    const dir = fresh('kernel');
    return execFileSync('chroot', [dir, '/probe', ...OPS('')], { encoding: 'utf8' });
  };

  it('the kernel: its own domain decides', () => {
    expect(kernel()).toBe(
      [
        'landlock /ro /rw: ok',
        'cat /ro/file: ok',
        'cat /other/file: EACCES',
        'ls /ro: ok',
        'ls /other: EACCES',
        'write /rw/new: ok',
        'write /other/new: EACCES',
        'write /ro/new: EACCES',
        'mkdir /rw/d: ok',
        'mkdir /other/d: EACCES',
        'rename /rw/a /rw/b: ok',
        'rename /other/file /other/moved: EACCES',
        'rename /other/file /rw/moved: EACCES',
        'link /rw/a /rw/c: ENOENT',
        'link /other/file /rw/l: EXDEV',
        'unlink /other/file: EACCES',
        'truncate /rw/a: ENOENT',
        'truncate /other/file: EACCES',
        'exec /ro/probe: ok',
        'exec /other/probe: EACCES',
        '',
      ].join('\n'),
    );
  });

  it('the emulated chroot: its reads are its domain’s, and nothing its domain refuses is done on its behalf', async () => {
    const alone = kernel();
    const dir = fresh('emulated');
    const result = await runInRoot(dir, ['/probe', ...OPS('')], {
      write: ['/ro', '/rw', '/other'],
    });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(refusedByBoth(alone, result.stdout)).toEqual([]);
    // Its reads are its own opens (the caller's openat beneath a directory
    // the walk found): its domain decides, as under chroot(2). Every change
    // the supervisor would make for it: refused (rename and link with
    // Landlock's EXDEV).
    const inside = outcomes(result.stdout);
    const kernelSays = outcomes(alone);
    expect(inside.get('landlock /ro /rw')).toBe('ok');
    expect(inside.get('exec /ro/probe')).toBe('ok');
    for (const op of ['cat /ro/file', 'cat /other/file', 'ls /ro', 'ls /other']) {
      expect([op, inside.get(op)]).toEqual([op, kernelSays.get(op)]);
    }
    expect(inside.get('cat /ro/file')).toBe('ok');
    for (const [op, outcome] of inside) {
      // An exec runs the caller's own execveat of the file: its domain decides.
      if (/^(landlock|cat|ls) /.test(op) || op === 'exec /ro/probe') continue;
      const refusal = /^(rename|link) /.test(op) ? 'EXDEV' : 'EACCES';
      expect([op, outcome]).toEqual([op, refusal]);
    }
    expect(existsSync(join(dir, 'other/new'))).toBe(false);
    expect(existsSync(join(dir, 'other/d'))).toBe(false);
    expect(readFileSync(join(dir, 'other/file'), 'utf8')).toBe('not for the narrowed\n');
    expect(existsSync(join(dir, 'rw/new'))).toBe(false);
  }, 180_000);

  it('opens what its domain lets it open as chroot(2) does, with or without other threads', async () => {
    const reads = [
      'landlock:/ro:/rw',
      'cat:/ro/file',
      'cat:ro/file',
      'cat:/ro/../ro/file',
      'cat:/other/../ro/file',
      'cat:/ro//file',
      'cat:/other/file',
      'cat:/ro/../other/file',
      'cat:/ro/nothing',
      'ls:/ro',
      'ls:/ro/',
      'ls:/',
      'ls:/other',
      'append:/rw/a',
      'append:/other/file',
      'append:/ro/file',
      'fdflags:/ro/file',
    ];
    const ops = [...reads, 'thread', 'cat:/ro/file', 'ls:/ro'];
    const real = fresh('kernel-reads');
    const alone = execFileSync('chroot', [real, '/probe', ...ops], { encoding: 'utf8' });
    const dir = fresh('emulated-reads');
    const result = await runInRoot(dir, ['/probe', ...ops], { write: ['/ro', '/rw', '/other'] });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(alone);
    expect(outcomes(alone).get('cat /ro/file')).toBe('ok');
    expect(outcomes(alone).get('cat /other/file')).toBe('EACCES');
    expect(readFileSync(join(dir, 'rw/a'), 'utf8')).toBe('mine\nmore\n');
    expect(readFileSync(join(dir, 'other/file'), 'utf8')).toBe('not for the narrowed\n');
    // After a thread started, each open runs in a child of the caller apart
    // from the table its threads share (a retarget apart of @sandlock/dispatch).
    expect(alone.split('\n').slice(reads.length)).toEqual([
      'thread : ok',
      'cat /ro/file: ok',
      'ls /ro: ok',
      '',
    ]);
  }, 180_000);

  it('a thread racing getdents64 and openat(fd, "..") on every descriptor while another opens: nothing listed, nothing outside, as under chroot(2)', async () => {
    // Its domain reads /ro/file and lists nothing: the directory the lookup
    // needs must never be in the table its racing thread uses.
    const ops = [
      'landlockfile:/ro/file',
      'cat:/ro/file',
      'ls:/ro',
      'cat:/other/file',
      'race:/ro/file:100',
      'race:/other/file:20',
      'pidfdgetfd',
    ];
    const alone = execFileSync('chroot', [fresh('kernel-race'), '/probe', ...ops], {
      encoding: 'utf8',
    });
    expect(alone).toBe(
      [
        'landlockfile /ro/file: ok',
        'cat /ro/file: ok',
        'ls /ro: EACCES',
        'cat /other/file: EACCES',
        'race /ro/file 100: 100 read, 0 listed, 0 escaped, 0 children, 0 SIGCHLD',
        'race /other/file 20: 0 read, 0 listed, 0 escaped, 0 children, 0 SIGCHLD',
        'pidfdgetfd : ok',
        '',
      ].join('\n'),
    );
    const result = await runInRoot(fresh('emulated-race'), ['/probe', ...ops], {
      write: ['/ro', '/rw', '/other'],
    });
    expect(result.stderr).toBe('');
    // pidfd_getfd aside: refused to a narrowed caller, whose other threads
    // could otherwise take the directory from the child an open runs in.
    expect(result.stdout).toBe(alone.replace('pidfdgetfd : ok', 'pidfdgetfd : EPERM'));
  }, 180_000);

  it('a workdir over the root: nothing its domain refuses lands in the layer', async () => {
    const alone = kernel();
    const dir = fresh('layered');
    const storage = join(base, 'store');
    mkdirSync(storage, { recursive: true });
    const result = await runInRoot(dir, ['/probe', ...OPS('')], {
      write: ['/ro', '/rw', '/other'],
      workdir: { dir, storage },
    });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(refusedByBoth(alone, result.stdout)).toEqual([]);
    expect(outcomes(result.stdout).get('write /other/new')).toBe('EACCES');
    expect(result.workdir?.changes ?? []).toEqual([]);
  }, 180_000);

  it('a child orphaned after the narrowing (reparented to the reaper) is still held to the domain', async () => {
    const [narrow, ...rest] = OPS('');
    const ops = [narrow!, 'orphan', ...rest];
    const alone = execFileSync('chroot', [fresh('kernel'), '/probe', ...ops], { encoding: 'utf8' });
    expect(outcomes(alone).get('orphan')).toBe('ok');
    const dir = fresh('orphaned');
    const result = await runInRoot(dir, ['/probe', ...ops], { write: ['/ro', '/rw', '/other'] });
    expect(result.stderr).toBe('');
    expect(outcomes(result.stdout).get('orphan')).toBe('ok');
    expect(refusedByBoth(alone, result.stdout)).toEqual([]);
    expect(existsSync(join(dir, 'other/new'))).toBe(false);
    expect(readFileSync(join(dir, 'other/file'), 'utf8')).toBe('not for the narrowed\n');
  }, 180_000);

  it('a sibling made with clone(CLONE_PARENT) after the narrowing is still held to the domain', async () => {
    const [narrow, ...rest] = OPS('');
    const ops = ['fork', narrow!, 'cloneparent', ...rest];
    const alone = execFileSync('chroot', [fresh('kernel'), '/probe', ...ops], { encoding: 'utf8' });
    expect(outcomes(alone).get('cloneparent')).toBe('ok');
    const dir = fresh('sibling');
    const result = await runInRoot(dir, ['/probe', ...ops], { write: ['/ro', '/rw', '/other'] });
    expect(result.stderr).toBe('');
    // Refused to a narrowed caller: its sibling's ancestry holds no mark of the domain.
    expect(outcomes(result.stdout).get('cloneparent')).toBe('EPERM');
    expect(refusedByBoth(alone, result.stdout)).toEqual([]);
    expect(existsSync(join(dir, 'other/new'))).toBe(false);
  }, 180_000);
});
