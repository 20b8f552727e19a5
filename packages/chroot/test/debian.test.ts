// The emulated chroot over a real Debian root (debootstrap, support/debian.ts):
// its shell, its dynamically linked programs with its own loader and
// libraries, scripts, apt and dpkg; dpkg writing through a workdir over the
// root, listed by a dry run.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianRoot } from './support/debian.js';
import { runInRoot } from './support/rootfs.js';

const root = debianRoot();
if ('missing' in root) console.log(`Debian root tests skipped: ${root.missing}`);

describe.skipIf('missing' in root)('the emulated chroot over a Debian root', () => {
  const dir = 'dir' in root ? root.dir : '';
  let host: string;
  const deb = `tmp/sandlock-test-${process.pid}.deb`;
  beforeAll(async () => {
    host = realpathSync(mkdtempSync(join(tmpdir(), 'sandlock-debian-test-')));
    mkdirSync(join(host, 'scripts'));
    const script = (name: string, text: string) =>
      writeFileSync(join(host, 'scripts', name), text, { mode: 0o755 });
    script('sh', '#!/bin/sh\necho "sh $0 $1"; cd /etc && pwd\n');
    script('env-python', '#!/usr/bin/env python3\nimport sys\nprint("python", sys.argv)\n');
    script('python', '#!/usr/bin/python3 -S\nimport sys\nprint("python -S", sys.argv)\n');
    // A package built here, for dpkg to install through the workdir.
    const pkg = join(host, 'pkg');
    mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
    mkdirSync(join(pkg, 'usr/share/sandlock-test'), { recursive: true });
    writeFileSync(join(pkg, 'usr/share/sandlock-test/hello'), 'hello\n');
    writeFileSync(
      join(pkg, 'DEBIAN/control'),
      'Package: sandlock-test\nVersion: 1.0\nArchitecture: all\nMaintainer: Sandlock <test@example.org>\nDescription: a package of the chroot tests\n',
    );
    // In the root's /tmp (the workdir's walk does not take mounts yet), removed after.
    execFileSync('dpkg-deb', ['--build', '--root-owner-group', pkg, join(dir, deb)], {
      stdio: 'ignore',
    });
    // The first sandbox starts the supervisor's worker: outside the tests' time.
    await runInRoot(dir, ['/bin/true']);
  }, 300_000);
  afterAll(() => {
    rmSync(join(dir, deb), { force: true });
    if (host !== undefined) rmSync(host, { recursive: true, force: true });
  });

  const run = (argv: string[], mounts: string[] = []) =>
    runInRoot(dir, argv, { mounts: [`/scripts:${join(host, 'scripts')}:ro`, ...mounts] });

  it('runs its shell: cd, pwd, ls, cat', async () => {
    const result = await run(['/bin/sh', '-c', 'cd /etc && pwd && ls && cat os-release']);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^\/etc\n/);
    expect(result.stdout.split('\n')).toEqual(
      expect.arrayContaining(['apt', 'dpkg', 'os-release']),
    );
    expect(result.stdout).toContain('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"');
  });

  it('runs dynamically linked programs with its own loader and libraries', async () => {
    const ls = await run(['/bin/ls', '-l', '/']);
    expect(ls.stderr).toBe('');
    expect(ls.stdout).toMatch(/ bin -> usr\/bin\n/);
    const python = await run([
      '/usr/bin/python3',
      '-c',
      'import os, sys; print(sys.version_info[:2], sys.prefix, os.getcwd())',
    ]);
    expect(python.stderr).toBe('');
    expect(python.stdout).toBe('(3, 11) /usr /\n');
  });

  it('runs #! scripts: its /bin/sh, env python3, python3', async () => {
    const result = await run([
      '/bin/sh',
      '-c',
      '/scripts/sh one && /scripts/env-python two && /scripts/python three',
    ]);
    expect(result.stderr).toBe('');
    // The script's path as executed, as chroot(2) gives it to the interpreter.
    expect(result.stdout).toBe(
      "sh /scripts/sh one\n/etc\npython ['/scripts/env-python', 'two']\npython -S ['/scripts/python', 'three']\n",
    );
  });

  it('runs apt-get and dpkg', async () => {
    const result = await run(['/bin/sh', '-c', 'apt-get --version | head -1; dpkg -l | head']);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^apt 2\.6\.\d+ \(amd64\)|^apt 2\.6\.\d+ \(arm64\)/);
    expect(result.stdout).toMatch(/\nii {2}apt /);
  });

  it('installs a package with dpkg through a workdir over the root, listed by a dry run', async () => {
    const storage = join(host, 'store');
    const result = await runInRoot(dir, ['/usr/bin/dpkg', '-i', `/${deb}`], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      workdir: { dir, storage },
    });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const changes = result.workdir?.changes.map((change) => `${change.type} ${change.path}`);
    expect(changes).toEqual(
      expect.arrayContaining([
        'A usr/share/sandlock-test/hello',
        'M var/lib/dpkg/status',
        'A var/lib/dpkg/info/sandlock-test.list',
      ]),
    );
    // A dry run: the root itself is untouched.
    expect(execFileSync('ls', [join(dir, 'usr/share')], { encoding: 'utf8' })).not.toContain(
      'sandlock-test',
    );
  });
});
