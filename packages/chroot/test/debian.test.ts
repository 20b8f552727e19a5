// The emulated chroot over a real Debian root (debootstrap, support/debian.ts):
// its shell, its dynamically linked programs with its own loader and
// libraries, scripts, apt and dpkg; and the user story of a workdir over the
// root: `sandlock run` installs a package with dpkg, dry-run, aborted or
// committed.
import { execFile, execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianRoot } from './support/debian.js';
import { runInRoot } from './support/rootfs.js';

const root = debianRoot();
if ('missing' in root) console.log(`Debian root tests skipped: ${root.missing}`);

describe.skipIf('missing' in root)('the emulated chroot over a Debian root', () => {
  const dir = 'dir' in root ? root.dir : '';
  let host: string;
  beforeAll(async () => {
    host = realpathSync(mkdtempSync(join(tmpdir(), 'sandlock-debian-test-')));
    mkdirSync(join(host, 'scripts'));
    const script = (name: string, text: string) =>
      writeFileSync(join(host, 'scripts', name), text, { mode: 0o755 });
    script('sh', '#!/bin/sh\necho "sh $0 $1"; cd /etc && pwd\n');
    script('env-python', '#!/usr/bin/env python3\nimport sys\nprint("python", sys.argv)\n');
    script('python', '#!/usr/bin/python3 -S\nimport sys\nprint("python -S", sys.argv)\n');
    // The first sandbox starts the supervisor's worker: outside the tests' time.
    await runInRoot(dir, ['/bin/true']);
  }, 300_000);
  afterAll(() => {
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
});

/** The CLI's bundle (`pnpm build`), as a user runs it. */
const CLI = fileURLToPath(new URL('../../../apps/cli/bin/sandlock.cjs', import.meta.url));

// Asynchronous: a test's worker that blocks for minutes loses vitest's RPC.
const run = promisify(execFile);

/** `find` of a tree: every name's type, size, mode and times, its /tmp aside (other tests put files there). */
async function fingerprint(tree: string): Promise<string> {
  const { stdout } = await run(
    'sh',
    ['-c', 'cd "$0" && find . -path ./tmp -prune -o -printf "%p %y %s %m %T@ %C@\\n" | sort', tree],
    { encoding: 'utf8', maxBuffer: 256 << 20 },
  );
  return stdout;
}

describe.skipIf('missing' in root)(
  'sandlock run: dpkg -i into the Debian root through a workdir',
  () => {
    const dir = 'dir' in root ? root.dir : '';
    let host: string;
    let before: string;
    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'pnpm build' first`);
      host = realpathSync(mkdtempSync(join(tmpdir(), 'sandlock-dpkg-test-')));
      // A package of a script in /usr/bin, a file in /etc and a postinst, reached through a mount.
      const pkg = join(host, 'pkg');
      mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
      mkdirSync(join(pkg, 'usr/bin'), { recursive: true });
      mkdirSync(join(pkg, 'etc'), { recursive: true });
      writeFileSync(
        join(pkg, 'usr/bin/sandlock-hello'),
        '#!/bin/sh\necho "hello from $0"\ncat /etc/sandlock-hello.conf\n',
        { mode: 0o755 },
      );
      writeFileSync(join(pkg, 'etc/sandlock-hello.conf'), 'greeting=hi\n');
      writeFileSync(
        join(pkg, 'DEBIAN/control'),
        'Package: sandlock-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: Sandlock <test@example.org>\nDescription: a package of the chroot tests\n',
      );
      writeFileSync(join(pkg, 'DEBIAN/postinst'), '#!/bin/sh\necho "postinst $0 $1"\n', {
        mode: 0o755,
      });
      mkdirSync(join(host, 'debs'));
      execFileSync(
        'dpkg-deb',
        ['--build', '--root-owner-group', pkg, join(host, 'debs/sandlock-hello.deb')],
        { stdio: 'ignore' },
      );
      before = await fingerprint(dir);
    }, 120_000);
    afterAll(() => {
      if (host !== undefined) rmSync(host, { recursive: true, force: true });
    });

    const sandlock = async (args: string[]) => {
      try {
        const { stdout, stderr } = await run(process.execPath, [CLI, 'run', ...args], {
          encoding: 'utf8',
          timeout: 240_000,
          env: {
            ...process.env,
            PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          },
        });
        return { status: 0, stdout, stderr };
      } catch (error) {
        const failed = error as { code?: number; stdout?: string; stderr?: string };
        return {
          status: failed.code ?? null,
          stdout: failed.stdout ?? '',
          stderr: failed.stderr ?? '',
        };
      }
    };
    const install = (tree: string, ...end: string[]) =>
      sandlock([
        '--chroot',
        tree,
        '--workdir',
        tree,
        '--fs-storage',
        join(host, 'store'),
        '--fs-mount',
        `/debs:${join(host, 'debs')}:ro`,
        ...end,
        '--',
        'dpkg',
        '-i',
        '/debs/sandlock-hello.deb',
      ]);
    const installed = [
      'A etc/sandlock-hello.conf',
      'A usr/bin/sandlock-hello',
      'A var/lib/dpkg/info/sandlock-hello.list',
      'A var/lib/dpkg/info/sandlock-hello.postinst',
      'M var/lib/dpkg/status',
    ];

    it("dry-run: lists the package's files, leaves the root untouched", async () => {
      const result = await install(dir, '--dry-run');
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      // The postinst, a script written in the layer, gets its path as dpkg executed it.
      expect(result.stdout).toContain(
        'postinst /var/lib/dpkg/info/sandlock-hello.postinst configure\n',
      );
      expect(result.stdout.split('\n')).toEqual(expect.arrayContaining(installed));
      expect(await fingerprint(dir)).toBe(before);
    }, 300_000);

    it('abort: throws the install away', async () => {
      const result = await install(dir, '--on-exit', 'abort');
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('Setting up sandlock-hello (1.0)');
      expect(await fingerprint(dir)).toBe(before);
    }, 300_000);

    it('commit: the installed program runs in the next sandbox', async () => {
      // A copy of the root takes the commit: the root stays as debootstrap made it.
      const copy = join(host, 'root');
      await run('cp', ['-a', dir, copy]);
      const result = await install(copy, '--on-exit', 'commit');
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      expect(readFileSync(join(copy, 'etc/sandlock-hello.conf'), 'utf8')).toBe('greeting=hi\n');
      const hello = await sandlock(['--chroot', copy, '--', 'sandlock-hello']);
      expect(hello.stderr).toBe('');
      expect(hello.stdout).toBe('hello from /usr/bin/sandlock-hello\ngreeting=hi\n');
      const listed = await sandlock(['--chroot', copy, '--', 'dpkg-query', '-W', 'sandlock-hello']);
      expect(listed.stdout).toBe('sandlock-hello\t1.0\n');
      expect(await fingerprint(dir)).toBe(before);
    }, 600_000);
  },
);
