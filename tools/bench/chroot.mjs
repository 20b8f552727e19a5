// The emulated chroot against a real chroot(2) of the same root (as root):
// a shell loop of 1000 /bin/true, `ls -lR` of a tree of ~1300 files
// (busybox runs ls in the shell's process: every lstat, open and readlink
// is a notified call walked inside the root), and a dynamically linked
// program started with the root's loader (a sealed memfd copy with
// PT_INTERP patched); and `python3 -c pass` in the Debian root the chroot
// tests make with debootstrap (packages/chroot/test/support/debian.ts),
// when it is there.
import { execFileSync, spawn } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Sandbox } from 'sandlock';
import { interleave, summarize } from './stats.mjs';

const BUSYBOX = '/bin/busybox';
/** The Debian root of the chroot tests, made today (debootstrap). */
const DEBIAN = join(tmpdir(), `sandlock-debian-bookworm-${new Date().toISOString().slice(0, 10)}`);
const TREE = '/usr/share/zoneinfo';

function rootfs() {
  const base = realpathSync(mkdtempSync(join(tmpdir(), 'sandlock-bench-chroot-')));
  const dir = join(base, 'root');
  for (const sub of ['bin', 'etc', 'dev', 'tmp', 'usr/bin'])
    mkdirSync(join(dir, sub), { recursive: true });
  copyFileSync(BUSYBOX, join(dir, 'bin/busybox'));
  for (const applet of ['sh', 'true', 'ls', 'seq', 'cat'])
    symlinkSync('busybox', join(dir, 'bin', applet));
  cpSync(TREE, join(dir, 'tree'), { recursive: true });
  copyFileSync('/bin/ls', join(dir, 'usr/bin/dls'));
  const ldd = execFileSync('ldd', ['/bin/ls'], { encoding: 'utf8' });
  for (const [, library] of ldd.matchAll(/(\/\S+) \(0x/g)) {
    mkdirSync(join(dir, dirname(library)), { recursive: true });
    copyFileSync(library, join(dir, library));
  }
  return { base, dir };
}

function bare(dir, argv) {
  return () =>
    new Promise((resolve, reject) => {
      const child = spawn('chroot', [dir, ...argv], { stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
    });
}

function emulated(dir, argv) {
  const sandbox = Sandbox.builder().chroot(dir).build();
  return async () => {
    const result = await sandbox.run(argv, { env: { PATH: '/bin:/usr/bin' } });
    if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}: ${result.stderr}`);
  };
}

export async function benchChroot(runs = 8) {
  if (process.getuid?.() !== 0 || !existsSync(BUSYBOX)) {
    throw new Error('the chroot benchmark needs root (a real chroot) and busybox-static');
  }
  const { base, dir } = rootfs();
  const loop = ['/bin/sh', '-c', 'for i in $(seq 1000); do /bin/true; done'];
  const listing = ['/bin/ls', '-lR', '/tree'];
  const dynamic = ['/usr/bin/dls', '/'];
  const cases = {
    '1000 × /bin/true, real chroot': bare(dir, loop),
    '1000 × /bin/true, emulated': emulated(dir, loop),
    'ls -lR of 1300 files, real chroot': bare(dir, listing),
    'ls -lR of 1300 files, emulated': emulated(dir, listing),
    'dynamic ls /, real chroot': bare(dir, dynamic),
    'dynamic ls /, emulated': emulated(dir, dynamic),
  };
  const python = ['/usr/bin/python3', '-c', 'pass'];
  if (existsSync(join(DEBIAN, 'usr/bin/python3'))) {
    cases['python3 -c pass in Debian, real chroot'] = bare(DEBIAN, python);
    cases['python3 -c pass in Debian, emulated'] = emulated(DEBIAN, python);
  } else {
    console.error(`python3 in Debian: not run: no ${DEBIAN} (run the chroot tests first)`);
  }
  // A case that cannot run yet (exec inside the root needs the retarget
  // answer) is reported, not measured.
  const failed = {};
  for (const [label, run] of Object.entries(cases)) {
    try {
      await run();
    } catch (error) {
      failed[label] = error.message.split('\n')[0];
      delete cases[label];
    }
  }
  try {
    const result = summarize(await interleave(cases, runs, 1));
    const ratio = (what) =>
      result[`${what}, emulated`] && result[`${what}, real chroot`]
        ? result[`${what}, emulated`].median / result[`${what}, real chroot`].median
        : Number.NaN;
    for (const [label, why] of Object.entries(failed)) console.error(`${label}: not run: ${why}`);
    return {
      title: `emulated chroot vs chroot(2), ${runs} runs each, interleaved`,
      result,
      ratios: {
        '1000 × /bin/true, emulated / real': ratio('1000 × /bin/true'),
        'ls -lR, emulated / real': ratio('ls -lR of 1300 files'),
        'dynamic ls /, emulated / real': ratio('dynamic ls /'),
        'python3 -c pass in Debian, emulated / real': ratio('python3 -c pass in Debian'),
      },
    };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
