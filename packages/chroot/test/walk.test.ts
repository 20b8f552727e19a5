// The walk of root.ts against the kernel's own openat2(RESOLVE_IN_ROOT) of
// the same path from the same root, on random paths (names, `.`, `..`,
// absolute and relative symlinks, some pointing out, missing names,
// trailing slashes): the same object, or the same errno. With a mount, the
// walk sees the mount's host where the kernel sees the root's directory.
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AT_EMPTY_PATH,
  close,
  encodeOpenHow,
  hostArch,
  openFlags,
  RESOLVE_IN_ROOT,
  STATX_INO,
  STATX_TYPE,
  trySyscall,
} from '@sandlock/sys';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Root } from '../src/root.js';

const O = openFlags(hostArch());
const base = realpathSync(mkdtempSync(join(tmpdir(), 'sandlock-chroot-walk-')));
const dir = join(base, 'root');
const outside = join(base, 'outside');
afterAll(() => rmSync(base, { recursive: true, force: true }));

mkdirSync(join(dir, 'a/b'), { recursive: true });
mkdirSync(join(dir, 'c'));
mkdirSync(join(outside, 'a'), { recursive: true });
writeFileSync(join(dir, 'a/f'), 'inside');
writeFileSync(join(dir, 'a/b/g'), 'inside');
writeFileSync(join(outside, 'secret'), 'outside');
symlinkSync('/a/b', join(dir, 'abs'));
symlinkSync('../..', join(dir, 'a/up'));
symlinkSync('../../../../..', join(dir, 'a/b/far'));
symlinkSync(outside, join(dir, 'out'));
symlinkSync('f', join(dir, 'a/tof'));
symlinkSync('/c', join(dir, 'a/b/babs'));
symlinkSync('nowhere', join(dir, 'c/dangling'));
symlinkSync('loop', join(dir, 'c/loop'));

const statx = Buffer.alloc(256);
function idOf(fd: number): string {
  trySyscall('statx', fd, Buffer.from('\0'), AT_EMPTY_PATH, STATX_TYPE | STATX_INO, statx);
  return `${statx.readUInt32LE(136)}:${statx.readUInt32LE(140)}:${statx.readBigUInt64LE(32)}`;
}

function kernel(rootFd: number, path: string, follow: boolean): string {
  const how = encodeOpenHow({
    flags: BigInt(O.O_PATH | O.O_CLOEXEC | (follow ? 0 : O.O_NOFOLLOW)),
    resolve: BigInt(RESOLVE_IN_ROOT),
  });
  const fd = trySyscall('openat2', rootFd, Buffer.from(`${path}\0`, 'latin1'), how, how.length);
  if (fd < 0) return `errno ${-fd}`;
  const id = idOf(fd);
  close(fd);
  return id;
}

function walked(root: Root, path: string, follow: boolean): string {
  const found = root.walk(path, null, { followLast: follow });
  try {
    return found.errno !== 0 ? `errno ${found.errno}` : idOf(found.fd);
  } finally {
    found.close();
  }
}

const part = fc.constantFrom(
  'a',
  'b',
  'c',
  'f',
  'g',
  'abs',
  'up',
  'far',
  'out',
  'tof',
  'babs',
  'dangling',
  'loop',
  'secret',
  'missing',
  '.',
  '..',
);
const path = fc
  .tuple(fc.boolean(), fc.array(part, { minLength: 1, maxLength: 7 }), fc.boolean())
  .map(([absolute, parts, slash]) => `${absolute ? '/' : ''}${parts.join('/')}${slash ? '/' : ''}`);

describe('the walk inside a root', () => {
  it('finds what openat2(RESOLVE_IN_ROOT) finds, or fails as it fails', () => {
    const root = Root.open(dir, []);
    try {
      fc.assert(
        fc.property(path, fc.boolean(), (text, follow) => {
          // Relative paths start at the root here: the walk's start is the root too.
          const absolute = text.startsWith('/') ? text : `/${text}`;
          expect(walked(root, absolute, follow)).toBe(kernel(root.fd, absolute, follow));
        }),
        { numRuns: 3000 },
      );
    } finally {
      root.close();
    }
  });

  it('shows a mount at its place, and .. above it goes back inside the root', () => {
    const root = Root.open(dir, [`/c/m:${outside}`]);
    try {
      const outsideRoot = trySyscall('openat', -100, Buffer.from(`${outside}\0`), O.O_PATH, 0);
      const secret = kernel(outsideRoot, '/secret', true);
      close(outsideRoot);
      expect(walked(root, '/c/m/secret', true)).toBe(secret);
      expect(walked(root, '/c/m/../../a/f', true)).toBe(kernel(root.fd, '/a/f', true));
      expect(walked(root, '/c/m/../../../../secret', true)).toBe('errno 2');
      expect(walked(root, '/c/m/a/../../m/secret', true)).toBe(secret);
    } finally {
      root.close();
    }
  });
});
