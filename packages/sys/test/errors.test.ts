import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ERRNO, errnoName, errnoNumber, openPath, SysError, syscall } from '../src/index.js';

describe('SysError', () => {
  it('carries the syscall, errno number and code', () => {
    const error = new SysError('landlock_restrict_self', 1);
    expect(error.syscall).toBe('landlock_restrict_self');
    expect(error.errno).toBe(1);
    expect(error.code).toBe('EPERM');
    expect(error.message).toBe('landlock_restrict_self failed: EPERM (Operation not permitted)');
  });

  it('is what a failing binding throws', () => {
    expect(() => openPath('/nonexistent/sandlock')).toThrow(
      'open /nonexistent/sandlock failed: ENOENT (No such file or directory)',
    );
    expect(() => syscall('close', 987_654)).toThrow(
      expect.objectContaining({ syscall: 'close', code: 'EBADF', errno: 9 }),
    );
  });

  it('names Linux errnos that Node does not list', () => {
    expect(errnoName(77)).toBe('EBADFD');
    expect(errnoName(4095)).toBe('E4095');
  });

  it('numbers errnos as the host C library does', () => {
    for (const [name, value] of Object.entries(constants.errno)) {
      expect([name, errnoNumber(name)]).toEqual([name, value]);
    }
    expect(errnoName(ERRNO.EOPNOTSUPP)).toBe('EOPNOTSUPP');
    expect(errnoNumber('ENOTSUP')).toBe(ERRNO.EOPNOTSUPP);
    expect(errnoNumber('constructor')).toBeUndefined();
  });
});
