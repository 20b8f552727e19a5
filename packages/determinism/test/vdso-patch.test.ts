// Patching a live process's vDSO, without a sandbox: a child waits on stdin,
// the test patches it through /proc/<pid>/mem, then the child reads its clocks.

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostArch } from '@sandlock/sys';
import { afterEach, describe, expect, it } from 'vitest';
import { parseVdsoSymbols, vdsoFileEnd, vdsoImageSize } from '../src/vdso-elf.js';
import { readVdsoImage } from '../src/vdso-inspect.js';
import { patchVdso, patchVdsoImage, planVdsoPatch, vdsoPatched } from '../src/vdso-patch.js';

const PYTHON = '/usr/bin/python3';
const arch = hostArch();
const DAY = 86_400n;

/** This process's own vDSO image, read through /proc/self/mem. */
function ownVdso(): Buffer {
  const image = readVdsoImage(process.pid);
  if (image === null) throw new Error('no vDSO');
  return image;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

/** Starts python3 running `script` after a line on stdin; resolves its stdout. */
function held(script: string) {
  const child = spawn(PYTHON, ['-c', `import sys\nsys.stdin.readline()\n${script}`], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const done = new Promise<string>((resolve, reject) =>
    child.on('close', (code, signal) =>
      code === 0 ? resolve(out) : reject(new Error(`python3: ${code ?? signal}: ${err}`)),
    ),
  );
  // Wait until the interpreter is up (its vDSO is mapped from the start; this only avoids
  // patching during the exec).
  return { child, done, go: () => child.stdin!.write('\n') };
}

async function settled(pid: number): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const wchan = readFileSync(`/proc/${pid}/wchan`, 'utf8');
    if (stat.includes('(python3)') && wchan !== '0' && wchan !== '') return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('vDSO symbols', () => {
  it('parses the time functions of this machine', () => {
    const symbols = parseVdsoSymbols(ownVdso());
    const names =
      arch === 'x86_64'
        ? ['__vdso_clock_gettime', '__vdso_gettimeofday', '__vdso_time']
        : ['__kernel_clock_gettime', '__kernel_gettimeofday'];
    for (const name of names) {
      expect(symbols.get(name)?.size ?? 0, name).toBeGreaterThan(0);
    }
    if (arch === 'x86_64') {
      expect(symbols.get('clock_gettime')).toEqual(symbols.get('__vdso_clock_gettime'));
    }
  });

  it('finds where the ELF file ends (the section headers, here)', () => {
    const image = ownVdso();
    const end = vdsoFileEnd(image);
    expect(end).toBe(vdsoImageSize(image));
    // A section reaching further moves the end; past the buffer, the end is the buffer's.
    const moved = Buffer.from(image);
    const shoff = Number(moved.readBigUInt64LE(0x28));
    const text = [...Array(moved.readUInt16LE(0x3c)).keys()]
      .map((i) => shoff + i * 64)
      .find((at) => moved.readUInt32LE(at + 4) === 1)!; // a PROGBITS section
    moved.writeBigUInt64LE(BigInt(end + 100) - moved.readBigUInt64LE(text + 0x18), text + 0x20);
    const padded = Buffer.concat([moved, Buffer.alloc(4096)]);
    expect(vdsoFileEnd(padded)).toBe(end + 100);
    expect(vdsoFileEnd(moved)).toBe(moved.length);
  });

  it('plans one syscall per function without the detour, aliases once, and refuses what does not fit', () => {
    const symbols = parseVdsoSymbols(ownVdso());
    const writes = planVdsoPatch(symbols, { arch, offsetSeconds: 5n, getrandom: false });
    expect(writes.map((w) => w.kind).sort()).toEqual(
      arch === 'x86_64'
        ? ['clockGettimeSyscall', 'gettimeofdaySyscall', 'timeSyscall']
        : ['clockGettimeSyscall', 'gettimeofdaySyscall'],
    );
    const tiny = new Map([...symbols].map(([name, s]) => [name, { ...s, size: 4 }]));
    expect(() => planVdsoPatch(tiny, { arch, offsetSeconds: 5n, getrandom: false })).toThrow(
      /trampoline needs/,
    );
    expect(planVdsoPatch(symbols, { arch, offsetSeconds: null, getrandom: false })).toEqual([]);
  });
});

describe.runIf(arch === 'x86_64')('patching a process', () => {
  it('shifts realtime clocks through the detour, leaves monotonic ones, and is idempotent', async () => {
    const { child, done, go } = held(
      [
        'import time, datetime, ctypes',
        'libc = ctypes.CDLL(None)',
        'print(int(time.time()))',
        'print(int(time.clock_gettime(5)))',
        'print(int(time.clock_gettime(11)))',
        'print(libc.time(None))',
        'tv = (ctypes.c_long * 2)()',
        'assert libc.gettimeofday(tv, None) == 0',
        'print(tv[0])',
        'print(time.monotonic())',
      ].join('\n'),
    );
    await settled(child.pid!);
    const options = { arch, offsetSeconds: -10n * DAY, getrandom: false } as const;
    expect(vdsoPatched(child.pid!, options)).toBe(false);
    const patched = patchVdsoImage(child.pid!, options);
    expect(patched?.outcome).toBe('patched');
    expect(vdsoPatched(child.pid!, options)).toBe(true);
    expect(patchVdso(child.pid!, options)).toBe('unchanged');
    const before = process.hrtime.bigint();
    const wallBefore = Date.now();
    go();
    if (!patched!.detoured) {
      // Without the detour the vDSO makes the syscalls, which only a supervisor shifts.
      console.warn('vdso-patch: clock_gettime cannot be detoured here; shifts not checked');
      await done;
      return;
    }
    const [realtime, coarse, tai, time, timeofday, monotonic] = (await done)
      .trim()
      .split('\n')
      .map(Number);
    const after = process.hrtime.bigint();
    // Ten days back, read between go() and the end: bounds that hold however long a loaded
    // machine made that (a wrong shift is off by days; whole seconds, and the coarse clock
    // up to a tick behind).
    const earliest = Math.floor(wallBefore / 1000) - 10 * 86_400 - 1;
    const latest = Math.ceil(Date.now() / 1000) - 10 * 86_400;
    for (const value of [realtime, coarse, time, timeofday]) {
      expect(value).toBeGreaterThanOrEqual(earliest);
      expect(value).toBeLessThanOrEqual(latest);
    }
    // CLOCK_TAI is realtime plus the kernel's TAI offset (0 unless NTP set it, 37 s today).
    expect(tai).toBeGreaterThanOrEqual(earliest);
    expect(tai).toBeLessThanOrEqual(latest + 40);
    // Not shifted: read between before and after.
    expect(monotonic).toBeGreaterThanOrEqual(Number(before) / 1e9);
    expect(monotonic).toBeLessThanOrEqual(Number(after) / 1e9);
  });

  it('the getrandom trampoline answers -ENOSYS', async () => {
    const symbols = parseVdsoSymbols(ownVdso());
    if (!symbols.has('__vdso_getrandom')) {
      console.warn('vdso-patch: this kernel has no __vdso_getrandom (Linux 6.11+); skipped');
      return;
    }
    const offset = symbols.get('__vdso_getrandom')!.offset;
    const second = spawn(
      PYTHON,
      [
        '-c',
        [
          'import sys, ctypes, os',
          'sys.stdin.readline()',
          'getauxval = ctypes.CDLL(None).getauxval',
          'getauxval.restype = ctypes.c_ulong',
          'getauxval.argtypes = [ctypes.c_ulong]',
          'proto = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_void_p, ctypes.c_size_t)',
          `f = proto(getauxval(33) + ${offset})`,
          'print(f(None, 0, 0, None, 2**64 - 1))',
        ].join('\n'),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    children.push(second);
    let out = '';
    second.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const closed = new Promise((resolve) => second.on('close', resolve));
    await settled(second.pid!);
    expect(patchVdso(second.pid!, { arch, offsetSeconds: null, getrandom: true })).toBe('patched');
    second.stdin!.write('\n');
    await closed;
    expect(out.trim()).toBe('-38');
  });
});
