import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  close,
  encodeOpenHow,
  hostArch,
  openFlags,
  trySyscall,
  walkPath,
} from '../src/index.js';

const O = openFlags(hostArch());
const statx = Buffer.alloc(256);

/** "dev:ino" of a descriptor. */
function identity(fd: number): string {
  const result = trySyscall('statx', fd, Buffer.from('\0'), AT_EMPTY_PATH, 0x100, statx);
  if (result < 0) throw new Error(`statx: ${-result}`);
  return `${statx.readUInt32LE(136)}:${statx.readUInt32LE(140)}:${statx.readBigUInt64LE(32)}`;
}

/** What the kernel's own lookup gives: the object's identity, or the errno. */
function kernelOpen(start: number, path: string, noFollow: boolean): string {
  const how = encodeOpenHow({
    flags: BigInt(O.O_PATH | O.O_CLOEXEC | (noFollow ? O.O_NOFOLLOW : 0)),
    resolve: 0n,
  });
  const fd = trySyscall('openat2', start, Buffer.from(`${path}\0`, 'latin1'), how, how.length);
  if (fd < 0) return `errno ${-fd}`;
  try {
    return identity(fd);
  } finally {
    close(fd);
  }
}

let dir: string;
let root: number;
let start: number;
const tid = trySyscall('gettid');

function walked(path: string, noFollow: boolean, hide: (pid: number) => boolean = () => false) {
  const result = walkPath({
    root,
    start,
    path: Buffer.from(path, 'latin1'),
    followLast: !noFollow,
    tgid: () => process.pid,
    tid,
    enterPid: (pid) => !hide(pid),
  });
  try {
    if (result.gaveUp) return 'gave up';
    if (result.errno !== 0) return `errno ${result.errno}`;
    return identity(result.fd);
  } finally {
    result.close();
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sandlock-walk-'));
  mkdirSync(join(dir, 'a/b'), { recursive: true });
  writeFileSync(join(dir, 'a/f'), 'f');
  writeFileSync(join(dir, 'c'), 'c');
  symlinkSync(join(dir, 'a'), join(dir, 'abs'));
  symlinkSync('a', join(dir, 'rel'));
  symlinkSync('..', join(dir, 'a/up'));
  symlinkSync('loop', join(dir, 'loop'));
  symlinkSync('/proc/self', join(dir, 'self'));
  symlinkSync('/proc/thread-self/fd', join(dir, 'tfd'));
  symlinkSync('nope', join(dir, 'dangling'));
  symlinkSync('a/f', join(dir, 'file'));
  symlinkSync('a/', join(dir, 'slash'));
  root = trySyscall('openat', AT_FDCWD, Buffer.from('/\0'), O.O_PATH | O.O_CLOEXEC, 0);
  start = trySyscall('openat', AT_FDCWD, Buffer.from(`${dir}\0`), O.O_PATH | O.O_CLOEXEC, 0);
});

afterAll(() => {
  close(root);
  close(start);
  rmSync(dir, { recursive: true, force: true });
});

const NAMES = [
  'a',
  'b',
  'c',
  'f',
  'abs',
  'rel',
  'up',
  'loop',
  'self',
  'tfd',
  'dangling',
  'file',
  'slash',
  '.',
  '..',
  'nope',
  'proc',
  'thread-self',
  'status',
  'fd',
  '0',
  '1',
  '2',
  'cwd',
  'root',
  'exe',
  'task',
  'ns',
  'net',
  'mounts',
  'sys',
  'tmp',
];

describe('walkPath', () => {
  it('lands where the kernel lands, or fails as it fails (random paths)', () => {
    let gaveUp = 0;
    const names = fc.constantFrom(...NAMES, String(process.pid), String(tid), dir.slice(1));
    const path = fc
      .tuple(fc.boolean(), fc.array(names, { minLength: 1, maxLength: 8 }), fc.boolean())
      .map(
        ([absolute, parts, slash]) => `${absolute ? '/' : ''}${parts.join('/')}${slash ? '/' : ''}`,
      );
    fc.assert(
      fc.property(path, fc.boolean(), (text, noFollow) => {
        const mine = walked(text, noFollow);
        // Past its bound the walk says so, and its caller lets the kernel decide.
        if (mine === 'gave up') gaveUp++;
        else expect(mine).toBe(kernelOpen(start, text, noFollow));
      }),
      { numRuns: 4000 },
    );
    expect(gaveUp).toBeLessThan(200);
  });

  it('resolves the paths an outside review used to escape, as the kernel does', () => {
    for (const path of [
      '/proc/nope/../self/environ',
      '/nonexistent/../proc/self/maps',
      '/proc/self/../self/status',
      '/proc/thread-self/../../self/status',
      'self/../1/status',
      '/proc/self/fd/0',
      '/proc/self/cwd/a/f',
      '/proc/self/root/proc/self/status',
      '/proc/self/',
      '/proc/self/status/',
      '',
    ]) {
      for (const noFollow of [false, true]) {
        expect([path, walked(path, noFollow)]).toEqual([path, kernelOpen(start, path, noFollow)]);
      }
    }
  });

  it('hides the process directories the hook refuses, however the path reaches them', () => {
    const hide = (pid: number) => pid === 1;
    for (const path of [
      '/proc/1/status',
      '/proc/self/../1/status',
      '/proc/1',
      'self/../1/cmdline',
      '/proc/./1/../1/environ',
    ]) {
      expect([path, walked(path, false, hide)]).toEqual([path, 'errno 2']);
    }
    // Not through the pid's own directory: nothing to hide.
    expect(walked('/proc/self/status', false, hide)).toBe(
      kernelOpen(start, '/proc/self/status', false),
    );
  });

  it('takes a long run in one lookup, and gives up past a bound, saying so', () => {
    // Beneath where it starts, no symlink: one openat2, however many names.
    const long = `/proc/self/${'task/../'.repeat(300)}status`;
    expect(walked(long, false)).toBe(kernelOpen(start, long, false));
    // A symlink at every other name: one lookup each, more than the bound.
    const linked = `${dir}/${'a/up/'.repeat(30)}c`;
    expect(kernelOpen(start, linked, false)).toMatch(/^\d+:\d+:\d+$/);
    expect(walked(linked, false)).toBe('gave up');
  });

  it('sees the process a magic link or a start in /proc leads into', () => {
    const seen: number[] = [];
    const proc1 = trySyscall(
      'openat',
      AT_FDCWD,
      Buffer.from('/proc/1\0'),
      O.O_PATH | O.O_CLOEXEC,
      0,
    );
    try {
      const result = walkPath({
        root,
        start: proc1,
        path: Buffer.from('status'),
        followLast: true,
        tgid: () => process.pid,
        tid,
        enterPid: (pid) => {
          seen.push(pid);
          return false;
        },
      });
      expect(result.errno).toBe(2);
      result.close();
      expect(seen).toEqual([1]);
    } finally {
      close(proc1);
    }
  });
});

describe('stopAt', () => {
  it('stops at the chosen directory, however the path reaches it, with what is left to walk', () => {
    const a = trySyscall('openat', AT_FDCWD, Buffer.from(`${dir}/a\0`), O.O_PATH | O.O_CLOEXEC, 0);
    const target = identity(a);
    close(a);
    const stopAtA = (path: string) => {
      const result = walkPath({
        root,
        start,
        path: Buffer.from(path, 'latin1'),
        followLast: true,
        tgid: () => process.pid,
        tid,
        stopAt: (_fd, id) => id === target,
      });
      try {
        return result.stopped
          ? `stopped at ${identity(result.fd) === target ? 'a' : '?'}: ${result.rest}`
          : `errno ${result.errno}`;
      } finally {
        result.close();
      }
    };
    expect(stopAtA('a/b/c')).toBe('stopped at a: b/c');
    expect(stopAtA('rel/f')).toBe('stopped at a: f');
    expect(stopAtA(`${dir}/abs/missing/x/`)).toBe('stopped at a: missing/x/');
    expect(stopAtA('a/b/../../c/..')).toBe('stopped at a: b/../../c/..');
    // A path that ends on it, or never reaches it, is walked as before.
    expect(stopAtA('c')).toBe(`errno 0`);
  });
});
