// `sandlock run` and `sandlock check` inside a sandbox with an emulated
// chroot (as in a sandlock-oci container): the inner sandbox is taken on by
// the outer supervisor, inside the root, and only narrows the outer policy.
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readlinkSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, sandlock } from './helpers.js';

const REPOSITORY = fileURLToPath(new URL('../../..', import.meta.url)).replace(/\/$/, '');

describe('sandlock inside a sandbox with a chroot', () => {
  let root: string;
  /** The outer sandbox's mounts and the inner one's read grants, as flags. */
  const mounts: string[] = [];
  const reads: string[] = [];

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'sandlock-nested-chroot-'));
    const show = (path: string, readOnly = true) => {
      mkdirSync(join(root, path), { recursive: true });
      mounts.push('--fs-mount', `${path}:${path}${readOnly ? ':ro' : ''}`);
    };
    // /dev: the mount points of the device nodes (the outer policy's devices).
    for (const dir of ['/proc', '/dev', '/tmp/w']) mkdirSync(join(root, dir), { recursive: true });
    mounts.push('--fs-mount', '/proc:/proc');
    for (const path of ['/usr', '/etc']) {
      show(path);
      reads.push('-r', path);
    }
    // /bin, /lib, /lib64: the host's symlinks into /usr (merged /usr), else mounts of their own.
    for (const path of ['/bin', '/lib', '/lib64']) {
      if (!existsSync(path)) continue;
      if (lstatSync(path).isSymbolicLink()) symlinkSync(readlinkSync(path), join(root, path));
      else {
        show(path);
        reads.push('-r', path);
      }
    }
    show(REPOSITORY);
    if (!process.execPath.startsWith('/usr/')) show(dirname(process.execPath));
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const inside = (args: readonly string[]) =>
    sandlock(
      [
        'run',
        '--chroot',
        root,
        ...mounts,
        '-r',
        '/',
        '-w',
        '/tmp',
        '--',
        process.execPath,
        CLI,
        ...args,
      ],
      { timeout: 120_000 },
    );

  it('check says a sandbox started there is taken on by the supervisor around it', () => {
    const check = inside(['check']);
    expect(check.stdout).toMatch(
      /^seccomp user notification\s+OK .*taken on by the supervisor around it, SANDLOCK_SUPERVISOR=\//m,
    );
    expect(check.stdout).not.toContain('MISSING');
    expect(check.status).toBe(0);
  }, 150_000);

  it('runs a sandbox whose narrower policy holds inside the root', () => {
    const run = inside([
      'run',
      ...reads,
      '-w',
      '/tmp/w',
      '--',
      '/bin/sh',
      '-c',
      [
        'echo granted > /tmp/w/inner && head -1 /tmp/w/inner',
        '(echo refused > /tmp/outer) 2>/dev/null || echo tmp-refused',
        'mkdir /tmp/dir 2>/dev/null || echo mkdir-refused',
        `[ -e ${REPOSITORY}/package.json ] && echo repository-seen`,
        `head -c 0 ${REPOSITORY}/package.json 2>/dev/null || echo repository-refused`,
      ].join('; '),
    ]);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe(
      'granted\ntmp-refused\nmkdir-refused\nrepository-seen\nrepository-refused\n',
    );
    expect(run.status).toBe(0);
    expect(existsSync(join(root, 'tmp/w/inner'))).toBe(true);
    expect(existsSync(join(root, 'tmp/outer'))).toBe(false);
  }, 150_000);
});
