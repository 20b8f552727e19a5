import { Supervisor } from '@sandlock/dispatch';
import { trySyscall } from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionPolicy } from '../../../tools/test-support/supervised.js';
import {
  loadavgText,
  MEMINFO_MODULE,
  PROC_HOST_MODULE,
  PROC_PIDS_MODULE,
  SI_LOAD_SHIFT,
  SYSINFO_MODULE,
  SYSINFO_OFFSETS,
  SYSINFO_SIZE,
  SYSINFO_SYSCALLS,
  sysinfoWith,
} from '../src/index.js';
import { output, PYTHON, SYSTEM_READ } from './helpers.js';

const MIB = 1024 * 1024;
const LIMIT = 256 * MIB;
const at = SYSINFO_OFFSETS;

/** The kernel's struct sysinfo of this machine, now. */
function realSysinfo(): Buffer {
  const buffer = Buffer.alloc(SYSINFO_SIZE);
  expect(trySyscall('sysinfo', buffer)).toBe(0);
  return buffer;
}

const u64 = (buffer: Buffer, offset: number) => buffer.readBigUInt64LE(offset);

/** A struct with every byte set, so a field left alone is told from one zeroed. */
function marked(): Buffer {
  const buffer = Buffer.alloc(SYSINFO_SIZE, 0xab);
  buffer.writeUInt32LE(4096, at.memUnit);
  return buffer;
}

describe('sysinfoWith', () => {
  it('has the kernel’s layout: 112 bytes, mem_unit at 104, procs at 80', () => {
    expect(SYSINFO_SIZE).toBe(112);
    const real = realSysinfo();
    // The real struct: uptime ≈ /proc/uptime, a power-of-two mem_unit, some threads.
    const uptime = Number(u64(real, at.uptime));
    expect(uptime).toBeGreaterThan(0);
    expect(real.readUInt32LE(at.memUnit)).toBeGreaterThanOrEqual(1);
    expect(real.readUInt16LE(at.procs)).toBeGreaterThan(0);
    expect(u64(real, at.totalram)).toBeGreaterThan(u64(real, at.freeram));
    expect(() => sysinfoWith(Buffer.alloc(64), {})).toThrow(RangeError);
  });

  it('changes nothing without changes', () => {
    const real = marked();
    expect(sysinfoWith(real, {})).toEqual(real);
    expect(sysinfoWith(real, { memory: null, tasks: null })).toEqual(real);
  });

  it('writes the limit in bytes, mem_unit 1, no swap, shared, buffers or high memory', () => {
    const real = marked();
    const made = sysinfoWith(real, { memory: { limit: LIMIT, used: 10 * MIB } });
    expect(u64(made, at.totalram)).toBe(BigInt(LIMIT));
    expect(u64(made, at.freeram)).toBe(BigInt(LIMIT - 10 * MIB));
    for (const field of [
      at.sharedram,
      at.bufferram,
      at.totalswap,
      at.freeswap,
      at.totalhigh,
      at.freehigh,
    ]) {
      expect(u64(made, field)).toBe(0n);
    }
    expect(made.readUInt32LE(at.memUnit)).toBe(1);
    // uptime, loads, procs, pad and the tail stay.
    expect(made.subarray(0, at.totalram)).toEqual(real.subarray(0, at.totalram));
    expect(made.subarray(at.procs, at.totalhigh)).toEqual(real.subarray(at.procs, at.totalhigh));
    expect(made.subarray(at.memUnit + 4)).toEqual(real.subarray(at.memUnit + 4));
    // More used than the limit: nothing free.
    const over = sysinfoWith(real, { memory: { limit: 4 * MIB, used: 8 * MIB } });
    expect(u64(over, at.freeram)).toBe(0n);
    expect(u64(over, at.totalram)).toBe(BigInt(4 * MIB));
    // A limit beyond 4 GiB fits (unsigned long).
    const big = sysinfoWith(real, { memory: { limit: 64 * 1024 * MIB, used: 0 } });
    expect(u64(big, at.totalram)).toBe(BigInt(64 * 1024 * MIB));
  });

  it('writes the loads in SI_LOAD_SHIFT fixed point, as avenrun shifted, and the threads', () => {
    const real = marked();
    const load = { a1: 1.5, a5: 0.25, a15: 0.001 };
    const made = sysinfoWith(real, { tasks: { load, threads: 7 } });
    expect(SI_LOAD_SHIFT).toBe(16);
    // avenrun is 11-bit: round(a * 2048), then << 5.
    expect(u64(made, at.loads)).toBe(BigInt(1.5 * 65536));
    expect(u64(made, at.loads + 8)).toBe(BigInt(0.25 * 65536));
    expect(u64(made, at.loads + 16)).toBe(BigInt(Math.round(0.001 * 2048) << 5));
    expect(made.readUInt16LE(at.procs)).toBe(7);
    // pad, memory and uptime stay.
    expect(made.subarray(at.procs + 2)).toEqual(real.subarray(at.procs + 2));
    expect(made.subarray(0, at.loads)).toEqual(real.subarray(0, at.loads));
    expect(made.subarray(at.totalram, at.procs)).toEqual(real.subarray(at.totalram, at.procs));
    // What glibc's getloadavg() computes (loads / 65536) is what /proc/loadavg prints.
    const averages = [0, 1, 2].map((i) => Number(u64(made, at.loads + 8 * i)) / 65536);
    expect(averages.map((a) => a.toFixed(2)).join(' ')).toBe(
      loadavgText(load, 1, 1, 1).split(' ').slice(0, 3).join(' '),
    );
    // Negative averages do not happen; they would be 0.
    const zero = sysinfoWith(real, { tasks: { load: { a1: -1, a5: 0, a15: 0 }, threads: 0 } });
    expect(u64(zero, at.loads)).toBe(0n);
  });

  it('clamps procs to 65535 (a __u16)', () => {
    const load = { a1: 0, a5: 0, a15: 0 };
    expect(sysinfoWith(marked(), { tasks: { load, threads: 70_000 } }).readUInt16LE(at.procs)).toBe(
      65535,
    );
    expect(sysinfoWith(marked(), { tasks: { load, threads: 65535 } }).readUInt16LE(at.procs)).toBe(
      65535,
    );
  });
});

/** ctypes' struct sysinfo: prints totalram*mem_unit, freeram*mem_unit, mem_unit, procs, loads. */
const CTYPES_SYSINFO = `
import ctypes, os
L = ctypes.c_ulong
class S(ctypes.Structure):
    _fields_ = [('uptime', ctypes.c_long), ('loads', L * 3), ('totalram', L), ('freeram', L),
                ('sharedram', L), ('bufferram', L), ('totalswap', L), ('freeswap', L),
                ('procs', ctypes.c_ushort), ('pad', ctypes.c_ushort), ('totalhigh', L),
                ('freehigh', L), ('mem_unit', ctypes.c_uint), ('_f', ctypes.c_char * 4)]
assert ctypes.sizeof(S) == ${SYSINFO_SIZE}
libc = ctypes.CDLL(None, use_errno=True)
s = S()
assert libc.sysinfo(ctypes.byref(s)) == 0
print(s.totalram * s.mem_unit, s.freeram * s.mem_unit, s.mem_unit, s.totalswap, s.procs,
      ' '.join('%.2f' % (x / 65536) for x in s.loads))
print(os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE'))
print(libc.sysinfo(ctypes.c_void_p(8)), ctypes.get_errno())
`;

describe('the sysinfo module, supervised', () => {
  let supervisor: Supervisor;
  beforeAll(async () => {
    supervisor = await Supervisor.start({
      modules: [
        { module: PROC_PIDS_MODULE },
        { module: PROC_HOST_MODULE },
        { module: MEMINFO_MODULE },
        { module: SYSINFO_MODULE },
      ],
    });
  });
  afterAll(() => supervisor?.close());
  const fsRead = [...SYSTEM_READ, '/proc', '/dev/null'];

  it('is on with maxMemory or a readable /proc, off with neither', () => {
    expect(SYSINFO_SYSCALLS).toEqual(['sysinfo']);
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({}) })).toEqual([]);
    expect(
      supervisor.notifiedSyscalls({ policy: sessionPolicy({ maxMemory: null, fsRead: ['/usr'] }) }),
    ).not.toContain('sysinfo');
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({ maxMemory: LIMIT }) })).toContain(
      'sysinfo',
    );
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({ fsRead }) })).toContain('sysinfo');
  });

  it('maxMemory: the limit in bytes, the sandbox’s threads (without /proc too); a bad pointer is EFAULT', async () => {
    const out = await output(supervisor, [PYTHON, '-c', CTYPES_SYSINFO], {
      policy: { maxMemory: LIMIT },
    });
    const [first, pages, fault] = out.trim().split('\n');
    const [total, free, unit, swap, procs] = first!.split(' ').map(Number);
    expect(total).toBe(LIMIT);
    expect(free).toBeGreaterThan(0);
    expect(free).toBeLessThan(LIMIT); // Python itself uses some
    expect(unit).toBe(1);
    expect(swap).toBe(0);
    // Even where /proc is not readable: the sandbox's threads, not the host's.
    expect(procs).toBe(1);
    expect(Number(pages)).toBe(LIMIT);
    expect(fault).toBe('-1 14'); // EFAULT
  });

  it('a readable /proc: the sandbox’s threads and the averages /proc/loadavg shows', async () => {
    const script = `${CTYPES_SYSINFO}
print(open('/proc/loadavg').read().strip())
`;
    const out = await output(supervisor, [PYTHON, '-c', script], {
      policy: { fsRead, fsDeny: [] },
      fsRead,
    });
    const [first, , fault, loadavg] = out.trim().split('\n');
    const fields = first!.split(' ');
    const real = realSysinfo();
    // The memory is the host's (no limit): its mem_unit and size.
    expect(Number(fields[2])).toBe(real.readUInt32LE(at.memUnit));
    expect(BigInt(fields[0]!)).toBe(u64(real, at.totalram) * BigInt(real.readUInt32LE(at.memUnit)));
    expect(Number(fields[4])).toBe(1); // Python alone
    expect(fields.slice(5).join(' ')).toBe(loadavg!.split(' ').slice(0, 3).join(' '));
    expect(fault).toBe('-1 14');
  });
});
