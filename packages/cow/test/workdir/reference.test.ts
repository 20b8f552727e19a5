// The reference's copy-on-write tests (sandlock 0.6, spec §6: test_cow.rs,
// test_dry_run.rs, TestFsMountCow) and the bugs of its §7.42, against the
// real kernel.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostArch } from '../../../sys/src/index.js';
import { cleanup, python, runIn, scratch, snapshot, storeEntries } from './helpers.js';

const root = scratch();
const storage = join(root, 'store');
afterAll(() => cleanup(root));
let count = 0;

/** A workdir holding `files` (path → content). */
function tree(files: Record<string, string> = {}): string {
  const dir = join(root, `w${count++}`);
  mkdirSync(dir);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

const sh = (script: string) => ['/bin/sh', '-c', script];

describe('the reference tests', () => {
  it('creates a file and commits it (test_seccomp_cow_create_file)', async () => {
    const dir = tree();
    const result = await runIn(sh('touch new.txt'), { workdir: dir, storage });
    expect(result.exitCode).toBe(0);
    expect(existsSync(join(dir, 'new.txt'))).toBe(true);
  });

  it('aborts: nothing created, nothing changed (test_seccomp_cow_abort)', async () => {
    const dir = tree({ 'orig.txt': 'original\n' });
    const result = await runIn(sh('touch new.txt; echo changed > orig.txt; cat orig.txt'), {
      workdir: dir,
      storage,
      onExit: 'abort',
    });
    expect(result.stdout).toBe('changed\n');
    expect(existsSync(join(dir, 'new.txt'))).toBe(false);
    expect(readFileSync(join(dir, 'orig.txt'), 'utf8')).toBe('original\n');
  });

  it('takes relative paths from the cwd (relative_path_abort, relative_path_commit)', async () => {
    const script = 'echo appended >> orig.txt; echo new > created.txt; echo leaked > leaked.txt';
    const aborted = tree({ 'orig.txt': 'original\n' });
    const before = snapshot(aborted);
    await runIn(sh(script), { workdir: aborted, storage, onExit: 'abort' });
    expect(snapshot(aborted)).toBe(before);
    const committed = tree({ 'orig.txt': 'original\n' });
    await runIn(sh(script), { workdir: committed, storage });
    expect(readFileSync(join(committed, 'orig.txt'), 'utf8')).toBe('original\nappended\n');
    expect(readFileSync(join(committed, 'created.txt'), 'utf8')).toBe('new\n');
  });

  it('opens a directory made in the layer (test_seccomp_cow_open_directory)', async () => {
    const dir = tree();
    const result = await python(
      "import os; os.makedirs('subdir', exist_ok=True); fd = os.open('subdir', os.O_RDONLY | os.O_DIRECTORY); print(os.listdir(fd))",
      { workdir: dir, storage, onExit: 'abort' },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('[]\n');
  });

  it('uses the legacy open syscall where the architecture has it (legacy_open_syscall)', async (context) => {
    if (hostArch() !== 'x86_64') {
      context.skip('aarch64 has no open(2): openat covers it');
    }
    const dir = tree();
    const source = [
      'import ctypes, os',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'fd = libc.syscall(2, b"legacy.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)',
      'assert fd >= 0, ctypes.get_errno()',
      'os.write(fd, b"legacy"); os.close(fd)',
      'print(open("legacy.txt").read())',
    ].join('\n');
    const result = await python(source, { workdir: dir, storage, onExit: 'abort' });
    expect(result.stdout).toBe('legacy\n');
    expect(existsSync(join(dir, 'legacy.txt'))).toBe(false);
  });

  it('creates with O_EXCL after an unlink (test_seccomp_cow_excl_after_unlink)', async () => {
    const dir = tree({ 'f.txt': 'old' });
    const source = [
      'import os',
      "os.unlink('f.txt')",
      "fd = os.open('f.txt', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)",
      "os.write(fd, b'new'); os.close(fd)",
    ].join('\n');
    const result = await python(source, { workdir: dir, storage });
    expect(result.stderr).toBe('');
    expect(readFileSync(join(dir, 'f.txt'), 'utf8')).toBe('new');
  });

  it('reads the original content (test_seccomp_cow_read_existing)', async () => {
    const dir = tree({ 'data.txt': 'the data\n' });
    const result = await runIn(['/bin/cat', 'data.txt'], { workdir: dir, storage });
    expect(result.stdout).toBe('the data\n');
  });

  it('fails writes past maxDisk with ENOSPC (TestFsMountCow quota)', async () => {
    const dir = tree();
    const result = await python(
      "import os\ntry:\n  os.truncate(open('big', 'w').name, 8192)\n  print('written')\nexcept OSError as e:\n  print(e.errno == 28)",
      { workdir: dir, storage, maxDisk: 1024, onExit: 'abort' },
    );
    expect(result.stdout).toBe('True\n');
  });
});

describe('dry runs (test_dry_run.rs)', () => {
  it('reports added, modified and deleted files and leaves the directory as it was', async () => {
    const dir = tree({ 'keep.txt': 'keep', 'change.txt': 'before', 'gone.txt': 'bye' });
    const before = snapshot(dir);
    const result = await runIn(sh('echo new > added.txt; echo after > change.txt; rm gone.txt'), {
      workdir: dir,
      storage,
      end: 'dry-run',
    });
    expect(result.exitCode).toBe(0);
    const changes = result.workdir!.changes.map((change) => `${change.type} ${change.path}`).sort();
    expect(changes).toEqual(['A added.txt', 'D gone.txt', 'M change.txt']);
    expect(snapshot(dir)).toBe(before);
    expect(storeEntries(storage)).toEqual([]);
  });

  it('lets the caller decide after the run (defer)', async () => {
    const dir = tree({ 'a.txt': 'a' });
    const result = await runIn(sh('echo b > b.txt'), { workdir: dir, storage, end: 'defer' });
    expect(result.workdir!.done).toBe('deferred');
    expect(existsSync(join(dir, 'b.txt'))).toBe(false);
    await result.workdir!.commit();
    expect(readFileSync(join(dir, 'b.txt'), 'utf8')).toBe('b\n');
    expect(() => result.workdir!.abort()).toThrow(/already/);
  });
});

describe('the bugs of the reference (spec §7.42)', () => {
  it('shows files made in the layer to stat, statx and ls -l', async () => {
    const dir = tree();
    const result = await runIn(
      sh('echo hello > new.txt; stat -c "%s %F" new.txt; ls -l new.txt | cut -c1-10'),
      {
        workdir: dir,
        storage,
        onExit: 'abort',
      },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('6 regular file\n-rw-r--r--\n');
  });

  it('shows a modified file’s new size to stat', async () => {
    const dir = tree({ f: 'abc' });
    const result = await runIn(sh('echo more >> f; stat -c %s f'), {
      workdir: dir,
      storage,
      onExit: 'abort',
    });
    expect(result.stdout).toBe('8\n');
  });

  it('keeps a renamed directory’s contents, and commits them', async () => {
    const dir = tree({ 'src/a.txt': 'A', 'src/deep/b.txt': 'B' });
    const result = await runIn(
      sh('mv src dst && cat dst/a.txt dst/deep/b.txt && ls src 2>/dev/null; echo $?'),
      {
        workdir: dir,
        storage,
      },
    );
    expect(result.stdout).toBe('AB2\n');
    expect(readFileSync(join(dir, 'dst', 'a.txt'), 'utf8')).toBe('A');
    expect(readFileSync(join(dir, 'dst', 'deep', 'b.txt'), 'utf8')).toBe('B');
    expect(existsSync(join(dir, 'src'))).toBe(false);
  });

  it('keeps deleted files deleted, subtree and all, and does not bring them back with O_CREAT', async () => {
    const dir = tree({ 'd/x': 'x', 'd/e/y': 'y', f: 'old' });
    const source = [
      'import os, errno',
      "os.unlink('f')",
      "print(os.path.exists('f'))",
      "fd = os.open('f', os.O_RDWR | os.O_CREAT, 0o644); print(repr(os.read(fd, 10))); os.close(fd)",
      "os.unlink('d/e/y'); os.rmdir('d/e'); os.unlink('d/x'); os.rmdir('d')",
      "print(os.path.exists('d/e/y'), os.path.exists('d'))",
      "os.mkdir('d'); print(os.listdir('d'))",
    ].join('\n');
    const result = await python(source, { workdir: dir, storage, onExit: 'abort' });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe("False\nb''\nFalse False\n[]\n");
  });

  it('fails unlink of a missing file with ENOENT and rmdir of a full directory with ENOTEMPTY', async () => {
    const dir = tree({ 'd/x': 'x' });
    const source = [
      'import os',
      "for call in (lambda: os.unlink('missing'), lambda: os.rmdir('d'), lambda: os.mkdir('d')):",
      '  try:',
      '    call(); print("ok")',
      '  except OSError as e:',
      '    print(e.strerror)',
    ].join('\n');
    const result = await python(source, { workdir: dir, storage, onExit: 'abort' });
    expect(result.stdout).toBe('No such file or directory\nDirectory not empty\nFile exists\n');
  });

  it('makes symlinks with absolute or .. targets in the layer, not in the directory', async () => {
    const dir = tree();
    const result = await runIn(
      sh('ln -s /etc/hostname abs && ln -s ../up rel && readlink abs rel'),
      {
        workdir: dir,
        storage,
        onExit: 'abort',
      },
    );
    expect(result.stdout).toBe('/etc/hostname\n../up\n');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('commits symlinks as symlinks', async () => {
    const dir = tree({ t: 'target' });
    await runIn(sh('ln -s t link'), { workdir: dir, storage });
    expect(snapshot(dir)).toContain('link symlink -> t');
  });

  it('leaves nothing in the store or the temporary directory after a run, whatever the end', async () => {
    const before = readdirSync(tmpdir())
      .filter((name) => name.startsWith('sandlock-cow'))
      .sort();
    for (const onExit of ['commit', 'abort'] as const) {
      const dir = tree();
      await runIn(sh('echo x > x; exit 3'), { workdir: dir, storage, onError: onExit });
    }
    const dir = tree();
    await runIn(sh('kill -9 $$'), { workdir: dir, storage });
    expect(storeEntries(storage)).toEqual([]);
    const after = readdirSync(tmpdir())
      .filter((name) => name.startsWith('sandlock-cow'))
      .sort();
    expect(after).toEqual(before);
  });
});

describe('the mode of what is made', () => {
  it('applies the caller’s umask and mode', async () => {
    const dir = tree();
    await runIn(sh('umask 027; mkdir d; touch f; echo x > d/g'), { workdir: dir, storage });
    expect((statSync(join(dir, 'd')).mode & 0o777).toString(8)).toBe('750');
    expect((statSync(join(dir, 'f')).mode & 0o777).toString(8)).toBe('640');
  });

  it('gives a directory exactly its mode, and makes none where the caller may not write', async () => {
    const dir = tree();
    // `locked` is made in the layer, then made read-only: the mkdir in it
    // is refused as to a caller with no capabilities (CAP_DAC_OVERRIDE
    // would let root through).
    const result = await runIn(
      sh(
        'umask 022; mkdir -m 1777 t; mkdir locked; chmod 555 locked; mkdir locked/x 2>/dev/null; echo $?; stat -c %a t',
      ),
      { workdir: dir, storage },
    );
    expect(result.stdout).toBe('1\n1777\n');
    expect(existsSync(join(dir, 'locked', 'x'))).toBe(false);
  });
});
