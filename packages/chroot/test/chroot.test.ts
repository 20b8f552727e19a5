// The emulated chroot against the real kernel: a rootfs built here (Debian's
// static busybox, a static probe, a dynamically linked ls with its loader
// and libraries), programs run in it, and escapes that must fail.
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { F_GETFL, F_SETFL, fcntl, hostArch, openFlags, openPty } from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox } from '../../sandlock/src/index.js';
import { execOnlyCopy, interpreterOf } from '../src/exec.js';
import {
  buildRootfs,
  missing,
  type Rootfs,
  runInRealRoot,
  runInRealRootWithProc,
  runInRoot,
} from './support/rootfs.js';

const why = missing();
if (why !== null) console.log(`chroot tests skipped: ${why}`);
const root = process.getuid?.() === 0;
if (!root) console.log('chroot differential test skipped: a real chroot(2) needs root');

describe.skipIf(why !== null)('the emulated chroot', () => {
  let fs: Rootfs;
  beforeAll(async () => {
    fs = buildRootfs();
    // The first sandbox starts the supervisor's worker (its sources compiled
    // for the test run): minutes on a loaded machine, so outside the tests.
    await runInRoot(fs.dir, ['/bin/true']);
  }, 300_000);
  afterAll(() => fs?.remove());

  const probe = async (ops: string[], options = {}) => {
    const result = await runInRoot(fs.dir, ['/probe', ...ops], options);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    return result.stdout;
  };

  it('runs a static program of the root, which sees the root as /', async () => {
    const out = await probe(['cat:/etc/os-release', 'cwd', 'stat:/etc', 'readlink:/etc/link']);
    expect(out).toBe(
      [
        'cat /etc/os-release: [PRETTY_NAME="sandlock chroot test"]',
        'cwd : /',
        'stat /etc: mode 40755 size 0',
        'readlink /etc/link: ../etc/os-release',
        '',
      ].join('\n'),
    );
  });

  it('keeps .. and symlinks inside the root', async () => {
    const out = await probe([
      'cat:/../../../etc/os-release',
      'catat:/etc:../../../../etc/os-release',
      'cat:/abs',
      'cat:/rel',
      'cat:/reldir/secret',
      `cat:${join(fs.outside, 'secret')}`,
      'openat2:/../../etc/os-release',
      'lstat:/abs',
    ]);
    expect(out).not.toContain('SECRET');
    expect(out).toContain('cat /abs: ENOENT');
    expect(out).toContain('cat /rel: ENOENT');
    expect(out).toContain('cat /reldir/secret: ENOENT');
    expect(out).toContain(
      'catat /etc ../../../../etc/os-release: [PRETTY_NAME="sandlock chroot test"]',
    );
    expect(out).toContain('openat2 /../../etc/os-release: [PRETTY_NAME="sandlock chroot test"]');
    expect(out).toContain('lstat /abs: mode 120777 size 0');
  });

  it('shows /proc only when mounted, and its links as inside the root', async () => {
    const unmounted = await probe(['readlink:/proc/self/root', 'cat:/proc/self/root/etc/hostname']);
    expect(unmounted).toContain('readlink /proc/self/root: ENOENT');
    expect(unmounted).toContain('cat /proc/self/root/etc/hostname: ENOENT');
    const mounted = await probe(
      [
        'readlink:/proc/self/root',
        'readlink:/proc/self/cwd',
        'cat:/proc/self/root/etc/hostname',
        'cat:/proc/self/cwd/etc/hostname',
        'cat:/proc/1/root/etc/hostname',
        'cat:/proc/self/root/probe',
      ],
      { mounts: ['/proc:/proc'] },
    );
    const hostname = readFileSync('/etc/hostname', 'utf8').trim();
    expect(mounted).toContain('readlink /proc/self/root: /');
    expect(mounted).toContain('readlink /proc/self/cwd: /');
    expect(mounted).not.toContain(hostname === '' ? '\0' : `[${hostname}]`);
    // The root's own file, as under chroot(2) (the cwd is the root).
    expect(mounted).toContain('cat /proc/self/root/etc/hostname: [root-own-name]');
    expect(mounted).toContain('cat /proc/self/cwd/etc/hostname: [root-own-name]');
  });

  it("follows /proc/<pid>/root into the root, never to the host's /", async () => {
    const secret = join(fs.outside, 'secret');
    // Control: the host file exists, so ENOENT below is the root's answer.
    expect(statSync(secret).isFile()).toBe(true);
    const out = await probe(
      [
        `stat:/proc/self/root${secret}`,
        `lstat:/proc/self/root${secret}`,
        `access:/proc/self/root${secret}`,
        `readlink:/proc/self/root${fs.outside}/../outside`,
        'stat:/proc/self/root/etc/os-release',
        'stat:/proc/thread-self/root//etc/./os-release',
        'stat:/proc/self/root/../../etc/os-release',
        'cat:/proc/self/root/etc/os-release',
        'readlink:/proc/self/root/etc/link',
        'readlink:/proc/self/root',
        'stat:/proc/1/root/etc/os-release',
      ],
      { mounts: ['/proc:/proc'] },
    );
    const inRoot = 'mode 100644 size 35';
    expect(out).toBe(
      [
        `stat /proc/self/root${secret}: ENOENT`,
        `lstat /proc/self/root${secret}: ENOENT`,
        `access /proc/self/root${secret}: ENOENT`,
        `readlink /proc/self/root${fs.outside}/../outside: ENOENT`,
        `stat /proc/self/root/etc/os-release: ${inRoot}`,
        `stat /proc/thread-self/root//etc/./os-release: ${inRoot}`,
        `stat /proc/self/root/../../etc/os-release: ${inRoot}`,
        'cat /proc/self/root/etc/os-release: [PRETTY_NAME="sandlock chroot test"]',
        'readlink /proc/self/root/etc/link: ../etc/os-release',
        'readlink /proc/self/root: /',
        'stat /proc/1/root/etc/os-release: EACCES',
        '',
      ].join('\n'),
    );
  });

  it('writes only where granted, and keeps links and renames inside a mount', async () => {
    const out = await probe(
      [
        'write:/data/new:hello',
        'cat:/data/new',
        'write:/etc/new:no',
        'write:/mnt/m:one',
        'link:/mnt/m:/data/linked',
        'rename:/mnt/m:/data/moved',
        'symlink:/etc/os-release:/data/sl',
        'cat:/data/sl',
        'mkdir:/data/d',
        'rmdir:/data/d',
        'unlink:/mnt',
        'rename:/data:/data2',
      ],
      { write: ['/data'], mounts: [`/mnt:${fs.outside}`] },
    );
    expect(out).toBe(
      [
        'write /data/new hello: ok',
        'cat /data/new: [hello]',
        'write /etc/new no: EACCES',
        'write /mnt/m one: ok',
        'link /mnt/m /data/linked: EXDEV',
        'rename /mnt/m /data/moved: EXDEV',
        'symlink /etc/os-release /data/sl: ok',
        'cat /data/sl: [PRETTY_NAME="sandlock chroot test"]',
        'mkdir /data/d: ok',
        'rmdir /data/d: ok',
        'unlink /mnt: EBUSY',
        'rename /data /data2: EACCES',
        '',
      ].join('\n'),
    );
    expect(readFileSync(join(fs.dir, 'data/new'), 'utf8')).toBe('hello');
    expect(readFileSync(join(fs.outside, 'm'), 'utf8')).toBe('one');
  });

  it('hides the deny paths as the sandbox names them, one not made yet too, as without a root', async () => {
    const ops = [
      'cat:/data/file',
      'write:/data/later:x',
      'mkdir:/data/later',
      'cat:/data/later',
      'write:/mnt/later:y',
      'cat:/etc/os-release',
    ];
    const out = await probe(ops, {
      write: ['/data', '/mnt'],
      deny: ['/data/file', '/data/later', '/mnt/later'],
      mounts: [`/mnt:${fs.outside}`],
    });
    expect(out).toContain('write /data/later x: EACCES');
    // The same policy without a root, by the host paths, on the same files.
    const onHost = (text: string) =>
      text.replace(/\/mnt\//g, `${fs.outside}/`).replace(/:\/(data|etc)\//g, `:${fs.dir}/$1/`);
    const host = await Sandbox.builder()
      .fsRead(fs.dir, fs.outside)
      .fsWrite(join(fs.dir, 'data'), fs.outside)
      .fsDeny(...['/data/file', '/data/later'].map((path) => join(fs.dir, path)))
      .fsDeny(join(fs.outside, 'later'))
      .build()
      .run([join(fs.dir, 'probe'), ...ops.map(onHost)], { encoding: 'utf8' });
    expect(host.stdout.replaceAll(fs.outside, '/mnt').replaceAll(fs.dir, '')).toBe(out);
  });

  it("keeps the reaper's /proc/<pid>/root, a descriptor from outside and a racing symlink out", async () => {
    const secret = join(fs.outside, 'secret');
    const held = openSync(fs.outside, 'r');
    try {
      const out = await probe(
        [
          `ppidroot:${secret}`,
          'ppidroot:/etc/os-release',
          'fchdirfd:0',
          'cwd',
          'cat:secret',
          'cat:../secret',
          'race:300',
          'cat:/race/a/secret',
        ],
        { mounts: ['/proc:/proc'], write: ['/race'], stdin: held },
      );
      expect(out).not.toContain('SECRET');
      expect(out).toMatch(new RegExp(`ppidroot ${secret}: E(ACCES|NOENT)`));
      expect(out).toContain('fchdirfd 0: ok');
      expect(out).toContain('cwd : /\n');
      expect(out).toContain('cat secret: ENOENT');
      expect(out).toContain('race 300: inside some outside 0');
    } finally {
      closeSync(held);
    }
  });

  it('keeps every escape of the list out under a workdir over the root too', async () => {
    const secret = join(fs.outside, 'secret');
    const storage = join(fs.dir, '..', 'store-escapes');
    // A mount of its own (the directory outside is the descriptor's, not a mount's).
    const mounted = join(fs.dir, '..', 'mounted-escapes');
    mkdirSync(mounted, { recursive: true });
    writeFileSync(join(mounted, 'file'), 'MOUNTED\n');
    const held = openSync(fs.outside, 'r');
    try {
      const out = await probe(
        [
          'cat:/../outside/secret',
          'catat:/etc:../../outside/secret',
          'chdir:/etc',
          'cat:../../outside/secret',
          'chdir:/',
          'cat:/abs',
          'cat:/rel',
          'cat:/reldir/secret',
          'openat2:/../outside/secret',
          `cat:/proc/self/root${secret}`,
          'cat:/proc/self/cwd/../outside/secret',
          `ppidroot:${secret}`,
          'link:/mnt/file:/data/linked',
          'rename:/mnt/file:/data/moved',
          'fchdirfd:0',
          'cwd',
          'cat:secret',
          'cat:../secret',
          'race:300',
        ],
        {
          mounts: ['/proc:/proc', `/mnt:${mounted}`],
          write: ['/race', '/data'],
          stdin: held,
          workdir: { dir: fs.dir, storage },
        },
      );
      expect(out).not.toContain('SECRET');
      expect(out).toBe(
        [
          'cat /../outside/secret: ENOENT',
          'catat /etc ../../outside/secret: ENOENT',
          'chdir /etc: ok',
          'cat ../../outside/secret: ENOENT',
          'chdir /: ok',
          'cat /abs: ENOENT',
          'cat /rel: ENOENT',
          'cat /reldir/secret: ENOENT',
          'openat2 /../outside/secret: ENOENT',
          `cat /proc/self/root${secret}: ENOENT`,
          'cat /proc/self/cwd/../outside/secret: ENOENT',
          `ppidroot ${secret}: ENOENT`,
          'link /mnt/file /data/linked: EXDEV',
          'rename /mnt/file /data/moved: EXDEV',
          'fchdirfd 0: ok',
          'cwd : /',
          'cat secret: ENOENT',
          'cat ../secret: ENOENT',
          'race 300: inside some outside 0',
          '',
        ].join('\n'),
      );
    } finally {
      closeSync(held);
    }
  });

  it.skipIf(!root)('gives what a real chroot(2) gives', async () => {
    const ops = [
      'cat:/etc/os-release',
      'cat:/../../etc/os-release',
      'catat:/etc:../../../etc/os-release',
      'cat:/abs',
      'cat:/rel',
      'cat:/reldir/secret',
      'cat:/etc/link',
      'stat:/etc',
      'stat:/probe',
      'lstat:/abs',
      'lstat:/etc/link',
      'readlink:/abs',
      'readlink:/etc/os-release',
      'access:/etc/os-release',
      'access:/nothing',
      'cat:/etc/os-release/',
      'stat:/abs/x',
      'cwd',
      'save:.',
      'save:/etc/..',
      'save:/etc/.',
      'dirat:/etc:.',
      'dirat:/etc:..',
      'dirat:/etc:os-release',
      'openat2:/../etc/os-release',
      'cat:/proc/self/root/etc/os-release',
      'write:/tmp/a:x',
      'cat:/tmp/a',
      'symlink:../etc/os-release:/tmp/l',
      'cat:/tmp/l',
      'link:/tmp/a:/tmp/b',
      'rename:/tmp/b:/tmp/c',
      'stat:/tmp/c',
      'chmod:/tmp/c',
      'truncate:/tmp/c',
      'stat:/tmp/c',
      'mkdir:/tmp/d',
      'mkdir:/tmp/d',
      'rmdir:/tmp/d',
      'unlink:/tmp/c',
      'unlink:/tmp/nothing',
    ];
    const emulated = await probe(ops, { write: ['/tmp'] });
    // The same starting state for the real run.
    for (const name of ['a', 'l']) rmSync(join(fs.dir, 'tmp', name), { force: true });
    const real = runInRealRoot(fs.dir, ['/probe', ...ops]);
    expect(emulated).toBe(real);
  });

  it('takes a workdir over the root: writes land in the layer, listed by a dry run', async () => {
    const storage = join(fs.dir, '..', 'store');
    const result = await runInRoot(
      fs.dir,
      [
        '/probe',
        'write:/etc/added:new',
        'cat:/etc/added',
        'unlink:/data/file',
        'cat:/data/file',
        'cat:/abs',
      ],
      { workdir: { dir: fs.dir, storage } },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      [
        'write /etc/added new: ok',
        'cat /etc/added: [new]',
        'unlink /data/file: ok',
        'cat /data/file: ENOENT',
        'cat /abs: ENOENT',
        '',
      ].join('\n'),
    );
    const changes = result.workdir?.changes.map((change) => `${change.type} ${change.path}`);
    expect(changes).toEqual(expect.arrayContaining(['A etc/added', 'D data/file']));
    expect(result.workdir?.changes).toHaveLength(2);
    // A dry run: the root itself is untouched.
    expect(readFileSync(join(fs.dir, 'data/file'), 'utf8')).toBe('data\n');
    expect(() => readFileSync(join(fs.dir, 'etc/added'))).toThrow();
  });

  it("runs scripts with a workdir over the root: one the layer holds, the root's, nested", async () => {
    const storage = join(fs.dir, '..', 'store-scripts');
    const script = [
      'printf \'#!/bin/sh\\necho "layer $1"\\n\' > /tmp/layer.sh',
      'chmod 755 /tmp/layer.sh',
      '/tmp/layer.sh one',
      'cd /tmp && ./layer.sh two',
      '/bin/env /tmp/layer.sh three',
      '/script four',
      '/nested five',
    ].join('; ');
    const result = await runInRoot(fs.dir, ['/bin/sh', '-c', script], {
      workdir: { dir: fs.dir, storage },
    });
    expect(result.stderr).toBe('');
    const expected = [
      'layer one',
      'layer two',
      'layer three',
      'script /script four',
      'interp1 /interp1 [one two] /nested five',
      '',
    ].join('\n');
    expect(result.stdout).toBe(expected);
    if (root) {
      try {
        expect(runInRealRoot(fs.dir, ['/bin/sh', '-c', script])).toBe(expected);
      } finally {
        rmSync(join(fs.dir, 'tmp/layer.sh'), { force: true });
      }
    }
  });

  it('describes the Landlock rules with the host paths of the root', async () => {
    const description = await Sandbox.builder()
      .chroot(fs.dir)
      .fsWrite('/data')
      .fsMount(`/mnt:${fs.outside}:ro`)
      .build()
      .describe();
    const text = JSON.stringify(description);
    expect(text).toContain(JSON.stringify(join(fs.dir, 'data')).slice(1, -1));
    expect(text).toContain(JSON.stringify(fs.outside).slice(1, -1));
    expect(text).not.toContain('"/data"');
  });

  it('runs cd, pwd, ls and cat in busybox sh', async () => {
    const result = await runInRoot(fs.dir, [
      '/bin/sh',
      '-c',
      'cd /etc && pwd && ls && cat os-release',
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      '/etc\nhostname\nhosts\nlink\nos-release\nPRETTY_NAME="sandlock chroot test"\n',
    );
  });

  it('executes programs of the root from inside: static, dynamic', async () => {
    const result = await runInRoot(fs.dir, [
      '/bin/sh',
      '-c',
      'for i in 1 2 3; do /bin/true; done; /usr/bin/dls -d /etc; cd /etc && /probe cwd readlink:/proc/self/exe',
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('/etc\ncwd : /etc\nreadlink /proc/self/exe: ENOENT\n');
  });

  it('runs a dynamically linked program with the root loader and libraries', async () => {
    const result = await runInRoot(fs.dir, ['/usr/bin/dls', '/']);
    expect(result.stderr).toBe('');
    expect(result.stdout.split('\n')).toEqual(expect.arrayContaining(['bin', 'etc', 'probe']));
  });

  it('runs a #! script with the interpreter of the root', async () => {
    const result = await runInRoot(fs.dir, ['/script', 'arg']);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('script /script arg\n');
  });

  it('runs #! scripts executed from inside: from a shell, through env, by execveat', async () => {
    const result = await runInRoot(fs.dir, [
      '/bin/sh',
      '-c',
      '/script arg; /envscript one; /probe fexec:/script; /probe fexeccloexec:/script; /probe execat:/:script',
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(
      /^script \/script arg\nenv script one\nscript \/dev\/fd\/\d+ fexec\nfexeccloexec \/script: ENOENT\nscript \/dev\/fd\/\d+\/script execat\n$/,
    );
  });

  it('gives a script executed from inside the arguments chroot(2) gives, through nested interpreters', async () => {
    const command = [
      '/script arg',
      'cd /etc && ../script rel && cd /',
      './script dot',
      '/nested a',
      'bin/relnested r',
      '/exit7; echo "status $?"',
      ...[1, 2, 3, 4, 5, 6].map((level) => `/probe exec:/chain${level}`),
      '/probe exec:/emptyline',
      '/probe exec:/badinterp',
      '/probe exec:/nointerp',
    ].join('; ');
    const result = await runInRoot(fs.dir, ['/bin/sh', '-c', command]);
    expect(result.stderr).toBe('');
    const out = result.stdout;
    expect(out).toContain('script /script arg\nscript ../script rel\nscript ./script dot\n');
    expect(out).toContain('interp1 /interp1 [one two] /nested a\n');
    expect(out).toContain('interp1 bin/../interp1 [bin/relnested] r \n');
    expect(out).toContain('status 7\n');
    expect(out).toContain('chain /chain6 /chain5 /chain4 /chain3 /chain2 exec\n');
    expect(out).toContain('exec /chain1: ELOOP\n');
    expect(out).toContain(
      'exec /emptyline: ENOEXEC\nexec /badinterp: EACCES\nexec /nointerp: ENOENT\n',
    );
    if (root) expect(runInRealRoot(fs.dir, ['/bin/sh', '-c', command])).toBe(out);
    // Started as the sandbox's program: the same nesting and limit.
    const started = await runInRoot(fs.dir, ['/chain2', 'x']);
    expect(started.stdout).toBe('chain /chain6 /chain5 /chain4 /chain3 /chain2 x\n');
    const tooDeep = await runInRoot(fs.dir, ['/chain1', 'x']).then(
      (r) => `${r.exitCode} ${r.stderr}`,
      (error: Error) => error.message,
    );
    expect(tooDeep).toMatch(/too many interpreters/);
  });

  it("leaves a script's interpreter only the script's descriptor, as fexecve of a script does", async () => {
    const result = await runInRoot(fs.dir, ['/bin/sh', '-c', '/probe fds; /fdscript']);
    expect(result.stderr).toBe('');
    const [direct, script] = result.stdout.trim().split('\n');
    const fds = (line: string | undefined) => (line ?? '').replace(/^fds:/, '').trim().split(' ');
    expect(fds(direct)).toEqual(['0', '1', '2']);
    expect(fds(script).slice(0, 3)).toEqual(['0', '1', '2']);
    expect(fds(script)).toHaveLength(4);
  });

  it('executes a descriptor by /proc/self/fd/N and /dev/fd/N, with /proc mounted or not', async () => {
    const run = (prefix: string, mounts: string[]) =>
      Promise.all([
        runInRoot(fs.dir, ['/probe', `fdexec:/bin/busybox:${prefix}`, 'echo', 'static'], {
          mounts,
        }),
        runInRoot(fs.dir, ['/probe', `fdexec:/usr/bin/dls:${prefix}`, '-d', '/etc'], { mounts }),
      ]);
    for (const [prefix, mounts] of [
      ['/proc/self/fd/', ['/proc:/proc']],
      ['/proc/self/fd/', []],
      ['/dev/fd/', []],
    ] as const) {
      const [busybox, dls] = await run(prefix, [...mounts]);
      expect(`${prefix} ${mounts}: ${busybox.stderr}${busybox.stdout}`).toBe(
        `${prefix} ${mounts}: static\n`,
      );
      expect(`${prefix} ${mounts}: ${dls.stderr}${dls.stdout}`).toBe(`${prefix} ${mounts}: /etc\n`);
    }
  });

  it('refuses to execute a readable file without execute permission, script or ELF', async () => {
    const ops = (path: string) => ['/probe', `exec:${path}`];
    for (const path of ['/usr/bin/noexec', '/noexec-script']) {
      const result = await runInRoot(fs.dir, ops(path));
      expect(result.stdout).toBe(`exec ${path}: EACCES\n`);
      if (root) expect(runInRealRoot(fs.dir, ops(path))).toBe(result.stdout);
    }
  });

  it('shows the virtual host name in /etc/hostname and /etc/hosts of the root', async () => {
    const result = await Sandbox.builder()
      .chroot(fs.dir)
      .hostname('virtual-host')
      .build()
      .run(['/bin/sh', '-c', 'cat /etc/hostname; cd /etc && cat hostname hosts'], {
        encoding: 'utf8',
        env: { PATH: '/bin' },
      });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      'virtual-host\nvirtual-host\n127.0.0.1\tlocalhost\n127.0.1.1\tvirtual-host\n',
    );
  });

  it("names the caller's terminal as ttyname(3) finds it, with /proc mounted", async () => {
    const pty = openPty();
    try {
      const result = await runInRoot(fs.dir, ['/bin/sh', '-c', 'tty; tty <&-'], {
        stdin: pty.slave,
        mounts: ['/proc:/proc'],
      });
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe(`${pty.name}\nnot a tty\n`);
    } finally {
      closeSync(pty.slave);
      closeSync(pty.master);
    }
  });

  it('opens /dev/tty as the caller’s controlling terminal, and fails with ENXIO without one', async () => {
    const pty = openPty();
    // What the programs wrote is there once they have ended: read without waiting for more.
    fcntl(pty.master, F_SETFL, fcntl(pty.master, F_GETFL) | openFlags(hostArch()).O_NONBLOCK);
    const said = () => {
      const buffer = Buffer.alloc(4096);
      return buffer.subarray(0, readSync(pty.master, buffer)).toString();
    };
    const sandboxed = await Sandbox.builder()
      .chroot(fs.dir)
      .fsMount('/dev/tty:/dev/tty')
      .build()
      .spawn(['/bin/sh', '-c', 'read line'], { stdio: 'pipe', joinable: true });
    try {
      const shell = (script: string, stdio: number, terminal: boolean) =>
        sandboxed.join({
          path: '/bin/sh',
          argv: ['sh', '-c', script],
          env: ['PATH=/bin'],
          stdio: [stdio, stdio, stdio],
          terminal,
        });
      const controlled = await shell('echo via-dev-tty > /dev/tty', pty.slave, true);
      expect(await controlled.wait()).toEqual({ exitCode: 0, signal: null });
      expect(said()).toBe('via-dev-tty\r\n');
      // A terminal as stdio only is not a controlling one: the kernel's ENXIO.
      const uncontrolled = await shell('echo x > /dev/tty', pty.slave, false);
      expect((await uncontrolled.wait()).exitCode).not.toBe(0);
      expect(said()).toMatch(/No such device or address/);
    } finally {
      await sandboxed.kill();
      closeSync(pty.slave);
      closeSync(pty.master);
    }
  });

  it('changes to a directory it may search but not read, as root without capabilities', async () => {
    const ops = [
      'dropcaps',
      'chdir:/searchonly',
      'cwd',
      'cat:inside',
      'save:.',
      'chdir:sub',
      'cwd',
      'chdir:/',
      'chdir:searchonly/',
      'cwd',
      'chdir:sub/..',
      'cwd',
      'chdir:/solink',
      'cwd',
      'chdir:/searchonly/missing',
      'chdir:/noaccess',
      'cwd',
    ];
    const out = await probe(ops);
    expect(out).toBe(
      [
        'dropcaps : ok',
        'chdir /searchonly: ok',
        'cwd : /searchonly',
        'cat inside: [INSIDE SEARCHONLY]',
        'save .: EACCES',
        'chdir sub: ok',
        'cwd : /searchonly/sub',
        'chdir /: ok',
        'chdir searchonly/: ok',
        'cwd : /searchonly',
        'chdir sub/..: ok',
        'cwd : /searchonly',
        'chdir /solink: ok',
        'cwd : /searchonly',
        'chdir /searchonly/missing: ENOENT',
        'chdir /noaccess: EACCES',
        'cwd : /searchonly',
        '',
      ].join('\n'),
    );
    if (root) expect(runInRealRoot(fs.dir, ['/probe', ...ops])).toBe(out);
  });

  it('changes to a search-only directory under a workdir over the root, lower or made in the layer', async () => {
    const storage = join(fs.dir, '..', 'store-searchonly');
    const ops = [
      'dropcaps',
      'chdir:/searchonly',
      'cwd',
      'cat:inside',
      'chdir:sub/..',
      'cwd',
      'chdir:/solink',
      'cwd',
      'chdir:/made',
      'cwd',
      'chdir:/made/sub',
      'cwd',
      'chdir:..',
      'cwd',
      'chdir:/noaccess',
      'cwd',
    ];
    // /made is made in the layer by the sandbox, mode 0111, with a subdirectory.
    const script = 'mkdir -p /made/sub && chmod 111 /made && exec /probe "$@"';
    const result = await runInRoot(fs.dir, ['/bin/sh', '-c', script, 'sh', ...ops], {
      workdir: { dir: fs.dir, storage },
    });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      [
        'dropcaps : ok',
        'chdir /searchonly: ok',
        'cwd : /searchonly',
        'cat inside: [INSIDE SEARCHONLY]',
        'chdir sub/..: ok',
        'cwd : /searchonly',
        'chdir /solink: ok',
        'cwd : /searchonly',
        'chdir /made: ok',
        'cwd : /made',
        'chdir /made/sub: ok',
        'cwd : /made/sub',
        'chdir ..: ok',
        'cwd : /made',
        'chdir /noaccess: EACCES',
        'cwd : /made',
        '',
      ].join('\n'),
    );
    expect(result.workdir?.changes.map((change) => `${change.type} ${change.path}`)).toEqual(
      expect.arrayContaining(['A made']),
    );
  });

  it('runs a dynamically linked program it may execute but not read, as uid 1000, as chroot(2) runs it', async () => {
    const ops = [
      '/probe',
      'nnp',
      'cat:/dxonly',
      'run:/dxonly',
      'ids',
      'dumpable',
      'cat:/proc/self/exe',
      'readlink:/proc/self/exe',
      'parentmem',
      'fds',
      'run:/dsetid',
      'ids',
      'dumpable',
    ];
    const result = await runInRoot(fs.dir, ops, {
      user: { uid: 1000, gid: 1000 },
      mounts: ['/proc:/proc'],
    });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      [
        'nnp : ok',
        'cat /dxonly: EACCES',
        'ids: uid 1000 euid 1000 suid 1000 egid 1000',
        'dumpable: 0',
        'cat /proc/self/exe: EACCES',
        'readlink /proc/self/exe: /dxonly',
        'parentmem : EACCES',
        'fds: 0 1 2',
        'ids: uid 1000 euid 1000 suid 1000 egid 1000',
        'dumpable: 0',
        '',
      ].join('\n'),
    );
    // The real run inherits this process's descriptors: only the first three are compared.
    const ran = (out: string) => out.replace(/^fds: 0 1 2.*$/m, 'fds: 0 1 2');
    if (root) expect(ran(runInRealRootWithProc(fs.dir, ops, '1000:1000'))).toBe(result.stdout);
  });

  it.skipIf(!root)(
    'makes that copy mode 0111 without set-id bits, not readable, reopenable nor changeable by uid 1000',
    () => {
      const program = openSync(join(fs.dir, 'dsetid'), 'r');
      try {
        const interp = interpreterOf(program);
        expect(interp?.path).toMatch(/^\/lib/);
        const copy = execOnlyCopy(program, interp!, 9, 0);
        try {
          expect(fstatSync(copy).mode & 0o7777).toBe(0o111);
          const script = [
            'stat -L -c %a:%u /proc/self/fd/3',
            'cat /proc/self/fd/3 >/dev/null 2>&1; echo reopen $?',
            'cat <&3 >/dev/null 2>&1; echo read $?',
            'chmod 755 /proc/self/fd/3 2>/dev/null; echo chmod $?',
          ].join('; ');
          const out = spawnSync(
            'setpriv',
            ['--reuid=1000', '--regid=1000', '--clear-groups', '/bin/sh', '-c', script],
            { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', copy] },
          );
          expect(out.stderr).toBe('');
          expect(out.stdout).toBe('111:0\nreopen 1\nread 1\nchmod 1\n');
        } finally {
          closeSync(copy);
        }
      } finally {
        closeSync(program);
      }
    },
  );

  it('executes through /proc/self/root the file that names inside the root, $0 as given', async () => {
    const runs = [
      ['/probe', 'exec:/proc/self/root/script'],
      ['/probe', 'run:/proc/self/root/usr/bin/dls', '/etc/os-release'],
      ['/probe', 'run:/proc/self/root/../../../bin/echo', 'clamped'],
      ['/probe', 'run:/proc/self/root/probe', 'cwd'],
      ['/probe', 'dropcaps', 'run:/proc/self/root/xonly', 'cwd'],
      ['/probe', 'run:/proc/self/root/nothing'],
    ];
    const outs: string[] = [];
    for (const ops of runs) {
      const result = await runInRoot(fs.dir, ops, { mounts: ['/proc:/proc'] });
      expect(result.stderr).toBe('');
      outs.push(result.stdout);
      if (root) expect(runInRealRootWithProc(fs.dir, ops)).toBe(result.stdout);
    }
    expect(outs).toEqual([
      'script /proc/self/root/script exec\n',
      '/etc/os-release\n',
      'clamped\n',
      'cwd : /\n',
      'dropcaps : ok\ncwd : /\n',
      'run /proc/self/root/nothing: ENOENT\n',
    ]);
  });

  it('executes a program it may execute but not read, as root without capabilities', async () => {
    const ops = ['/probe', 'dropcaps', 'cat:/xonly', 'execfds:/xonly'];
    const result = await runInRoot(fs.dir, ops);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('dropcaps : ok\ncat /xonly: EACCES\nfds: 0 1 2\n');
    // The real run inherits this process's descriptors: only that it ran is compared.
    const ran = (out: string) => out.replace(/^fds: 0 1 2.*$/m, 'fds: 0 1 2');
    if (root) expect(ran(runInRealRoot(fs.dir, ops))).toBe(result.stdout);
  });
});
