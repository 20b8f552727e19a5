import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { setThreadCapabilities, threadCapabilities } from '../src/index.js';

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
