import { readFileSync } from 'node:fs';
import { Supervisor } from '@sandlock/dispatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionPolicy } from '../../../tools/test-support/supervised.js';
import {
  decayLoad,
  decodeMountPath,
  filterMountTable,
  hostFileOf,
  loadavgText,
  PROC_HOST_MODULE,
  PROC_HOST_SYSCALLS,
  PROC_PIDS_MODULE,
  mountPointVisible as visibleIn,
  ZERO_LOAD,
} from '../src/index.js';
import { output, PYTHON, SYSTEM_READ } from './helpers.js';

/** mountPointVisible over these path fields, the others empty. */
const mountPointVisible = (
  fields: { fsRead?: string[]; fsWrite?: string[]; fsDeny?: string[] },
  point: string,
) => visibleIn({ fsRead: [], fsWrite: [], fsDeny: [], ...fields }, point);

const policy = {
  fsRead: ['/usr', '/etc', '/proc', '/home/me/project'],
  fsWrite: ['/tmp/work'],
  fsDeny: [],
};
const visible = (point: string) => mountPointVisible(policy, point);

describe('hostFileOf', () => {
  it('names /proc/loadavg and the mount tables of a pid or a thread', () => {
    expect(hostFileOf('/proc/loadavg')).toEqual({ kind: 'loadavg' });
    expect(hostFileOf('/proc/12/mounts')).toEqual({ kind: 'mounts', pid: 12, relative: 'mounts' });
    expect(hostFileOf('/proc/12/task/13/mountinfo')).toEqual({
      kind: 'mountinfo',
      pid: 12,
      relative: 'task/13/mountinfo',
    });
    expect(hostFileOf('/proc/12/mountstats')?.kind).toBe('mountstats');
    for (const other of ['/proc/mounts', '/proc/self/mounts', '/proc/12/mounts/x', '/proc/12/fd']) {
      expect(hostFileOf(other)).toBeNull();
    }
  });
});

describe('mount points', () => {
  it('decodes the kernel escapes', () => {
    expect(decodeMountPath('/mnt/a\\040b\\011c\\012d\\134e')).toBe('/mnt/a b\tc\nd\\e');
    // Bytes as the kernel writes them, one character per byte, and so they stay.
    const utf8 = Buffer.from('/mnt/é', 'utf8').toString('latin1');
    expect(decodeMountPath(utf8)).toBe(utf8);
    expect(decodeMountPath('/mnt/\\377x')).toBe('/mnt/\xffx');
  });

  it('compares them as bytes with the policy, whose paths are text', () => {
    const accented = { fsRead: ['/mnt/é'] };
    expect(mountPointVisible(accented, Buffer.from('/mnt/é').toString('latin1'))).toBe(true);
    expect(mountPointVisible(accented, Buffer.from('/mnt').toString('latin1'))).toBe(true);
    // A name that is not UTF-8 is not the replacement character's name.
    const replaced = { fsRead: ['/mnt/\ufffd'] };
    expect(mountPointVisible(replaced, '/mnt/\xff')).toBe(false);
    expect(mountPointVisible(replaced, Buffer.from('/mnt/\ufffd').toString('latin1'))).toBe(true);
  });

  it('shows what the policy reads, and the ancestors of what it grants', () => {
    for (const point of ['/', '/usr', '/usr/local', '/proc', '/home', '/home/me', '/tmp']) {
      expect(visible(point), point).toBe(true);
    }
    for (const point of ['/mnt/secret', '/home/x', '/home/me/other', '/tmp/other', '/sys']) {
      expect(visible(point), point).toBe(false);
    }
    // A denied mount point, and a grant that is denied, show nothing.
    const denying = { fsRead: ['/', '/mnt/box'], fsDeny: ['/mnt'] };
    expect(mountPointVisible(denying, '/mnt')).toBe(false);
    expect(mountPointVisible(denying, '/mnt/box')).toBe(false);
    expect(mountPointVisible(denying, '/')).toBe(true);
    expect(mountPointVisible({ fsRead: ['/proc'] }, 'none')).toBe(false);
  });
});

describe('filterMountTable', () => {
  it('mounts: the second field', () => {
    const text = [
      '/dev/vda / ext4 rw,relatime 0 0',
      'tmpfs /mnt/secret tmpfs rw 0 0',
      'tmpfs /tmp/work/a\\040dir tmpfs rw 0 0',
      'tmpfs /home/x tmpfs rw 0 0',
      'proc /proc proc rw 0 0',
      '',
    ].join('\n');
    expect(filterMountTable('mounts', text, visible)).toBe(
      '/dev/vda / ext4 rw,relatime 0 0\ntmpfs /tmp/work/a\\040dir tmpfs rw 0 0\nproc /proc proc rw 0 0\n',
    );
  });

  it('mounts: an escaped mount point is compared decoded', () => {
    const spaced = { fsRead: ['/mnt/a b'] };
    const text = 'x /mnt/a\\040b t rw 0 0\ny /mnt/a t rw 0 0\nz /mnt/a\\134b t rw 0 0\n';
    expect(filterMountTable('mounts', text, (p) => mountPointVisible(spaced, p))).toBe(
      'x /mnt/a\\040b t rw 0 0\n',
    );
    expect(filterMountTable('mounts', text, (p) => p === '/mnt/a\\b')).toBe(
      'z /mnt/a\\134b t rw 0 0\n',
    );
  });

  it('mountinfo: the fifth field, lines byte-identical and in order', () => {
    const text = [
      '27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      '43 27 0:40 / /mnt/secret rw,relatime - tmpfs none rw',
      '44 27 0:41 /sub /usr/lib\\011x rw - tmpfs none rw',
      '22 27 0:21 / /proc rw,relatime - proc proc rw',
    ].join('\n'); // no final newline: the last line is kept as it is
    expect(filterMountTable('mountinfo', text, visible)).toBe(
      '27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n44 27 0:41 /sub /usr/lib\\011x rw - tmpfs none rw\n22 27 0:21 / /proc rw,relatime - proc proc rw',
    );
  });

  it('mountstats: device lines, their statistics lines go with them', () => {
    const text = [
      'device /dev/vda mounted on / with fstype ext4',
      'device server:/export mounted on /mnt/secret with fstype nfs4 statvers=1.1',
      '\topts:\trw,vers=4.2',
      '\tage:\t12',
      '',
      'no device mounted on /usr/share with fstype tmpfs',
      'device server:/x mounted on /tmp/work with fstype nfs statvers=1.1',
      '\topts:\trw',
      '',
      'device sysfs mounted on /sys with fstype sysfs',
      // Not the kernel's form: dropped, with what is indented after it.
      'something mounted on /usr with fstype tmpfs',
      '\topts:\tsecret',
      'no device mounted on /mnt/secret with fstype tmpfs',
      '',
    ].join('\n');
    expect(filterMountTable('mountstats', text, visible)).toBe(
      [
        'device /dev/vda mounted on / with fstype ext4',
        'no device mounted on /usr/share with fstype tmpfs',
        'device server:/x mounted on /tmp/work with fstype nfs statvers=1.1',
        '\topts:\trw',
        '',
        '',
      ].join('\n'),
    );
  });

  it('drops lines without a mount point', () => {
    expect(filterMountTable('mounts', 'garbage\n/dev/vda / ext4 rw 0 0\n', () => true)).toBe(
      '/dev/vda / ext4 rw 0 0\n',
    );
    expect(filterMountTable('mountinfo', '', () => true)).toBe('');
  });
});

describe('loadavg', () => {
  it('is printed as the kernel prints it', () => {
    expect(loadavgText(ZERO_LOAD, 0, 0, 0)).toBe('0.00 0.00 0.00 0/0 0\n');
    // The reader counts as running; running never exceeds the total.
    expect(loadavgText(ZERO_LOAD, 0, 3, 41)).toBe('0.00 0.00 0.00 1/3 41\n');
    expect(loadavgText(ZERO_LOAD, 5, 3, 41)).toBe('0.00 0.00 0.00 3/3 41\n');
    expect(loadavgText({ a1: 1.234, a5: 0.995, a15: 12.5 }, 2, 4, 7)).toBe(
      '1.23 1.00 12.50 2/4 7\n',
    );
    expect(loadavgText({ a1: 0.004, a5: 0.006, a15: 0.5 }, 1, 1, 7)).toBe('0.00 0.01 0.50 1/1 7\n');
  });

  it('decays towards the active count as the kernel does', () => {
    const minute = decayLoad(ZERO_LOAD, 2, 60_000);
    expect(minute.a1).toBeCloseTo(2 * (1 - Math.exp(-1)), 12);
    expect(minute.a5).toBeCloseTo(2 * (1 - Math.exp(-1 / 5)), 12);
    expect(minute.a15).toBeCloseTo(2 * (1 - Math.exp(-1 / 15)), 12);
    // In steps or at once: the same (for a constant count).
    let stepped = ZERO_LOAD;
    for (let i = 0; i < 12; i++) stepped = decayLoad(stepped, 2, 5000);
    expect(stepped.a1).toBeCloseTo(minute.a1, 12);
    expect(stepped.a15).toBeCloseTo(minute.a15, 12);
    // Idle: back towards 0; no time: unchanged.
    const idle = decayLoad({ a1: 3, a5: 3, a15: 3 }, 0, 300_000);
    expect(idle.a1).toBeCloseTo(3 * Math.exp(-5), 12);
    expect(idle.a5).toBeCloseTo(3 * Math.exp(-1), 12);
    expect(decayLoad(minute, 7, 0)).toEqual(minute);
  });
});

describe('the proc-host module, supervised', () => {
  let supervisor: Supervisor;
  beforeAll(async () => {
    supervisor = await Supervisor.start({
      modules: [{ module: PROC_PIDS_MODULE }, { module: PROC_HOST_MODULE }],
    });
  });
  afterAll(() => supervisor?.close());
  const fsRead = [...SYSTEM_READ, '/proc', '/dev/null'];

  it('is on exactly when /proc is readable', () => {
    expect(PROC_HOST_SYSCALLS).toContain('openat');
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({ fsRead: ['/usr'] }) })).toEqual(
      [],
    );
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({ fsRead }) })).toEqual(
      expect.arrayContaining([...PROC_HOST_SYSCALLS]),
    );
  });

  it('serves the sandbox’s load and its visible mounts', async () => {
    const script = `
import os
print(os.getpid())
print(open('/proc/loadavg').read().strip())
points = [line.split()[4] for line in open('/proc/self/mountinfo')]
print(' '.join(points))
print(' '.join(line.split()[1] for line in open('/proc/mounts')))
`;
    const out = await output(supervisor, [PYTHON, '-c', script], {
      policy: { fsRead, fsDeny: [] },
      fsRead,
    });
    const [pid, load, mountinfo, mounts] = out.trim().split('\n');
    const [a1, a5, a15, tasks, last] = load!.split(' ');
    for (const average of [a1, a5, a15]) expect(average).toMatch(/^\d+\.\d\d$/);
    expect(tasks).toBe('1/1');
    expect(last).toBe(pid);
    const shown = mountinfo!.split(' ');
    expect(shown).toContain('/');
    expect(shown).toContain('/proc');
    expect(mounts!.split(' ')).toEqual(shown);
    for (const point of shown) expect(mountPointVisible({ fsRead }, point), point).toBe(true);
    // The host's other mounts (/sys, /run… where there are) are left out.
    const hidden = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[4])
      .filter(
        (point): point is string => point !== undefined && !mountPointVisible({ fsRead }, point),
      );
    for (const point of hidden) expect(shown).not.toContain(point);
  });
});
