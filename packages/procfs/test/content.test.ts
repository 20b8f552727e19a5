import { PolicyError } from '@sandlock/policy';
import { describe, expect, it } from 'vitest';
import { sessionPolicy } from '../../../tools/test-support/supervised.js';
import {
  affinityReply,
  cpuinfoWith,
  cpuList,
  hostsWith,
  procStatWith,
  UTSNAME_SIZE,
  utsField,
  utsnameWith,
} from '../src/index.js';

function uts(...fields: string[]): Buffer {
  const buffer = Buffer.alloc(UTSNAME_SIZE);
  fields.forEach((field, i) => {
    buffer.write(field, i * 65);
  });
  return buffer;
}

describe('utsnameWith', () => {
  it('replaces nodename only, NUL-padded, cut at 64 bytes', () => {
    const real = uts('Linux', 'a-very-long-real-host-name', '6.18', '#1 SMP', 'x86_64', '(none)');
    const made = utsnameWith(real, 'box');
    expect([0, 1, 2, 3, 4, 5].map((i) => utsField(made, i))).toEqual([
      'Linux',
      'box',
      '6.18',
      '#1 SMP',
      'x86_64',
      '(none)',
    ]);
    expect(made.subarray(65 + 3, 130).every((byte) => byte === 0)).toBe(true);
    const long = utsnameWith(real, 'y'.repeat(100));
    expect(utsField(long, 1)).toBe('y'.repeat(64));
    expect(long[129]).toBe(0);
    expect(utsField(long, 2)).toBe('6.18');
    expect(() => utsnameWith(Buffer.alloc(10), 'x')).toThrow(RangeError);
  });
});

describe('policy fields', () => {
  it('reads hostname and numCpus, null when absent; an invalid one never reaches a module', () => {
    expect(sessionPolicy({ hostname: 'a' }).hostname).toBe('a');
    expect(sessionPolicy({ hostname: null }).hostname).toBeNull();
    expect(sessionPolicy().hostname).toBeNull();
    expect(sessionPolicy({ numCpus: 4 }).numCpus).toBe(4);
    expect(() => sessionPolicy({ numCpus: 0 })).toThrow(PolicyError);
    expect(() => sessionPolicy({ numCpus: 1.5 })).toThrow(PolicyError);
    expect(sessionPolicy({}).numCpus).toBeNull();
  });
});

describe('cpuList', () => {
  it('uses the kernel list format', () => {
    expect(cpuList(1)).toBe('0\n');
    expect(cpuList(4)).toBe('0-3\n');
  });
});

const CPUINFO = [
  'processor\t: 0\nmodel name\t: AMD EPYC\nphysical id\t: 0\nsiblings\t: 2\ncore id\t\t: 0\ncpu cores\t: 2\napicid\t\t: 0\ninitial apicid\t: 0\nflags\t\t: fpu',
  'processor\t: 1\nmodel name\t: AMD EPYC\nphysical id\t: 0\nsiblings\t: 2\ncore id\t\t: 1\ncpu cores\t: 2\napicid\t\t: 1\ninitial apicid\t: 1\nflags\t\t: fpu',
  '',
].join('\n\n');

describe('cpuinfoWith', () => {
  it('repeats the first block, renumbered', () => {
    const made = cpuinfoWith(CPUINFO, 3);
    const blocks = made.trimEnd().split('\n\n');
    expect(blocks).toHaveLength(3);
    expect(made.endsWith('\n\n')).toBe(true);
    blocks.forEach((block, i) => {
      expect(block).toMatch(new RegExp(`^processor\\t: ${i}$`, 'm'));
      expect(block).toMatch(new RegExp(`^core id\\t\\t: ${i}$`, 'm'));
      expect(block).toMatch(new RegExp(`^initial apicid\\t: ${i}$`, 'm'));
      expect(block).toMatch(/^siblings\t: 3$/m);
      expect(block).toMatch(/^cpu cores\t: 3$/m);
      expect(block).toMatch(/^model name\t: AMD EPYC$/m);
    });
    expect(cpuinfoWith(CPUINFO, 1).match(/^processor/gm)).toHaveLength(1);
  });

  it('keeps lines outside the processor blocks', () => {
    const s390 =
      'vendor_id : IBM/S390\n# processors : 2\n\nprocessor\t: 0\nfoo : 1\n\nprocessor\t: 1\nfoo : 1\n';
    const made = cpuinfoWith(s390, 3);
    expect(made.startsWith('vendor_id : IBM/S390\n')).toBe(true);
    expect(made.match(/^processor/gm)).toHaveLength(3);
  });

  it('falls back to bare blocks for an unknown layout', () => {
    expect(cpuinfoWith('nothing here\n', 2)).toBe('processor\t: 0\n\nprocessor\t: 1\n');
  });
});

describe('procStatWith', () => {
  const STAT = 'cpu  10 0 5 100\ncpu0 5 0 2 50\ncpu1 5 0 3 50\nintr 1 2\nctxt 99\n';
  it('cuts the per-CPU lines', () => {
    expect(procStatWith(STAT, 1)).toBe('cpu  10 0 5 100\ncpu0 5 0 2 50\nintr 1 2\nctxt 99\n');
  });
  it('repeats them, renumbered, for more CPUs than the host has', () => {
    expect(procStatWith(STAT, 3)).toBe(
      'cpu  10 0 5 100\ncpu0 5 0 2 50\ncpu1 5 0 3 50\ncpu2 5 0 2 50\nintr 1 2\nctxt 99\n',
    );
  });
});

describe('affinityReply', () => {
  it('follows the raw syscall', () => {
    // A kernel with a 32-byte mask and 2 possible CPUs (rounded to 64 bits).
    expect(affinityReply(3, 128n, 32, 64)).toEqual({
      mask: Buffer.from([7, ...Array(31).fill(0)]),
    });
    expect(affinityReply(3, 8n, 32, 64)).toEqual({ mask: Buffer.from([7, 0, 0, 0, 0, 0, 0, 0]) });
    expect(affinityReply(3, 12n, 32, 64)).toEqual({ errno: 'EINVAL' });
    expect(affinityReply(3, 0n, 32, 64)).toEqual({ errno: 'EINVAL' });
    // More virtual CPUs than the kernel's ids: the buffer must hold them all.
    expect(affinityReply(100, 8n, 8, 64)).toEqual({ errno: 'EINVAL' });
    const wide = affinityReply(100, 128n, 8, 64);
    expect('mask' in wide && wide.mask.length).toBe(16);
    expect('mask' in wide && wide.mask[12]).toBe(0x0f);
  });
});

describe('hostsWith', () => {
  it('replaces the real host name, keeps the rest, drops lines left without a name', () => {
    const real = [
      '127.0.0.1\tlocalhost',
      '# a comment naming vm',
      '127.0.1.1\tvm.example.org vm',
      '10.0.0.5 vm other  # trailing',
      '::1     localhost ip6-localhost',
      '',
    ].join('\n');
    expect(hostsWith(real, 'VM', 'box')).toBe(
      [
        '127.0.0.1\tlocalhost',
        '# a comment naming vm',
        '10.0.0.5\tother',
        '::1     localhost ip6-localhost',
        '127.0.1.1\tbox',
        '',
      ].join('\n'),
    );
    expect(hostsWith('', 'vm', 'box')).toBe('127.0.1.1\tbox\n');
    expect(hostsWith('127.0.0.1 localhost', 'vm', 'box')).toBe(
      '127.0.0.1 localhost\n127.0.1.1\tbox\n',
    );
  });

  it('gives pinned names their addresses only, with or without a host name', () => {
    const real = '127.0.0.1\tlocalhost\n10.0.0.7 Example.com www\n10.0.0.8 vm\n';
    const pinned = { 'example.com': ['192.0.2.1', '2001:db8::1'] };
    expect(hostsWith(real, 'vm', null, pinned)).toBe(
      [
        '127.0.0.1\tlocalhost',
        '10.0.0.7\twww',
        '10.0.0.8 vm',
        '192.0.2.1\texample.com',
        '2001:db8::1\texample.com',
        '',
      ].join('\n'),
    );
    expect(hostsWith(real, 'vm', 'box', pinned)).toBe(
      [
        '127.0.0.1\tlocalhost',
        '10.0.0.7\twww',
        '127.0.1.1\tbox',
        '192.0.2.1\texample.com',
        '2001:db8::1\texample.com',
        '',
      ].join('\n'),
    );
  });
});
