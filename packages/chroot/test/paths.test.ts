// Paths inside the emulated chroot that other calls than opens take: Unix
// socket addresses (bind, connect, sendto, sendmsg), extended attributes,
// openat2's RESOLVE_* flags. Each against the real kernel under a real
// chroot(2) with the same mount bound in a mount namespace (as root), and
// escapes that must fail.
import { execFile, execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { hasSyscall, hostArch } from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRootfs, missing, type Rootfs, runInRoot } from './support/rootfs.js';

const run = promisify(execFile);
const why = missing();
if (why !== null) console.log(`chroot path tests skipped: ${why}`);
const root = process.getuid?.() === 0;
if (!root) console.log('chroot path differential tests skipped: a real chroot(2) needs root');

/** The mount point inside the root, and its host directory's name beside the root. */
const APP = '/host/run/app';

describe.skipIf(why !== null)('paths inside the emulated chroot', () => {
  let fs: Rootfs;
  let hostRun: string;
  const servers: Server[] = [];
  const listen = (path: string, text: string) =>
    new Promise<void>((done, failed) => {
      const server = createServer((socket) => socket.end(`${text}\n`));
      server.once('error', failed);
      server.listen(path, () => done());
      servers.push(server);
    });

  beforeAll(async () => {
    fs = buildRootfs();
    hostRun = join(dirname(fs.dir), 'hostrun');
    mkdirSync(hostRun);
    mkdirSync(join(fs.dir, APP), { recursive: true });
    writeFileSync(join(hostRun, 'file'), 'HOSTFILE\n');
    execFileSync('cc', [
      '-static',
      '-O1',
      '-o',
      join(fs.dir, 'paths'),
      fileURLToPath(new URL('./support/paths.c', import.meta.url)),
    ]);
    mkdirSync(join(fs.dir, 'sub'));
    writeFileSync(join(fs.dir, 'sub/inner'), 'SUBINNER\n');
    writeFileSync(join(fs.dir, 'inner'), 'ROOTINNER\n');
    symlinkSync('/inner', join(fs.dir, 'sub/abs'));
    await listen(join(hostRun, 'app.sock'), 'host server');
    await listen(join(fs.outside, 'out.sock'), 'OUTSIDE server');
    mkdirSync(join(fs.dir, 'srv'));
    await listen(join(fs.dir, 'srv/in.sock'), 'inside server');
    // The first sandbox starts the supervisor's worker (its sources compiled
    // for the test run): minutes on a loaded machine, so outside the tests.
    await runInRoot(fs.dir, ['/bin/true']);
  }, 300_000);
  afterAll(() => {
    for (const server of servers) server.close();
    fs?.remove();
  });

  const emulated = async (
    ops: string[],
    options: { write?: string[]; mounts?: string[]; unix?: string[] } = {},
  ) => {
    const result = await runInRoot(fs.dir, ['/paths', ...ops], {
      write: options.write ?? ['/tmp'],
      mounts: options.mounts ?? [`${APP}:${hostRun}`],
      ...(options.unix !== undefined ? { unix: options.unix } : {}),
    });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    return result.stdout;
  };

  /**
   * The same operations under chroot(2), with the host directory bound at
   * APP (read-only with `readOnly`) in a mount namespace of their own.
   */
  const real = async (ops: string[], readOnly = false) => {
    const bind = readOnly
      ? 'mount --bind "$1" "$2$3" && mount -o remount,bind,ro "$2$3"'
      : 'mount --bind "$1" "$2$3"';
    const script = `${bind} && root="$2" && shift 3 && exec chroot "$root" "$@"`;
    const { stdout } = await run(
      'unshare',
      ['-m', 'sh', '-c', script, 'sh', hostRun, fs.dir, APP, '/paths', ...ops],
      { encoding: 'utf8' },
    );
    return stdout;
  };

  const unixOps = () => [
    'unix:/tmp/s.sock',
    'unix:/tmp/s.sock',
    'rm:/tmp/s.sock',
    'unix:tmp/relative.sock',
    'rm:/tmp/relative.sock',
    'dgram:/tmp/d.sock',
    'rm:/tmp/d.sock',
    'dgmsg:/tmp/m.sock',
    'rm:/tmp/m.sock',
    `unix:${APP}/mounted.sock`,
    `rm:${APP}/mounted.sock`,
    `connect:${APP}/app.sock`,
    `connect:${join(fs.outside, 'out.sock')}`,
    'connect:/../../../../out.sock',
    `abstract:sandlock-chroot-paths-${process.pid}`,
  ];

  it('binds, connects and sends to Unix sockets inside the root and its mounts', async () => {
    const ops = unixOps();
    const out = await emulated(ops);
    expect(out).not.toContain('OUTSIDE');
    expect(out).toBe(
      [
        'unix:/tmp/s.sock: [stream]',
        'unix:/tmp/s.sock: bind EADDRINUSE',
        'rm:/tmp/s.sock: 0',
        'unix:tmp/relative.sock: [stream]',
        'rm:/tmp/relative.sock: 0',
        'dgram:/tmp/d.sock: [datagram]',
        'rm:/tmp/d.sock: 0',
        'dgmsg:/tmp/m.sock: [message]',
        'rm:/tmp/m.sock: 0',
        `unix:${APP}/mounted.sock: [stream]`,
        `rm:${APP}/mounted.sock: 0`,
        `connect:${APP}/app.sock: [host server]`,
        `connect:${join(fs.outside, 'out.sock')}: connect ENOENT`,
        'connect:/../../../../out.sock: connect ENOENT',
        `abstract:sandlock-chroot-paths-${process.pid}: [stream]`,
        '',
      ].join('\n'),
    );
    if (root) expect(await real(ops)).toBe(out);
  });

  it('refuses a socket file where the policy grants no write', async () => {
    const out = await emulated(['unix:/etc/s.sock', 'unix:/tmp/t.sock', 'rm:/tmp/t.sock'], {
      write: ['/tmp'],
      mounts: [`${APP}:${hostRun}:ro`],
    });
    expect(out).toBe(
      ['unix:/etc/s.sock: bind EACCES', 'unix:/tmp/t.sock: [stream]', 'rm:/tmp/t.sock: 0', ''].join(
        '\n',
      ),
    );
  });

  it('binds no socket file in a read-only mount: EROFS, as the kernel', async () => {
    const ops = [`unix:${APP}/ro.sock`, `unix:${APP}/app.sock`];
    const out = await emulated(ops, { write: ['/tmp'], mounts: [`${APP}:${hostRun}:ro`] });
    expect(out).toBe(
      [`unix:${APP}/ro.sock: bind EROFS`, `unix:${APP}/app.sock: bind EADDRINUSE`, ''].join('\n'),
    );
    if (root) expect(await real(ops, true)).toBe(out);
  });

  it('reaches the Unix sockets `unix` names by their paths inside the root, not by host paths', async () => {
    const ops = ['connect:/srv/in.sock', `connect:${APP}/app.sock`];
    const mounts = [`${APP}:${hostRun}:ro`];
    const unnamed = await emulated(ops, { mounts });
    expect(unnamed).toBe(
      ['connect:/srv/in.sock: connect EACCES', `connect:${APP}/app.sock: connect EACCES`, ''].join(
        '\n',
      ),
    );
    // A socket dir that does not exist yet is named too: `/srv/later` stands for the rest.
    const named = await emulated(ops, { mounts, unix: ['/srv/in.sock', APP, '/srv/later/x.sock'] });
    expect(named).toBe(
      ['connect:/srv/in.sock: [inside server]', `connect:${APP}/app.sock: [host server]`, ''].join(
        '\n',
      ),
    );
    if (root) expect(await real(ops)).toBe(named);
    const byHostPath = await emulated(ops, {
      mounts,
      unix: [join(fs.dir, 'srv/in.sock'), hostRun],
    });
    expect(byHostPath).toBe(unnamed);
  });

  const XATTR_OPS = [
    'setx:/tmp/xf:user.a:one',
    'getx:/tmp/xf:user.a',
    'sizex:/tmp/xf:user.a',
    'createx:/tmp/xf:user.a:two',
    'getx:/tmp/xl:user.a',
    'lgetx:/tmp/xl:user.a',
    'lsetx:/tmp/xl:user.b:x',
    'listx:/tmp/xf',
    'llistx:/tmp/xl',
    'setxat:/tmp/xf:user.b:two',
    'getxat:/tmp/xf:user.b',
    'listxat:/tmp/xf',
    'rmxat:/tmp/xf:user.b',
    'rmx:/tmp/xf:user.a',
    'rmx:/tmp/xf:user.a',
    'lrmx:/tmp/xl:user.a',
    'getx:/nothing:user.a',
    'getx:/etc/os-release:user.none',
    'listx:/etc/os-release',
    'getx:/abs:user.s',
    'getx:/../../abs:user.s',
    `getx:${APP}/file:user.h`,
  ];

  const xattrState = () => {
    rmSync(join(fs.dir, 'tmp/xf'), { force: true });
    rmSync(join(fs.dir, 'tmp/xl'), { force: true });
    writeFileSync(join(fs.dir, 'tmp/xf'), 'x');
    symlinkSync('xf', join(fs.dir, 'tmp/xl'));
    // The probe itself, run on the host, sets the attributes outside the root.
    execFileSync(join(fs.dir, 'paths'), [
      `setx:${join(fs.outside, 'secret')}:user.s:SECRET`,
      `setx:${join(hostRun, 'file')}:user.h:host`,
    ]);
  };

  it("changes nothing outside the root through /proc/self/root (the host's / to the kernel)", async () => {
    xattrState();
    const secret = join(fs.outside, 'secret');
    const through = `/proc/self/root${secret}`;
    const out = await emulated(
      [
        `getx:${through}:user.s`,
        `setx:${through}:user.w:WRITTEN`,
        `rmx:${through}:user.s`,
        `chmod:${through}`,
        `watch:${through}:-`,
        `watch:/proc/self/root${fs.outside}:D`,
        'setx:/proc/self/root/tmp/xf:user.a:inside',
        'getx:/tmp/xf:user.a',
      ],
      { mounts: [`${APP}:${hostRun}`, '/proc:/proc'] },
    );
    expect(out).not.toContain('SECRET');
    expect(out).toBe(
      [
        `getx:${through}:user.s: ENOENT`,
        `setx:${through}:user.w:WRITTEN: ENOENT`,
        `rmx:${through}:user.s: ENOENT`,
        `chmod:${through}: ENOENT`,
        `watch:${through}:-: ENOENT`,
        `watch:/proc/self/root${fs.outside}:D: ENOENT`,
        'setx:/proc/self/root/tmp/xf:user.a:inside: 0',
        'getx:/tmp/xf:user.a: 6 [inside]',
        '',
      ].join('\n'),
    );
    // The host's file is as it was (the probe, run on the host, reads it).
    const host = execFileSync(
      join(fs.dir, 'paths'),
      [`getx:${secret}:user.s`, `getx:${secret}:user.w`],
      {
        encoding: 'utf8',
      },
    );
    expect(host).toBe(`getx:${secret}:user.s: 6 [SECRET]\ngetx:${secret}:user.w: ENODATA\n`);
    expect(statSync(secret).mode & 0o777).not.toBe(0o600);
  });

  it('reads and writes extended attributes of what the path names inside the root', async () => {
    xattrState();
    const out = await emulated(XATTR_OPS);
    expect(out).not.toContain('SECRET');
    expect(out).toContain('getx:/tmp/xf:user.a: 3 [one]');
    expect(out).toContain('createx:/tmp/xf:user.a:two: EEXIST');
    expect(out).toContain('lgetx:/tmp/xl:user.a: ENODATA');
    expect(out).toContain('getxat:/tmp/xf:user.b: 3 [two]');
    expect(out).toContain('getx:/abs:user.s: ENOENT');
    expect(out).toContain(`getx:${APP}/file:user.h: 4 [host]`);
    if (root) {
      xattrState();
      expect(await real(XATTR_OPS)).toBe(out);
    }
  });

  const WATCH_OPS = [
    'watch:/tmp/wd:-',
    'watch:/tmp/wf:D',
    'watch:/tmp/wl:N',
    'watch:/tmp/wl:-',
    'watch:/tmp/none:-',
    'watch:/tmp/wd:0',
    'badwatch:/tmp/wd',
    'watch:/../../..:D',
    `watch:${APP}:D`,
    'watch:/sub/abs:-',
    'write:/tmp/wd/new',
    'write:/tmp/wf',
    'write:/inner',
    'events',
  ];

  const watchState = () => {
    rmSync(join(fs.dir, 'tmp/wd'), { recursive: true, force: true });
    rmSync(join(fs.dir, 'tmp/wl'), { force: true });
    mkdirSync(join(fs.dir, 'tmp/wd'));
    writeFileSync(join(fs.dir, 'tmp/wf'), '');
    symlinkSync('wf', join(fs.dir, 'tmp/wl'));
  };

  it('watches with inotify what the path names inside the root', async () => {
    watchState();
    const out = await emulated(WATCH_OPS, { write: ['/tmp', '/inner'] });
    expect(out).toContain('watch:/tmp/wd:-: 1');
    expect(out).toContain('watch:/tmp/wf:D: ENOTDIR');
    expect(out).toContain('watch:/tmp/none:-: ENOENT');
    expect(out).toContain('watch:/tmp/wd:0: EINVAL');
    expect(out).toContain('badwatch:/tmp/wd: EINVAL');
    // Created and written in the watched directory; the file watched through its
    // symlink; / of the root; /inner through an absolute symlink inside it.
    expect(out).toContain('events: 1:100:new 1:2:new 3:2: 4:2:inner 6:2:\n');
    if (root) {
      watchState();
      expect(await real(WATCH_OPS)).toBe(out);
    }
  });

  const FANOTIFY_OPS = [
    'dropcaps',
    'fanotify:/tmp/nd:-',
    'fanotify:/tmp/nf:D',
    'fanotify:/tmp/nl:N',
    'fanotify:/tmp/none:-',
    'fanotify:/tmp/nd:M',
    'fanotify:/:F',
    'fanotify:/../../..:-',
    `fanotify:${APP}:D`,
    'fanotify:/sub/abs:N',
    'badfan:/tmp/nd:999',
    'badfan:/tmp/nd:1',
    'write:/tmp/nd/new',
    'write:/tmp/nf',
    'write:/inner',
    'fanevents',
    'fanotify:/tmp/nd:R',
    'fanotify:/tmp/nd:R',
    'write:/tmp/nd/new',
    'fanevents',
  ];

  const fanotifyState = () => {
    rmSync(join(fs.dir, 'tmp/nd'), { recursive: true, force: true });
    rmSync(join(fs.dir, 'tmp/nl'), { force: true });
    mkdirSync(join(fs.dir, 'tmp/nd'));
    writeFileSync(join(fs.dir, 'tmp/nf'), '');
    symlinkSync('nf', join(fs.dir, 'tmp/nl'));
  };

  it('marks with fanotify what the path names inside the root, inodes only', async () => {
    fanotifyState();
    const out = await emulated(FANOTIFY_OPS, { write: ['/tmp', '/inner'] });
    expect(out).toContain('fanotify:/tmp/nd:-: 0');
    expect(out).toContain('fanotify:/tmp/nf:D: ENOTDIR');
    expect(out).toContain('fanotify:/tmp/none:-: ENOENT');
    expect(out).toContain('fanotify:/:F: EPERM');
    expect(out).toContain('fanotify:/tmp/nd:R: ENOENT');
    expect(out).toContain('badfan:/tmp/nd:999: EBADF');
    expect(out).toContain('badfan:/tmp/nd:1: EINVAL');
    expect(out).toMatch(/^fanevents: \S+ \S+/m);
    if (root) {
      fanotifyState();
      expect(await real(FANOTIFY_OPS)).toBe(out);
    }
  });

  const FILE_ATTR_OPS = [
    'dropcaps',
    'fattr:/tmp/fa:-',
    'fattr:/tmp/fl:-',
    'fattr:/tmp/fl:N',
    'fattr:/tmp/fa:S',
    'fattr:/nothing:B',
    'fattr:/nothing:-',
    'fattr:/../../tmp/fa:-',
    'fattr:/abs:-',
    'fattr:/sub/abs:-',
    `fattr:${APP}/file:-`,
  ];

  const fileAttrState = () => {
    rmSync(join(fs.dir, 'tmp/fa'), { force: true });
    rmSync(join(fs.dir, 'tmp/fl'), { force: true });
    writeFileSync(join(fs.dir, 'tmp/fa'), 'x');
    symlinkSync('fa', join(fs.dir, 'tmp/fl'));
    // The probe itself, run on the host, marks the file outside the root.
    execFileSync(join(fs.dir, 'paths'), [`fsetattr:${join(fs.outside, 'secret')}:80`]);
  };

  it('reads file attributes of what the path names inside the root', async () => {
    fileAttrState();
    const out = await emulated(FILE_ATTR_OPS);
    expect(out).toContain('fattr:/tmp/fa:-: 0 [0]');
    expect(out).toContain('fattr:/nothing:B: EINVAL');
    expect(out).toContain('fattr:/abs:-: ENOENT');
    if (root) {
      fileAttrState();
      expect(await real(FILE_ATTR_OPS)).toBe(out);
    }
  });

  // file_setattr sets the attribute flags FS_IOC_FSSETXATTR sets, which every
  // sandbox's filter refuses (the owner could set nodump, noatime or sync on
  // any file it owns, granted or not): refused inside a root too, writable or not.
  it('refuses file_setattr, as every sandbox does', async () => {
    fileAttrState();
    const out = await emulated(
      ['fsetattr:/etc/os-release:80', `fsetattr:${APP}/file:80`, 'fsetattr:/tmp/fa:80'],
      { write: ['/tmp'], mounts: [`${APP}:${hostRun}:ro`] },
    );
    expect(out).toBe(
      [
        'fsetattr:/etc/os-release:80: EPERM',
        `fsetattr:${APP}/file:80: EPERM`,
        'fsetattr:/tmp/fa:80: EPERM',
        '',
      ].join('\n'),
    );
    const etc = await emulated(['fattr:/etc/os-release:-', 'fattr:/tmp/fa:-']);
    expect(etc).toBe('fattr:/etc/os-release:-: 0 [0]\nfattr:/tmp/fa:-: 0 [0]\n');
  });

  const UTIME_OPS = [
    'utime:/tmp/ut:1000',
    'mtime:/tmp/ut',
    'utimes:/tmp/ut:2000:5',
    'mtime:/tmp/ut',
    'utimes:/tmp/ut:1:1000000',
    'futimesat:tmp/ut:3000',
    'mtime:/tmp/ut',
    'utimes:/tmp/ul:4000:0',
    'mtime:/tmp/ut',
    'utime:/nothing:1',
    'utime:/abs:1',
    'utime:/../../tmp/ut:5000',
    'mtime:/tmp/ut',
  ];

  // aarch64 has no utime, utimes or futimesat (asm-generic/unistd.h).
  const oldTimeCalls = hasSyscall('utime');
  if (!oldTimeCalls)
    console.warn(`chroot paths: no utime, utimes, futimesat on ${hostArch()}: not run`);
  it.skipIf(!oldTimeCalls)(
    'sets times by the old calls (utime, utimes, futimesat) on what the path names inside the root',
    async () => {
      const state = () => {
        rmSync(join(fs.dir, 'tmp/ut'), { force: true });
        rmSync(join(fs.dir, 'tmp/ul'), { force: true });
        writeFileSync(join(fs.dir, 'tmp/ut'), '');
        symlinkSync('ut', join(fs.dir, 'tmp/ul'));
      };
      state();
      const out = await emulated(UTIME_OPS);
      expect(out).toContain('mtime:/tmp/ut: 2000.000005000');
      expect(out).toContain('utimes:/tmp/ut:1:1000000: EINVAL');
      expect(out).toContain('utime:/abs:1: ENOENT');
      if (root) {
        state();
        expect(await real(UTIME_OPS)).toBe(out);
      }
      expect(await emulated(['utime:/etc/os-release:1', 'utimes:/etc/os-release:1:0'])).toBe(
        'utime:/etc/os-release:1: EACCES\nutimes:/etc/os-release:1:0: EACCES\n',
      );
    },
  );

  it('answers uselib as the host kernel does (ENOSYS without CONFIG_USELIB)', async () => {
    const ops = ['uselib:/bin/busybox', 'uselib:/nothing', 'uselib:/abs'];
    const out = await emulated(ops);
    // The same static probe on the host, outside any sandbox: the kernel's own answer.
    const host = execFileSync(join(fs.dir, 'paths'), ['uselib:/nothing'], { encoding: 'utf8' });
    if (host.includes('ENOSYS')) {
      expect(out).toBe(ops.map((op) => `${op}: ENOSYS\n`).join(''));
    } else {
      expect(out).not.toContain(': ok');
    }
    if (root) expect(await real(ops)).toBe(out);
  });

  it('changes modes and extended attributes only where the policy lets it write', async () => {
    xattrState();
    const out = await emulated(
      [
        'chmod:/etc/os-release',
        'chmod:/tmp/xf',
        'setx:/etc/os-release:user.a:x',
        'rmx:/etc/os-release:user.a',
        `setx:${APP}/file:user.a:x`,
        'getx:/etc/os-release:user.a',
        'setx:/tmp/xf:user.a:x',
      ],
      { write: ['/tmp'], mounts: [`${APP}:${hostRun}:ro`] },
    );
    expect(out).toBe(
      [
        'chmod:/etc/os-release: EACCES',
        'chmod:/tmp/xf: 0',
        'setx:/etc/os-release:user.a:x: EACCES',
        'rmx:/etc/os-release:user.a: EACCES',
        `setx:${APP}/file:user.a:x: EROFS`,
        'getx:/etc/os-release:user.a: ENODATA',
        'setx:/tmp/xf:user.a:x: 0',
        '',
      ].join('\n'),
    );
    expect(statSync(join(fs.dir, 'etc/os-release')).mode & 0o777).toBe(0o644);
  });

  const RESOLVE_OPS = [
    'res:0:-:/etc/os-release',
    'res:B:/etc:os-release',
    'res:B:/etc:../etc/os-release',
    'res:B:-:/etc/os-release',
    'res:B:/:etc/link',
    'res:B:/etc:link',
    'res:B:/sub:abs',
    'res:R:/etc:../../os-release',
    'res:R:/etc:/os-release',
    'res:R:/sub:abs',
    'res:R:/sub:../../../inner',
    'res:R:/:abs',
    'res:S:-:/etc/link',
    'res:S:-:/etc/os-release',
    'res:RS:/sub:abs',
    `res:X:-:${APP}/file`,
    `res:X:${APP}:file`,
    `res:X:${APP}:../../../etc/os-release`,
    `res:X:${APP}:/etc/os-release`,
    'res:X:-:/etc/link',
    'res:M:-:/etc/os-release',
    'res:BR:-:/etc/os-release',
  ];

  it('resolves openat2 with RESOLVE flags as the kernel does', async () => {
    const out = await emulated(RESOLVE_OPS);
    expect(out).not.toContain('SECRET');
    expect(out).toContain('res:B:/etc:../etc/os-release: EXDEV');
    expect(out).toContain('res:R:/sub:abs: [SUBINNER]');
    expect(out).toContain('res:S:-:/etc/link: ELOOP');
    expect(out).toContain(`res:X:-:${APP}/file: EXDEV`);
    expect(out).toContain(`res:X:${APP}:file: [HOSTFILE]`);
    expect(out).toContain('res:BR:-:/etc/os-release: EINVAL');
    if (root) expect(await real(RESOLVE_OPS)).toBe(out);
  });

  it('takes a mount as another file system under a workdir over the root', async () => {
    const hostRo = join(dirname(fs.dir), 'hostro');
    mkdirSync(hostRo, { recursive: true });
    mkdirSync(join(fs.dir, 'ro'), { recursive: true });
    writeFileSync(join(hostRo, 'file'), 'ROFILE\n');
    const result = await runInRoot(
      fs.dir,
      [
        '/probe',
        `write:${APP}/new:M`,
        `cat:${APP}/new`,
        `mkdir:${APP}/d`,
        'write:/ro/x:y',
        'cat:/ro/file',
        'write:/etc/added:L',
        `cat:${APP}/../../../etc/added`,
        'unlink:/data/file',
        `cat:${APP}/../../../data/file`,
        `write:${APP}/../../../etc/via:V`,
        `rename:${APP}/new:/etc/moved`,
      ],
      {
        mounts: [`${APP}:${hostRun}`, `/ro:${hostRo}:ro`],
        workdir: { dir: fs.dir, storage: join(dirname(fs.dir), 'store') },
      },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      [
        `write ${APP}/new M: ok`,
        `cat ${APP}/new: [M]`,
        `mkdir ${APP}/d: ok`,
        'write /ro/x y: EROFS',
        'cat /ro/file: [ROFILE]',
        'write /etc/added L: ok',
        `cat ${APP}/../../../etc/added: [L]`,
        'unlink /data/file: ok',
        `cat ${APP}/../../../data/file: ENOENT`,
        `write ${APP}/../../../etc/via V: ok`,
        `rename ${APP}/new /etc/moved: EXDEV`,
        '',
      ].join('\n'),
    );
    // The mount's writes are the host's, as the mount says; the layer has the root's.
    expect(readFileSync(join(hostRun, 'new'), 'utf8')).toBe('M');
    expect(statSync(join(hostRun, 'd')).isDirectory()).toBe(true);
    const changes = result.workdir?.changes.map((change) => `${change.type} ${change.path}`);
    expect(changes?.sort()).toEqual(['A etc/added', 'A etc/via', 'D data/file']);
    expect(existsSync(join(fs.dir, 'etc/added'))).toBe(false);
  });

  it('answers RESOLVE_CACHED with EAGAIN, which callers retry without it', async () => {
    const out = await emulated(['res:C:-:/etc/os-release', 'res:C:-:/abs']);
    expect(out).toBe(['res:C:-:/etc/os-release: EAGAIN', 'res:C:-:/abs: EAGAIN', ''].join('\n'));
  });
});
