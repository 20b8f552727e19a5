// chdir into a directory and exec of a program that only the layer holds:
// the calls are retargeted (fchdir, execveat of a descriptor of the layer's
// object), the caller's memory untouched.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, PYTHON, python, runIn, scratch } from './helpers.js';

const root = scratch();
const storage = join(root, 'store');
afterAll(() => cleanup(root));
let count = 0;

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

describe('a directory of the layer', () => {
  it('is a cwd: getcwd and /proc/self/cwd show the workdir path, relative paths resolve in the merged view', async () => {
    const dir = tree({ 'old.txt': 'old\n' });
    const result = await python(
      `
import os
os.mkdir('new')
os.chdir('new')
print(os.getcwd())
with open('f', 'w') as f: f.write('in new\\n')
print(os.listdir('.'), open('f').read().strip())
print(open('../old.txt').read().strip())
os.mkdir('deeper')
os.chdir('deeper')
print(os.getcwd())
print(os.readlink('/proc/self/cwd'))
os.chdir('..')
os.chdir('..')
print(sorted(os.listdir('.')))
`,
      { workdir: dir, storage },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout.split('\n')).toEqual([
      join(dir, 'new'),
      "['f'] in new",
      'old',
      join(dir, 'new', 'deeper'),
      join(dir, 'new', 'deeper'),
      "['new', 'old.txt']",
      '',
    ]);
    expect(readFileSync(join(dir, 'new', 'f'), 'utf8')).toBe('in new\n');
  });

  it("is where the shell's cd goes (pwd -P asks getcwd)", async () => {
    const dir = tree();
    const result = await runIn(sh('mkdir -p a/b && cd a/b && /bin/pwd -P && echo x > y && cat y'), {
      workdir: dir,
      storage,
      onExit: 'abort',
    });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`${join(dir, 'a', 'b')}\nx\n`);
    expect(existsSync(join(dir, 'a'))).toBe(false);
  });

  it('is a cwd when the sandbox may search it but not read it (0111), by the two-step retarget', async () => {
    const dir = tree();
    const script =
      'mkdir -p s/sub && chmod 111 s && cd s && /bin/pwd -P && cd sub && /bin/pwd -P && cd .. && /bin/pwd -P';
    const result = await runIn(sh(script), { workdir: dir, storage, onExit: 'abort' });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`${join(dir, 's')}\n${join(dir, 's', 'sub')}\n${join(dir, 's')}\n`);
  });

  // Run as root, the supervisor's own capabilities would read any directory:
  // the same run as an unprivileged user, the way most users run it.
  const bundle = fileURLToPath(new URL('../../../sandlock/dist/index.js', import.meta.url));
  const asUser =
    process.getuid?.() !== 0
      ? 'the suite runs as an unprivileged user already'
      : !existsSync(bundle)
        ? 'sandlock is not built (pnpm build)'
        : spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status !== 0
          ? 'no setpriv (util-linux)'
          : null;
  if (asUser !== null) console.log(`search-only cwd as an unprivileged user skipped: ${asUser}`);
  it.skipIf(asUser !== null)(
    'is a search-only cwd for a sandbox whose supervisor runs as an unprivileged user',
    () => {
      const home = scratch('cow-nobody-');
      try {
        chmodSync(home, 0o755);
        const dir = join(home, 'w');
        mkdirSync(dir);
        chownSync(dir, 65534, 65534);
        const program = join(home, 'run.mjs');
        // The layer's listing reads every directory of it: the last chmod lets the dry run list s.
        const script = `mkdir -p s/sub && chmod 111 s && cd s && /bin/pwd -P && cd sub && /bin/pwd -P; cd /; chmod 755 ${dir}/s`;
        writeFileSync(
          program,
          [
            `const { Sandbox } = await import(${JSON.stringify(bundle)});`,
            `const result = await Sandbox.builder().workdir(${JSON.stringify(dir)})`,
            `  .fsStorage(${JSON.stringify(join(dir, '..', 'store'))})`,
            "  .fsRead('/usr', '/bin', '/lib', '/lib64', '/etc').build()",
            `  .run(['/bin/sh', '-c', ${JSON.stringify(script)}],`,
            `    { encoding: 'utf8', cwd: ${JSON.stringify(dir)}, workdirEnd: 'dry-run' });`,
            'process.stdout.write(JSON.stringify([result.stdout, result.stderr]));',
          ].join('\n'),
        );
        chownSync(home, 65534, 65534);
        const out = execFileSync(
          'setpriv',
          [
            '--reuid=65534',
            '--regid=65534',
            '--clear-groups',
            '--inh-caps=-all',
            process.execPath,
            program,
          ],
          { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home } },
        );
        expect(JSON.parse(out)).toEqual([`${join(dir, 's')}\n${join(dir, 's', 'sub')}\n`, '']);
      } finally {
        cleanup(home);
      }
    },
    120_000,
  );

  it('a chdir into a file of the layer fails with ENOTDIR, a missing one with ENOENT', async () => {
    const dir = tree();
    const result = await python(
      `
import os
open('file', 'w').close()
for path in ('file', 'missing'):
    try:
        os.chdir(path)
    except OSError as e:
        print(e.errno)
`,
      { workdir: dir, storage, onExit: 'abort' },
    );
    expect(result.stdout).toBe('20\n2\n');
  });
});

describe('a program of the layer', () => {
  it('runs: a copied binary (execve), and through execveat of a directory descriptor', async () => {
    const dir = tree();
    const result = await python(
      `
import os, shutil, sys
shutil.copy('/bin/echo', 'myecho')
os.chmod('myecho', 0o755)
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    os.execv('./myecho', ['myecho', 'from', 'the', 'layer'])
os.waitpid(pid, 0)
d = os.open('.', os.O_RDONLY | os.O_DIRECTORY)
os.execve('myecho', ['myecho', 'relative', 'to', 'a', 'descriptor'], {}) if False else None
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
argv = (ctypes.c_char_p * 3)(b'myecho', b'execveat', None)
envp = (ctypes.c_char_p * 1)(None)
nr = {'x86_64': 322, 'aarch64': 281}[os.uname().machine]
libc.syscall(nr, d, b'myecho', argv, envp, 0)
print('execveat failed', ctypes.get_errno())
`,
      { workdir: dir, storage, onExit: 'abort' },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('from the layer\nexecveat\n');
  });

  it('runs a #! script the layer holds, with its interpreter looked up by the kernel', async () => {
    const dir = tree();
    const result = await runIn(
      sh('printf \'#!/bin/sh\\necho script says "$@"\\n\' > s.sh && chmod +x s.sh && ./s.sh hi'),
      { workdir: dir, storage, onExit: 'abort' },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('script says hi\n');
  });

  it("leaves the program copy to a script's interpreter read-only, and none to a binary", async () => {
    const dir = tree();
    const lister = `
import os
for n in sorted(os.listdir('/proc/self/fd'), key=int):
    try:
        target = os.readlink('/proc/self/fd/' + n)
    except OSError:
        continue
    if 'sandlock-program' in target:
        flags = int(open('/proc/self/fdinfo/' + n).read().split('flags:')[1].split()[0], 8)
        print('copy open, access mode', flags & 3)
print('done')
`;
    const result = await python(
      `
import os, shutil, subprocess, sys
with open('lister.py', 'w') as f:
    f.write('#!${PYTHON}\\n' + ${JSON.stringify(lister)})
os.chmod('lister.py', 0o755)
shutil.copy('${PYTHON}', 'py')
os.chmod('py', 0o755)
print(subprocess.run(['./lister.py'], capture_output=True, text=True).stdout, end='')
print(subprocess.run(['./py', 'lister.py'], capture_output=True, text=True).stdout, end='')
`,
      { workdir: dir, storage, onExit: 'abort' },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('copy open, access mode 0\ndone\ndone\n');
  });

  it('a file of the lower, unchanged, runs as it did (left to the kernel)', async () => {
    const dir = tree({ 'run.sh': '#!/bin/sh\necho lower\n' });
    const result = await runIn(sh('chmod +x run.sh; ./run.sh'), {
      workdir: dir,
      storage,
      onExit: 'abort',
    });
    expect(result.stdout).toBe('lower\n');
  });
});
