import { Supervisor } from '@sandlock/dispatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RANDOM_MODULE, RANDOM_SYSCALLS } from '../src/index.js';
import { output, PYTHON, run } from './helpers.js';

let supervisor: Supervisor;
beforeAll(async () => {
  supervisor = await Supervisor.start({ modules: [{ module: RANDOM_MODULE }] });
});
afterAll(() => supervisor?.close());

const seeded = (seed: bigint) => ({ policy: { randomSeed: seed } });
const py = (code: string) => [PYTHON, '-c', code];

describe('module', () => {
  it('is on only with randomSeed', () => {
    expect(supervisor.notifiedSyscalls({ policy: {} })).toEqual([]);
    expect(supervisor.notifiedSyscalls({ policy: { randomSeed: null } })).toEqual([]);
    expect(supervisor.notifiedSyscalls({ policy: { randomSeed: 0n } })).toEqual(
      [...RANDOM_SYSCALLS].sort(),
    );
  });
});

describe('getrandom', () => {
  const urandom16 = py('import os; print(os.urandom(16).hex())');

  it('same seed, same bytes; another seed, other bytes', async () => {
    const a = await output(supervisor, urandom16, seeded(42n));
    const b = await output(supervisor, urandom16, seeded(42n));
    const c = await output(supervisor, urandom16, seeded(43n));
    expect(a).toMatch(/^[0-9a-f]{32}\n$/);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });
});

describe('/dev/urandom', () => {
  it('head -c 4000000 | sha256sum is reproducible', async () => {
    const argv = ['/bin/sh', '-c', 'head -c 4000000 /dev/urandom | sha256sum'];
    const a = await output(supervisor, argv, seeded(7n));
    const b = await output(supervisor, argv, seeded(7n));
    const c = await output(supervisor, argv, seeded(8n));
    expect(a).toMatch(/^[0-9a-f]{64} {2}-\n$/);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });

  it('od /dev/random', async () => {
    const argv = ['/usr/bin/od', '-An', '-N16', '-tx1', '/dev/random'];
    const a = await output(supervisor, argv, seeded(7n));
    expect(await output(supervisor, argv, seeded(7n))).toBe(a);
    expect(await output(supervisor, argv, seeded(9n))).not.toBe(a);
  });
});
