// What a sandbox with a copy-on-write workdir must not reach: the real
// directory (its changes go to the layer), and anything outside it the
// policy does not grant, whatever path, link or race it uses.
import {
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, python, runIn, scratch, snapshot } from './helpers.js';

const root = scratch();
const storage = join(root, 'store');
afterAll(() => cleanup(root));
let count = 0;

function tree(files: Record<string, string> = {}): string {
  const dir = join(root, `w${count++}`);
  mkdirSync(dir);
  for (const [path, content] of Object.entries(files)) writeFileSync(join(dir, path), content);
  return dir;
}

const sh = (script: string) => ['/bin/sh', '-c', script];

describe('escapes', () => {
  it('writes nothing through a symlink in the workdir that points outside it', async () => {
    const outside = join(root, 'secret.txt');
    writeFileSync(outside, 'secret\n');
    const dir = tree();
    symlinkSync(outside, join(dir, 'link'));
    symlinkSync('../secret.txt', join(dir, 'relative'));
    const result = await runIn(sh('echo x > link; echo $?; echo y >> relative; echo $?'), {
      workdir: dir,
      storage,
    });
    expect(result.stdout).not.toMatch(/^0$/m);
    expect(readFileSync(outside, 'utf8')).toBe('secret\n');
  });

  it('writes nothing above the workdir through ..', async () => {
    const dir = tree();
    const before = readdirSync(root).sort();
    await runIn(sh('echo x > ../escaped.txt; mkdir ../escaped; touch a/../../escaped2'), {
      workdir: dir,
      storage,
    });
    expect(readdirSync(root).sort()).toEqual(before);
  });

  it('renames and links across the workdir’s edge with EXDEV, as across two mounts', async () => {
    const out = join(root, `out${count++}`);
    mkdirSync(out);
    writeFileSync(join(out, 'outside.txt'), 'o');
    const dir = tree({ 'inside.txt': 'i' });
    const source = [
      'import os',
      `out = ${JSON.stringify(out)}`,
      'for call in (lambda: os.rename("inside.txt", out + "/moved"),',
      '             lambda: os.rename(out + "/outside.txt", "moved"),',
      '             lambda: os.link(out + "/outside.txt", "linked"),',
      '             lambda: os.link("inside.txt", out + "/linked")):',
      '  try:',
      '    call(); print("done")',
      '  except OSError as e:',
      '    print(e.strerror)',
    ].join('\n');
    const result = await python(source, { workdir: dir, storage, fsWrite: [out] });
    expect(result.stdout).toBe('Invalid cross-device link\n'.repeat(4));
    expect(readdirSync(out)).toEqual(['outside.txt']);
    expect(readdirSync(dir)).toEqual(['inside.txt']);
  });

  it('keeps a hard link of an outside file (made beforehand) as the kernel would: written in the layer only', async () => {
    const outside = join(root, 'shared.txt');
    writeFileSync(outside, 'shared\n');
    const dir = tree();
    linkSync(outside, join(dir, 'hard'));
    await runIn(sh('echo changed > hard'), { workdir: dir, storage, onExit: 'abort' });
    expect(readFileSync(outside, 'utf8')).toBe('shared\n');
  });

  it('never lets a thread swapping the path between check and use write the workdir or outside', async () => {
    const out = join(root, `race${count++}`);
    mkdirSync(out);
    const dir = tree({ target: 'original\n' });
    const before = snapshot(dir);
    const source = [
      'import ctypes, os, threading',
      'libc = ctypes.CDLL(None, use_errno=True)',
      `inside = b"target\\0"`,
      `outside = ${JSON.stringify(`${out}/x`)}.encode() + b"\\0"`,
      'size = max(len(inside), len(outside))',
      'buf = ctypes.create_string_buffer(size)',
      'stop = False',
      'def flip():',
      '  while not stop:',
      '    ctypes.memmove(buf, inside, len(inside))',
      '    ctypes.memmove(buf, outside, len(outside))',
      't = threading.Thread(target=flip); t.start()',
      'opened = 0',
      'for i in range(1500):',
      '  fd = libc.open(buf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)',
      '  if fd >= 0:',
      '    os.write(fd, b"raced"); os.close(fd); opened += 1',
      'stop = True; t.join()',
      'print(opened > 0)',
    ].join('\n');
    const result = await python(source, { workdir: dir, storage, onExit: 'abort' });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('True\n');
    expect(readdirSync(out)).toEqual([]);
    expect(snapshot(dir)).toBe(before);
  });

  it('changes metadata through a descriptor of the real file in the layer only', async () => {
    const dir = tree({ f: 'f' });
    const mode = statSync(join(dir, 'f')).mode;
    const source = [
      'import os',
      "fd = os.open('f', os.O_RDONLY)",
      'os.fchmod(fd, 0o600)',
      'os.utime(fd, (1, 1))',
      "print(oct(os.stat('f').st_mode & 0o777), os.stat('f').st_mtime)",
    ].join('\n');
    const result = await python(source, { workdir: dir, storage, onExit: 'abort' });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('0o600 1.0\n');
    expect(statSync(join(dir, 'f')).mode).toBe(mode);
  });

  it('changes no real file through a descriptor number swapped after the check', async () => {
    // fchmod(N) where N is a file of the layer: were the call let through,
    // the kernel would look N up again, and another thread may have put a
    // descriptor of the real file there meanwhile (Landlock does not
    // mediate fchmod or futimens).
    const dir = tree({ f: 'f' });
    const before = statSync(join(dir, 'f'));
    const source = [
      'import os, threading',
      "upper = os.open('new', os.O_WRONLY | os.O_CREAT, 0o644)",
      "lower = os.open('f', os.O_RDONLY)",
      'n = os.dup(upper)',
      'stop = False',
      'def swap():',
      '  while not stop:',
      '    os.dup2(lower, n); os.dup2(upper, n)',
      't = threading.Thread(target=swap); t.start()',
      'for i in range(600):',
      '  try:',
      '    os.fchmod(n, 0o600 if i % 2 else 0o640); os.utime(n, (i, i))',
      '  except OSError:',
      '    pass',
      'stop = True; t.join()',
      "print(oct(os.stat('new').st_mode & 0o777))",
    ].join('\n');
    const result = await python(source, { workdir: dir, storage, onExit: 'abort' });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^0o6[04]0\n$/);
    const after = statSync(join(dir, 'f'));
    expect(after.mode).toBe(before.mode);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  }, 300_000);

  it('refuses metadata changes outside the workdir when nothing else is writable', async () => {
    const dir = tree();
    const outside = join(root, 'mine.txt');
    writeFileSync(outside, 'mine', { mode: 0o644 });
    const result = await python(
      `import os\ntry:\n  os.chmod(${JSON.stringify(outside)}, 0o600)\nexcept OSError as e:\n  print(e.strerror)`,
      { workdir: dir, storage },
    );
    expect(result.stdout).toBe('Permission denied\n');
    expect(statSync(outside).mode & 0o777).toBe(0o644);
  });

  it('does not reach the layers’ store', async () => {
    const dir = tree();
    const result = await runIn(sh(`ls ${storage}; echo x > ${storage}/x; ls ${storage}/*/upper`), {
      workdir: dir,
      storage,
      onExit: 'abort',
    });
    expect(result.stdout).toBe('');
    expect(existsSync(join(storage, 'x'))).toBe(false);
  });
});
