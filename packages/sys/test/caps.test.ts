import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  callAsCaller,
  setCallerIds,
  setThreadCapabilities,
  threadCapabilities,
} from '../src/index.js';

/** This thread's effective set as /proc says it (the main thread here). */
function procEffective(): bigint {
  const status = readFileSync('/proc/thread-self/status', 'latin1');
  return BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '0'}`);
}

describe('threadCapabilities and setThreadCapabilities', () => {
  it('read the sets /proc shows, lower the effective one and put it back', () => {
    const own = threadCapabilities();
    expect(own.effective).toBe(procEffective());
    expect(own.effective & ~own.permitted).toBe(0n);
    if (own.effective === 0n) console.warn('caps: no capabilities here: lowering is not exercised');
    const lowered = own.effective & ~(1n << 21n); // without CAP_SYS_ADMIN
    try {
      expect(setThreadCapabilities({ ...own, effective: lowered })).toBe(0);
      expect(procEffective()).toBe(lowered);
      expect(threadCapabilities().permitted).toBe(own.permitted);
    } finally {
      expect(setThreadCapabilities(own)).toBe(0);
    }
    expect(threadCapabilities()).toEqual(own);
  });
});

describe('callAsCaller', () => {
  it('runs the call with the effective set cut, returns its value and puts the set back', () => {
    const before = procEffective();
    if (before === 0n) {
      console.warn('skipped: this thread has no effective capabilities to cut');
      return;
    }
    expect(callAsCaller(0n, () => procEffective())).toEqual({ value: 0n });
    expect(procEffective()).toBe(before);
  });

  it('throws what the call throws, after putting the set back', () => {
    const before = procEffective();
    expect(() =>
      callAsCaller(0n, () => {
        throw new RangeError('inside');
      }),
    ).toThrow('inside');
    expect(procEffective()).toBe(before);
  });
});

/** The Uid, Gid and Groups lines of this thread's status. */
function procIds(): string[] {
  return readFileSync('/proc/thread-self/status', 'latin1')
    .split('\n')
    .filter((line) => /^(Uid|Gid|Groups):/.test(line));
}

describe('callAsCaller with the ids of a sandbox of another user', () => {
  const asRoot = process.getuid?.() === 0;
  if (!asRoot) console.warn('caps: not root: switching ids is not exercised');

  it.skipIf(!asRoot)(
    'takes its fsuid, fsgid and groups for the call, then puts this thread’s back',
    () => {
      const before = procIds();
      const own = threadCapabilities();
      const seen = callAsCaller(0n, () => procIds(), {
        fsuid: 65534,
        fsgid: 65533,
        groups: [65532],
      });
      expect(seen?.value).toEqual([
        expect.stringMatching(/^Uid:\s+0\s+0\s+0\s+65534$/),
        expect.stringMatching(/^Gid:\s+0\s+0\s+0\s+65533$/),
        expect.stringMatching(/^Groups:\s+65532\s*$/),
      ]);
      expect(procIds()).toEqual(before);
      expect(threadCapabilities()).toEqual(own);
      // The ids set for the notification being handled, taken when none is given.
      setCallerIds({ fsuid: 65534, fsgid: 65534, groups: [] });
      try {
        expect(callAsCaller(0n, () => procIds()[0])?.value).toMatch(/65534$/);
      } finally {
        setCallerIds(undefined);
      }
      expect(procIds()).toEqual(before);
    },
  );
});
