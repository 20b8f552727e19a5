import { describe, expect, it } from 'vitest';
import { isAnswer } from '../src/answer.js';
import { answer, namedArgs } from '../src/index.js';

describe('answer', () => {
  it('builds plain answers', () => {
    expect(answer.continue()).toEqual({ kind: 'continue' });
    expect(answer.errno('EACCES')).toEqual({ kind: 'errno', errno: 13 });
    expect(answer.errno(2)).toEqual({ kind: 'errno', errno: 2 });
    expect(answer.value(5)).toEqual({ kind: 'value', value: 5n });
    expect(answer.kill('why')).toEqual({ kind: 'kill', reason: 'why' });
    expect(answer.defer({ a: 1 })).toEqual({ kind: 'defer', payload: { a: 1 } });
    expect(answer.inject(7)).toEqual({
      kind: 'inject',
      fd: 7,
      cloexec: false,
      targetFd: null,
      keep: false,
    });
  });

  it('turns raw results into answers', () => {
    expect(answer.fromResult(-111)).toEqual({ kind: 'errno', errno: 111 });
    expect(answer.fromResult(0)).toEqual({ kind: 'value', value: 0n });
    expect(answer.fromResult(-5000n)).toEqual({ kind: 'value', value: -5000n });
  });

  it('refuses bad errnos', () => {
    expect(() => answer.errno('ENOPE')).toThrow(/unknown errno name/);
    expect(() => answer.errno(0)).toThrow(RangeError);
    expect(() => answer.inject(-1)).toThrow(RangeError);
  });

  it('recognizes answers', () => {
    expect(isAnswer(answer.continue())).toBe(true);
    expect(isAnswer({ kind: 'nope' })).toBe(false);
    expect(isAnswer('continue')).toBe(false);
  });
});

describe('named arguments', () => {
  it('reads 32-bit arguments the way the kernel truncates them', () => {
    const atFdcwd = 0x00000000ffffff9cn;
    const named = namedArgs('openat', 'x86_64', [
      atFdcwd | 0xdead00000000n,
      0x1000n,
      0x80000n,
      0o644n,
      0n,
      0n,
    ]);
    expect(named).toEqual({ dirfd: -100, pathname: 0x1000n, flags: 0x80000, mode: 0o644 });
  });

  it('knows that clone orders tls and child_tid differently per architecture', () => {
    const args = [0x11n, 0x22n, 0x33n, 0x44n, 0x55n, 0n];
    expect(namedArgs('clone', 'x86_64', args)).toMatchObject({ child_tid: 0x44n, tls: 0x55n });
    expect(namedArgs('clone', 'aarch64', args)).toMatchObject({ tls: 0x44n, child_tid: 0x55n });
    expect(namedArgs('clone', 'aarch64', args)).toMatchObject({ flags: 0x11n, newsp: 0x22n });
  });

  it('has no names for syscalls outside the table', () => {
    expect(namedArgs('getuid', 'x86_64', [0n, 0n, 0n, 0n, 0n, 0n])).toBeUndefined();
  });
});
