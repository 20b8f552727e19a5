import { describe, expect, it } from 'vitest';
import { writableByPolicy } from '../src/policy.js';

describe('writableByPolicy', () => {
  const policy = { fsWrite: ['/tmp/w', '/srv/data/'], fsDeny: ['/tmp/w/private'] };

  it('allows a writable tree and what lies beneath it', () => {
    expect(writableByPolicy(policy, '/tmp/w/a/b')).toBe(true);
    expect(writableByPolicy({ fsWrite: ['/tmp/w'], fsDeny: [] }, '/tmp/w')).toBe(true);
    expect(writableByPolicy(policy, '/srv/data/x')).toBe(true);
  });

  it('refuses paths outside, siblings sharing a prefix, and denied trees', () => {
    expect(writableByPolicy(policy, '/etc/passwd')).toBe(false);
    expect(writableByPolicy(policy, '/tmp/wx')).toBe(false);
    expect(writableByPolicy(policy, '/tmp/w/private')).toBe(false);
    expect(writableByPolicy(policy, '/tmp/w/private/key')).toBe(false);
    expect(writableByPolicy({ fsWrite: [], fsDeny: [] }, '/tmp/w/a')).toBe(false);
    expect(writableByPolicy({ fsWrite: [], fsDeny: ['/tmp'] }, '/tmp/w/a')).toBe(false);
  });

  it('judges a deleted file by the path it had, a live one by its whole name', () => {
    expect(writableByPolicy(policy, '/tmp/w/gone (deleted)', true)).toBe(true);
    expect(writableByPolicy(policy, '/etc/gone (deleted)', true)).toBe(false);
    // A live sibling of the writable tree named "w (deleted)": outside.
    expect(writableByPolicy(policy, '/tmp/w (deleted)')).toBe(false);
    expect(writableByPolicy(policy, '/tmp/w (deleted)', false)).toBe(false);
  });

  it('refuses the ancestors of a denied tree inside a writable one (Landlock grants around it)', () => {
    expect(writableByPolicy(policy, '/tmp/w')).toBe(false);
    expect(writableByPolicy(policy, '/tmp/w/other')).toBe(true);
  });

  it('allows objects without a path (pipes, sockets), not the shared anonymous inode', () => {
    for (const link of ['pipe:[123]', 'socket:[4]']) {
      expect(writableByPolicy(policy, link)).toBe(true);
    }
    expect(writableByPolicy(policy, 'anon_inode:[eventfd]')).toBe(false);
  });

  it('compares non-UTF-8 links (latin1 bytes) with UTF-8 policy paths', () => {
    const utf8 = { fsWrite: ['/tmp/é'], fsDeny: [] };
    expect(writableByPolicy(utf8, Buffer.from('/tmp/é/f').toString('latin1'))).toBe(true);
  });

  it('refuses the real files of a copy-on-write workdir, even inside a writable tree', () => {
    const withWorkdir = { ...policy, workdir: '/srv/data/wd' };
    expect(writableByPolicy(withWorkdir, '/srv/data/wd/f')).toBe(false);
    expect(writableByPolicy(withWorkdir, '/srv/data/wd')).toBe(false);
    expect(writableByPolicy(withWorkdir, '/srv/data/wdx')).toBe(true);
    expect(writableByPolicy({ ...policy, workdir: null }, '/srv/data/wd/f')).toBe(true);
  });

  it('a writable root holds everything', () => {
    expect(writableByPolicy({ fsWrite: ['/'], fsDeny: [] }, '/etc/passwd')).toBe(true);
  });
});
