import { existsSync, readFileSync } from 'node:fs';
import { Supervisor } from '@sandlock/dispatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionPolicy } from '../../../tools/test-support/supervised.js';
import {
  HOSTNAME_MODULE,
  MEMINFO_MODULE,
  MEMINFO_SYSCALLS,
  meminfoWith,
  NUM_CPUS_MODULE,
  SYSINFO_MODULE,
  SYSINFO_SYSCALLS,
  statusMemory,
} from '../src/index.js';
import { output, PYTHON, SYSTEM_READ } from './helpers.js';

const NODE = process.execPath;
const FREE = '/usr/bin/free';
const MIB = 1024 * 1024;
const LIMIT = 256 * MIB;
const policy = { maxMemory: LIMIT };

/** The `Name: value` pairs of a meminfo text (values as printed: kB or counts). */
function fields(text: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([^:]+):\s+(\d+)/.exec(line);
    if (match) map.set(match[1]!, Number(match[2]));
  }
  return map;
}

describe('meminfoWith', () => {
  const real = readFileSync('/proc/meminfo', 'utf8');

  it('shows the limit and what is left of it, nothing larger, every real line kept', () => {
    const made = meminfoWith(real, LIMIT, 10 * MIB);
    const values = fields(made);
    expect([...values.keys()]).toEqual([...fields(real).keys()]);
    expect(values.get('MemTotal')).toBe(LIMIT / 1024);
    expect(values.get('MemFree')).toBe((LIMIT - 10 * MIB) / 1024);
    expect(values.get('MemAvailable')).toBe((LIMIT - 10 * MIB) / 1024);
    expect(values.get('AnonPages')).toBe((10 * MIB) / 1024);
    for (const name of ['Buffers', 'Cached', 'SwapCached', 'SwapTotal', 'SwapFree', 'Slab']) {
      if (values.has(name)) expect(values.get(name)).toBe(0);
    }
    for (const value of values.values()) expect(value).toBeLessThanOrEqual(LIMIT / 1024);
    // The kernel's layout: each value ends in the real value's column.
    expect(made.split('\n').map((line) => line.length)).toEqual(
      real.split('\n').map((line) => line.length),
    );
    expect(made.split('\n')[0]).toBe(`MemTotal:${' '.repeat(9)}${LIMIT / 1024} kB`);
  });

  it('clamps at 0 and at the limit, rounds to whole kB, adds missing lines', () => {
    const over = fields(meminfoWith(real, 4 * MIB, 8 * MIB));
    expect(over.get('MemFree')).toBe(0);
    expect(over.get('MemAvailable')).toBe(0);
    expect(over.get('AnonPages')).toBe(4096);
    expect(fields(meminfoWith(real, 1024 * 1000 + 500, 0)).get('MemTotal')).toBe(1000);
    expect(meminfoWith('Buffers:  5 kB\n', 2048, 0)).toBe(
      'MemTotal:              2 kB\nMemFree:               2 kB\nMemAvailable:          2 kB\nBuffers:  0 kB\n',
    );
  });

  it('statusMemory sums what the memory limit counts', () => {
    const status =
      'Name:\tx\nVmRSS:\t  900 kB\nRssAnon:\t  100 kB\nRssFile:\t  700 kB\nRssShmem:\t  20 kB\nVmPTE:\t  4 kB\nVmSwap:\t  3 kB\n';
    expect(statusMemory(status)).toBe(127 * 1024);
  });
});

let supervisor: Supervisor;
beforeAll(async () => {
  supervisor = await Supervisor.start({
    modules: [
      { module: HOSTNAME_MODULE },
      { module: NUM_CPUS_MODULE },
      { module: MEMINFO_MODULE },
      { module: SYSINFO_MODULE },
    ],
  });
});
afterAll(() => supervisor?.close());

describe('maxMemory', () => {
  it('is on only with a number', () => {
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({ maxMemory: null }) })).toEqual([]);
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy(policy) })).toEqual(
      [...MEMINFO_SYSCALLS, ...SYSINFO_SYSCALLS].sort(),
    );
  });

  it('free -b reports the limit', async (context) => {
    if (!existsSync(FREE)) {
      console.log(`skipped: no ${FREE} (procps) on this machine`);
      context.skip();
      return;
    }
    const text = await output(supervisor, [FREE, '-b'], { policy });
    const mem = text
      .split('\n')
      .find((line) => line.startsWith('Mem:'))!
      .split(/\s+/);
    const swap = text
      .split('\n')
      .find((line) => line.startsWith('Swap:'))!
      .split(/\s+/);
    const [total, used, free, shared, cache, available] = mem.slice(1).map(Number);
    expect(total).toBe(LIMIT);
    expect(used).toBeGreaterThan(0);
    expect(used! + free!).toBe(LIMIT);
    expect(free).toBe(available);
    expect([shared, cache]).toEqual([0, 0]);
    expect(swap.slice(1, 4).map(Number)).toEqual([0, 0, 0]);
  });

  it('Python reads the limit as MemTotal and its own use in MemFree', async () => {
    const script = `
def meminfo():
    with open('/proc/meminfo') as f:
        return {l.split(':')[0]: int(l.split()[1]) for l in f}
before = meminfo()
block = b'\\x01' * (64 << 20)
after = meminfo()
print(before['MemTotal'], before['MemFree'] == before['MemAvailable'], before['MemFree'] - after['MemFree'])
`;
    const [total, same, grown] = (await output(supervisor, [PYTHON, '-c', script], { policy }))
      .trim()
      .split(' ');
    expect(Number(total)).toBe(LIMIT / 1024);
    expect(same).toBe('True');
    // The 64 MiB block, as the sandbox's use (give or take the allocator's).
    expect(Number(grown)).toBeGreaterThanOrEqual(63 * 1024);
    expect(Number(grown)).toBeLessThan(80 * 1024);
  });

  it('Node os.totalmem() is the limit, os.freemem() what is left', async () => {
    const text = await output(
      supervisor,
      [NODE, '-e', 'const os = require("os"); console.log(os.totalmem(), os.freemem())'],
      { policy },
    );
    const [total, free] = text.trim().split(' ').map(Number);
    expect(total).toBe(LIMIT);
    expect(free).toBeGreaterThan(0);
    expect(free).toBeLessThan(LIMIT); // Node itself uses some
  });

  it('shows 0 free when the sandbox uses more than the limit', async () => {
    const text = await output(supervisor, ['/bin/cat', '/proc/meminfo'], {
      policy: { maxMemory: 64 * 1024 },
    });
    const values = fields(text);
    expect(values.get('MemTotal')).toBe(64);
    expect(values.get('MemFree')).toBe(0);
    expect(values.get('MemAvailable')).toBe(0);
    expect(values.get('AnonPages')).toBe(64);
  });

  it('serves /proc/self/../meminfo, a relative path, and without Landlock access to /proc', async () => {
    const script = `
import os
os.chdir('/proc')
print(open('/proc/self/../meminfo').readline().split()[1], open('meminfo').readline().split()[1])
`;
    expect(await output(supervisor, [PYTHON, '-c', script], { policy })).toBe(
      `${LIMIT / 1024} ${LIMIT / 1024}\n`,
    );
    const text = await output(supervisor, ['/bin/cat', '/proc/meminfo'], {
      policy,
      fsRead: SYSTEM_READ,
    });
    expect(fields(text).get('MemTotal')).toBe(LIMIT / 1024);
  });

  it('leaves other /proc files alone; sysinfo(2) agrees with /proc/meminfo', async () => {
    expect(await output(supervisor, ['/bin/cat', '/proc/version'], { policy })).toBe(
      readFileSync('/proc/version', 'utf8'),
    );
    const cpuinfo = await output(supervisor, ['/bin/cat', '/proc/cpuinfo'], { policy });
    expect(cpuinfo.match(/^processor\s*:/gm)).toHaveLength(
      readFileSync('/proc/cpuinfo', 'utf8').match(/^processor\s*:/gm)!.length,
    );
    // glibc's sysconf(_SC_PHYS_PAGES) and _SC_AVPHYS_PAGES ask sysinfo(2)
    // (the sysinfo module): the limit, and what is left of it.
    const script = `
import os
page = os.sysconf('SC_PAGE_SIZE')
print(os.sysconf('SC_PHYS_PAGES') * page, os.sysconf('SC_AVPHYS_PAGES') * page)
print([int(l.split()[1]) for l in open('/proc/meminfo') if l.startswith('MemFree:')][0])
`;
    const [sizes, memFree] = (await output(supervisor, [PYTHON, '-c', script], { policy }))
      .trim()
      .split('\n');
    const [total, available] = sizes!.split(' ').map(Number);
    expect(total).toBe(LIMIT);
    expect(available).toBeGreaterThan(0);
    expect(available).toBeLessThan(LIMIT);
    // The same estimate of the use as MemFree (read just after: within 4 MiB).
    expect(Math.abs(available! / 1024 - Number(memFree))).toBeLessThan(4096);
  });

  it('is off without the policy field, and works with the other modules', async () => {
    const real = fields(readFileSync('/proc/meminfo', 'utf8')).get('MemTotal');
    const text = await output(supervisor, ['/bin/cat', '/proc/meminfo'], { policy: {} });
    expect(fields(text).get('MemTotal')).toBe(real);
    const both = await output(
      supervisor,
      [
        NODE,
        '-e',
        'const os = require("os"); console.log(os.totalmem(), os.cpus().length, os.hostname())',
      ],
      { policy: { maxMemory: LIMIT, numCpus: 1, hostname: 'box' } },
    );
    expect(both).toBe(`${LIMIT} 1 box\n`);
  });
});
