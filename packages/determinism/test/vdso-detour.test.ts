// The x86_64 clock_gettime detour: the prologue decoder, the plan on this machine's vDSO,
// and the supervisor leaving the detoured code's own fallback syscall unshifted.

import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { hostArch } from '@sandlock/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../tools/test-support/index.js';
import { sessionPolicy } from '../../../tools/test-support/supervised.js';
import timeModule from '../src/time.js';
import {
  CLOCK_GETTIME_DETOUR,
  detourPlace,
  planClockGettimeDetour,
  prologueLength,
} from '../src/vdso-detour.js';
import { parseVdsoSymbols } from '../src/vdso-elf.js';
import { planVdsoPatch, vdsoBase, vdsoLayout } from '../src/vdso-patch.js';
import { TRAMPOLINE_SOURCES } from '../src/vdso-trampolines.js';

const x86 = hostArch() === 'x86_64';
const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

describe('prologueLength', () => {
  it('covers at least 5 bytes of known, position-independent instructions', () => {
    // push rbp; mov rbp,rsp; push r14; push rbx (Linux 6.18's __vdso_clock_gettime)
    expect(prologueLength(hex('55 4889e5 4156 53'))).toBe(6);
    expect(prologueLength(hex('f30f1efa 55 4889e5'))).toBe(5); // endbr64; push rbp
    expect(prologueLength(hex('4883ec18 53'))).toBe(5); // sub rsp,0x18; push rbx
    expect(prologueLength(hex('4881ec00010000'))).toBe(7); // sub rsp,0x100
    expect(prologueLength(hex('4989fe 4889f3'))).toBe(6); // mov r14,rdi; mov rbx,rsi
  });

  it('refuses anything that may depend on where it runs', () => {
    expect(prologueLength(hex('55 4c8d15e897ffff'))).toBeNull(); // push rbp; lea r10,[rip+…]
    expect(prologueLength(hex('813d3a95ffffffffff7f'))).toBeNull(); // cmp dword [rip+…], imm
    expect(prologueLength(hex('e800000000'))).toBeNull(); // call rel32
    expect(prologueLength(hex('488b07 55 55'))).toBeNull(); // mov rax,[rdi]: a memory operand
    expect(prologueLength(hex('89f8 55 55 55'))).toBeNull(); // mov eax,edi: no REX.W
    expect(prologueLength(hex('55 55'))).toBeNull(); // too short
  });
});

describe('detourPlace', () => {
  it('is 16-byte aligned after the ELF file, within its last page', () => {
    expect(detourPlace(0x1a20)).toEqual({ offset: 0x1a20, room: 0x5e0 });
    expect(detourPlace(0x1a21)).toEqual({ offset: 0x1a30, room: 0x5d0 });
    expect(detourPlace(0x2000)).toEqual({ offset: 0x2000, room: 0 });
  });
});

/** This process's vDSO up to the end of its last page. */
const ownLayout = () => vdsoLayout(process.pid)!;

describe.runIf(x86)('planning the detour on this machine', () => {
  const layout = ownLayout();
  const symbols = parseVdsoSymbols(layout.image);
  const entry = symbols.get('__vdso_clock_gettime')!;

  it('detours clock_gettime and still replaces gettimeofday and time', () => {
    const writes = planVdsoPatch(
      symbols,
      { arch: 'x86_64', offsetSeconds: 7n, getrandom: false },
      layout,
    );
    const detour = writes.filter((w) => w.kind === 'clockGettimeDetour');
    if (detour.length === 0) {
      console.warn(
        'vdso-detour: this kernel’s __vdso_clock_gettime cannot be detoured; the trampoline is used',
      );
      return;
    }
    const [block, jump] = detour;
    expect(block!.offset).toBe(detourPlace(layout.imageEnd).offset);
    expect(jump!.offset).toBe(entry.offset);
    expect(jump!.code[0]).toBe(0xe9);
    expect(jump!.code.readInt32LE(1)).toBe(block!.offset - (entry.offset + 5));
    const length = jump!.code.length;
    // The copied instructions, then the address behind them, then the offset.
    expect(
      block!.code.subarray(
        CLOCK_GETTIME_DETOUR.originalAt,
        CLOCK_GETTIME_DETOUR.originalAt + length,
      ),
    ).toEqual(layout.image.subarray(entry.offset, entry.offset + length));
    expect(block!.code.readBigUInt64LE(CLOCK_GETTIME_DETOUR.resumeAt)).toBe(
      layout.base + BigInt(entry.offset + length),
    );
    expect(block!.code.readBigInt64LE(CLOCK_GETTIME_DETOUR.shiftAt)).toBe(7n);
    expect(writes.map((w) => w.kind).sort()).toEqual([
      'clockGettimeDetour',
      'clockGettimeDetour',
      'gettimeofdayViaClock',
      'timeViaClock',
    ]);
    // gettimeofday and time call the detoured function; neither makes a time syscall.
    for (const kind of ['gettimeofdayViaClock', 'timeViaClock'] as const) {
      const write = writes.find((w) => w.kind === kind)!;
      const callAt = TRAMPOLINE_SOURCES.x86_64[kind]!.callAt!;
      expect(write.offset + callAt + 4 + write.code.readInt32LE(callAt)).toBe(entry.offset);
    }
    // Planned again on the detoured image: the same writes (idempotent).
    const patched = Buffer.from(layout.image);
    for (const write of writes) write.code.copy(patched, write.offset);
    const again = planVdsoPatch(
      symbols,
      { arch: 'x86_64', offsetSeconds: 7n, getrandom: false },
      { ...layout, image: patched },
    );
    expect(again).toEqual(writes);
  });

  it('detours one function only: a second clock_gettime elsewhere gets the trampoline', () => {
    const elsewhere = symbols.get('__vdso_clock_getres')!;
    const twice = new Map(symbols);
    twice.set('clock_gettime', elsewhere);
    const writes = planVdsoPatch(
      twice,
      { arch: 'x86_64', offsetSeconds: 7n, getrandom: false },
      layout,
    );
    if (!writes.some((w) => w.kind === 'clockGettimeDetour')) return; // not detourable here
    expect(writes.filter((w) => w.kind === 'clockGettimeDetour')).toHaveLength(2);
    expect(writes.find((w) => w.offset === elsewhere.offset)?.kind).toBe('clockGettimeSyscall');
  });

  it('gives time() the syscall when the call over the detour does not fit', () => {
    const small = new Map(symbols);
    for (const name of ['__vdso_time', 'time'])
      small.set(name, { ...symbols.get(name)!, size: 16 });
    const writes = planVdsoPatch(
      small,
      { arch: 'x86_64', offsetSeconds: 7n, getrandom: false },
      layout,
    );
    if (!writes.some((w) => w.kind === 'clockGettimeDetour')) return; // not detourable here
    expect(writes.find((w) => w.symbol === '__vdso_time')?.kind).toBe('timeSyscall');
  });

  it('falls back when the padding is taken or too small', () => {
    const busy = Buffer.from(layout.image);
    busy[detourPlace(layout.imageEnd).offset + 3] = 1;
    expect(planClockGettimeDetour(busy, layout.imageEnd, layout.base, entry, 0n)).toBeNull();
    const full = layout.image.subarray(0, detourPlace(layout.imageEnd).offset + 10);
    expect(planClockGettimeDetour(full, layout.imageEnd, layout.base, entry, 0n)).toBeNull();
  });
});

describe.runIf(x86)('a realtime clock_gettime from inside the vDSO', () => {
  // A shell that execs sleep when told (stdin): the same pid, a new image.
  const child = spawn('/bin/sh', ['-c', 'read line; exec /bin/sleep 30'], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  afterAll(() => child.kill('SIGKILL'));

  function context(instructionPointer: bigint, writes: Buffer[]) {
    return {
      pid: child.pid!,
      syscall: 'clock_gettime',
      arch: 'x86_64',
      args: [0n, 0x1000n, 0n, 0n, 0n, 0n],
      instructionPointer,
      valid: () => true,
      write: (_address: bigint, data: Buffer) => writes.push(data),
      session: {
        id: 7001,
        policy: sessionPolicy({ timeStart: 0 }),
        reaperPid: 1,
        programPid: child.pid!,
      },
    } as never;
  }
  const clockGettime = (ip: bigint, writes: Buffer[]) =>
    timeModule.handlers!.clock_gettime!(context(ip, writes));
  /** timeStart 0: the epoch, and the seconds the test ran (an unshifted clock is decades on). */
  const shifted = (writes: Buffer[]) => {
    expect(writes).toHaveLength(1);
    expect(Number(writes[0]!.readBigInt64LE(0))).toBeLessThan(600);
  };

  it('is the detoured code’s own fallback: it runs unshifted, from the image of now', async () => {
    const image = (pid: number) => readlinkSync(`/proc/${pid}/exe`);
    expect(await eventually(() => image(child.pid!).endsWith('sh'))).toBe(true);
    const base = vdsoBase(child.pid!)!;
    // Patched (and recorded) at its first hook call.
    timeModule.handlers!.set_tid_address!(context(0x1000n, []));
    const detoured = planVdsoPatch(
      parseVdsoSymbols(ownLayout().image),
      { arch: 'x86_64', offsetSeconds: 0n, getrandom: false },
      ownLayout(),
    ).some((write) => write.kind === 'clockGettimeDetour');
    if (!detoured) {
      console.warn('vdso-detour: not detourable here: every realtime read is answered shifted');
    }
    let writes: Buffer[] = [];
    expect(clockGettime(base + 0x100n, writes)).toEqual(
      detoured ? { kind: 'continue' } : { kind: 'value', value: 0n },
    );
    if (detoured) expect(writes).toEqual([]);
    // From anywhere else it is answered shifted.
    writes = [];
    expect(clockGettime(0x401000n, writes)).toEqual({ kind: 'value', value: 0n });
    shifted(writes);

    // An exec maps a new vDSO elsewhere; no hook call has come yet. The old place is not the
    // vDSO any more: answered shifted, and the new image is patched on the way.
    child.stdin!.write('\n');
    // /proc/PID/exe names the new image once the new mm is in place; the auxiliary vector,
    // with the new vDSO's address, is written after the vDSO is mapped (load_elf_binary():
    // arch_setup_additional_pages, then create_elf_tables).
    expect(
      await eventually(() => image(child.pid!).endsWith('sleep') && vdsoBase(child.pid!) !== null),
    ).toBe(true);
    const moved = vdsoBase(child.pid!)!;
    expect(moved).not.toBe(base); // ASLR
    writes = [];
    expect(clockGettime(base + 0x100n, writes)).toEqual({ kind: 'value', value: 0n });
    shifted(writes);
    if (detoured) {
      writes = [];
      expect(clockGettime(moved + 0x100n, writes)).toEqual({ kind: 'continue' });
      expect(writes).toEqual([]);
    }
  });
});
