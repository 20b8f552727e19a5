import { describe, expect, it } from 'vitest';
import { isSymlink } from '../src/index.js';

describe('isSymlink', () => {
  it('tells a symlink from anything else, and null for what cannot be looked up', () => {
    expect(isSymlink('/proc/self')).toBe(true);
    expect(isSymlink('/proc/self/')).toBe(false); // followed: the directory
    expect(isSymlink('/proc')).toBe(false);
    expect(isSymlink('/dev/null')).toBe(false);
    expect(isSymlink('/nonexistent/sandlock')).toBeNull();
    expect(isSymlink('/dev/null/x')).toBeNull(); // ENOTDIR
  });
});
