// Root file systems for the chroot tests: Debian's static busybox, the
// static probe (probe.c, built here), a dynamically linked /bin/ls with its
// loader and libraries at their paths, and a few symlinks that point out.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RunResult, Sandbox } from '../../../sandlock/src/index.js';

const BUSYBOX = '/bin/busybox';
const APPLETS = [
  'sh',
  'ls',
  'cat',
  'pwd',
  'echo',
  'true',
  'mkdir',
  'readlink',
  'stat',
  'ln',
  'env',
];

/** Why the rootfs cannot be built here (printed by the skipping tests), or null. */
export function missing(): string | null {
  if (!isStaticBusybox()) {
    const installed = spawnSync('apt-get', ['install', '-y', '-q', 'busybox-static'], {
      stdio: 'ignore',
    });
    if (installed.status !== 0 || !isStaticBusybox()) {
      return 'busybox-static is not installed and apt-get could not install it';
    }
  }
  if (spawnSync('cc', ['--version'], { stdio: 'ignore' }).status !== 0) {
    return 'no C compiler for the static probe';
  }
  return null;
}

function isStaticBusybox(): boolean {
  if (!existsSync(BUSYBOX)) return false;
  const out = spawnSync('file', ['-L', BUSYBOX], { encoding: 'utf8' });
  return out.status !== 0 || out.stdout.includes('statically linked');
}

/** The libraries of a dynamically linked program, and its loader (ldd). */
function librariesOf(program: string): string[] {
  const out = execFileSync('ldd', [program], { encoding: 'utf8' });
  return [...out.matchAll(/(\/\S+) \(0x/g)].map((match) => match[1]!);
}

export interface Rootfs {
  dir: string;
  /** A directory outside the root holding `secret`. */
  outside: string;
  remove(): void;
}

export function buildRootfs(): Rootfs {
  const base = realpathSync(mkdtempSync(join(tmpdir(), 'sandlock-chroot-')));
  const dir = join(base, 'root');
  const outside = join(base, 'outside');
  for (const sub of ['bin', 'etc', 'tmp', 'proc', 'dev', 'data', 'usr/bin']) {
    mkdirSync(join(dir, sub), { recursive: true });
  }
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret'), 'SECRET\n');
  copyFileSync(BUSYBOX, join(dir, 'bin/busybox'));
  for (const applet of APPLETS) symlinkSync('busybox', join(dir, 'bin', applet));
  writeFileSync(join(dir, 'etc/os-release'), 'PRETTY_NAME="sandlock chroot test"\n');
  writeFileSync(join(dir, 'data/file'), 'data\n');
  writeFileSync(join(dir, 'etc/hostname'), 'root-own-name\n');
  writeFileSync(join(dir, 'etc/hosts'), '127.0.0.1\tlocalhost\n');
  execFileSync('cc', [
    '-static',
    '-O1',
    '-pthread',
    '-o',
    join(dir, 'probe'),
    fileURLToPath(new URL('./probe.c', import.meta.url)),
  ]);
  // /race/a a directory, /race/b a symlink to the directory outside (the race test swaps them).
  mkdirSync(join(dir, 'race/a'), { recursive: true });
  writeFileSync(join(dir, 'race/a/secret'), 'INSIDE\n');
  symlinkSync(outside, join(dir, 'race/b'));
  // /usr/bin/dls: the host's ls, run with the root's loader and libraries.
  copyFileSync('/bin/ls', join(dir, 'usr/bin/dls'));
  for (const library of librariesOf('/bin/ls')) {
    mkdirSync(join(dir, dirname(library)), { recursive: true });
    copyFileSync(library, join(dir, library));
  }
  writeFileSync(join(dir, 'script'), '#!/bin/sh\necho "script $0 $1"\n');
  chmodSync(join(dir, 'script'), 0o755);
  writeFileSync(join(dir, 'envscript'), '#!/bin/env sh\necho "env script $1"\n', { mode: 0o755 });
  writeFileSync(join(dir, 'fdscript'), '#!/bin/sh\nexec /probe fds\n', { mode: 0o755 });
  // Directories a caller without capabilities may search but not read, or not even search.
  mkdirSync(join(dir, 'searchonly/sub'), { recursive: true });
  writeFileSync(join(dir, 'searchonly/inside'), 'INSIDE SEARCHONLY\n');
  chmodSync(join(dir, 'searchonly'), 0o111);
  symlinkSync('searchonly', join(dir, 'solink'));
  mkdirSync(join(dir, 'noaccess'));
  chmodSync(join(dir, 'noaccess'), 0o000);
  // Interpreters that are scripts themselves, to the kernel's limit and past it.
  writeFileSync(join(dir, 'interp1'), '#!/bin/sh\necho "interp1 $0 [$1] $2 $3"\n', { mode: 0o755 });
  writeFileSync(join(dir, 'nested'), '#!/interp1 one two\necho never\n', { mode: 0o755 });
  writeFileSync(join(dir, 'bin/relnested'), '#!bin/../interp1\n', { mode: 0o755 });
  for (let level = 1; level <= 6; level++) {
    const line = level === 6 ? '/bin/sh' : `/chain${level + 1}`;
    writeFileSync(join(dir, `chain${level}`), `#!${line}\necho "chain $0 $*"\n`, { mode: 0o755 });
  }
  writeFileSync(join(dir, 'exit7'), '#!/bin/sh\nexit 7\n', { mode: 0o755 });
  writeFileSync(join(dir, 'emptyline'), '#!\necho never\n', { mode: 0o755 });
  writeFileSync(join(dir, 'badinterp'), '#!/noexec-script\n', { mode: 0o755 });
  writeFileSync(join(dir, 'nointerp'), '#!/nothing/here\n', { mode: 0o755 });
  // Readable, not executable: refused as the kernel refuses them.
  writeFileSync(join(dir, 'noexec-script'), '#!/bin/sh\necho ran\n', { mode: 0o644 });
  copyFileSync(join(dir, 'probe'), join(dir, 'xonly'));
  chmodSync(join(dir, 'xonly'), 0o111);
  // The probe dynamically linked (its libc is ls's), executable but not readable, and set-id too.
  execFileSync('cc', [
    '-O1',
    '-pthread',
    '-o',
    join(dir, 'dxonly'),
    fileURLToPath(new URL('./probe.c', import.meta.url)),
  ]);
  copyFileSync(join(dir, 'dxonly'), join(dir, 'dsetid'));
  chmodSync(join(dir, 'dxonly'), 0o111);
  chmodSync(join(dir, 'dsetid'), 0o6111);
  copyFileSync('/bin/ls', join(dir, 'usr/bin/noexec'));
  chmodSync(join(dir, 'usr/bin/noexec'), 0o644);
  symlinkSync(join(outside, 'secret'), join(dir, 'abs'));
  symlinkSync('../../../../../../../../secret', join(dir, 'rel'));
  symlinkSync(`../../../../../../../..${outside}`, join(dir, 'reldir'));
  symlinkSync('../etc/os-release', join(dir, 'etc/link'));
  return { dir, outside, remove: () => rmSync(base, { recursive: true, force: true }) };
}

export interface ChrootRun {
  /** The program's stdin (a descriptor of this process). */
  stdin?: number;
  mounts?: string[];
  write?: string[];
  deny?: string[];
  /** Unix socket paths the sandbox may reach, as it sees them. */
  unix?: string[];
  cwd?: string;
  /** The program's environment (default: PATH=/bin:/usr/bin). */
  env?: Record<string, string>;
  /** The user the program runs as. */
  user?: { uid: number; gid: number };
  /** A copy-on-write workdir (a host path inside the root), its layers' store, and a dry run. */
  workdir?: { dir: string; storage: string };
}

/** Runs argv in a sandbox whose root is `dir`. */
export function runInRoot(
  dir: string,
  argv: string[],
  options: ChrootRun = {},
): Promise<RunResult<string>> {
  const builder = Sandbox.builder().chroot(dir);
  if (options.mounts !== undefined) builder.fsMount(...options.mounts);
  if (options.write !== undefined) builder.fsWrite(...options.write);
  if (options.deny !== undefined) builder.fsDeny(...options.deny);
  if (options.unix !== undefined) builder.unix(...options.unix);
  if (options.cwd !== undefined) builder.cwd(options.cwd);
  if (options.workdir !== undefined) {
    builder.workdir(options.workdir.dir).fsStorage(options.workdir.storage);
  }
  return builder.build().run(argv, {
    encoding: 'utf8',
    ...(options.stdin !== undefined ? { stdio: [options.stdin, 'pipe', 'pipe'] as const } : {}),
    env: options.env ?? { PATH: '/bin:/usr/bin' },
    ...(options.workdir !== undefined ? { workdirEnd: 'dry-run' as const } : {}),
    ...(options.user !== undefined ? { user: options.user } : {}),
  });
}

/**
 * Runs argv under a real chroot(2) of `dir` with a procfs mounted at its
 * /proc, in a mount namespace of its own (as root); as `user` ("uid:gid")
 * when given.
 */
export function runInRealRootWithProc(dir: string, argv: string[], user?: string): string {
  const as = user === undefined ? '' : `--userspec=${user}`;
  const script = `mount -t proc proc "$0/proc" && exec chroot ${as} "$0" "$@"`;
  return execFileSync(
    'unshare',
    ['--mount', '--propagation', 'private', 'sh', '-c', script, dir, ...argv],
    { encoding: 'utf8' },
  );
}

/** Runs argv under a real chroot(2) of `dir` (as root), for the differential test. */
export function runInRealRoot(dir: string, argv: string[], cwd = '/'): string {
  return execFileSync('chroot', [dir, '/bin/sh', '-c', 'cd "$0" && exec "$@"', cwd, ...argv], {
    encoding: 'utf8',
  });
}
