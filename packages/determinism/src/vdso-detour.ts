// The fast path for x86_64 clock_gettime: a detour instead of a replacement.
//
// The trampolines of ./vdso-trampolines.ts replace a vDSO function by a real
// syscall: right, but every clock read then costs a syscall (~1.3 µs instead
// of ~30 ns on the development VM), monotonic ones included, and a realtime
// one a round trip to the supervisor; Go and the JVM read CLOCK_MONOTONIC all
// the time. The detour keeps the
// kernel's code: the first instructions of __vdso_clock_gettime are copied
// into a block placed in the unused end of the vDSO's last page and replaced
// by a jump to that block, which calls the original code (the copied
// instructions, then a jump back behind them) and adds the offset to tv_sec
// for the realtime clocks; other clocks jump straight to the original code.
// No syscall. The copied instructions must not depend on where they run:
// only a few prologue encodings (pushes, register moves, stack adjustment,
// endbr64) are accepted; anything else falls back to the syscall
// trampoline. If the kernel's code falls back to the real syscall itself
// (a clocksource the vDSO cannot read), that syscall comes from inside the
// vDSO of a detoured image: the supervisor then lets it run unshifted, since
// the detour shifts the result (see `onClockGettime` in ./time.ts).

import type { PatchWrite } from './vdso-patch.js';

/** The detour block's GNU as source (x86_64); test/vdso-asm.test.ts re-assembles it. */
export const CLOCK_GETTIME_DETOUR = {
  source: `
        .intel_syntax noprefix
detour:                                 # entered by the jmp written over the function's start
        cmp edi, 11
        ja original                     # not a realtime clock: the kernel's code, as is
        mov ecx, 0x921                  # CLOCK_REALTIME, _COARSE, _ALARM, CLOCK_TAI
        bt ecx, edi
        jnc original
        push rsi                        # ts; also keeps the stack 16-byte aligned at the call
        call original
        pop rsi
        test eax, eax
        jnz 1f                          # -errno: returned untouched
        mov rcx, [rip + shift]
        add [rsi], rcx                  # ts->tv_sec += offset
1:      ret
original:                               # the function's first instructions, copied here,
        .fill 16, 1, 0x90               # then nops
        jmp [rip + resume]
resume: .quad 0                         # absolute address: behind the copied instructions
shift:  .quad 0                         # offset slot
`,
  hex: '83ff0b7720b9210900000fa3f9731656e8100000005e85c0750a488b0d2200000048010ec390909090909090909090909090909090ff250000000000000000000000000000000000000000',
  /** Where the copied instructions go, and how many bytes they may take. */
  originalAt: 0x25,
  originalRoom: 16,
  resumeAt: 0x3b,
  shiftAt: 0x43,
} as const;

const JMP_REL32 = 0xe9;
const JMP_REL32_SIZE = 5;
const INT3 = 0xcc;
const PAGE = 4096;

/**
 * The length of the whole instructions at the start of `code` that cover at
 * least 5 bytes (room for a jmp rel32), or null when one of them is not a
 * position-independent prologue instruction this decoder knows.
 */
export function prologueLength(code: Uint8Array): number | null {
  let at = 0;
  while (at < JMP_REL32_SIZE) {
    const b0 = code[at];
    const b1 = code[at + 1];
    const b2 = code[at + 2];
    const b3 = code[at + 3];
    let length = 0;
    if (b0 === undefined) return null;
    if (b0 >= 0x50 && b0 <= 0x57)
      length = 1; // push r64
    else if (b0 === 0x41 && b1 !== undefined && b1 >= 0x50 && b1 <= 0x57)
      length = 2; // push r8-r15
    else if (b0 === 0xf3 && b1 === 0x0f && b2 === 0x1e && b3 === 0xfa)
      length = 4; // endbr64
    else if (
      (b0 & 0xf0) === 0x40 &&
      (b1 === 0x89 || b1 === 0x8b) &&
      b2 !== undefined &&
      b2 >= 0xc0
    ) {
      length = 3; // mov r64, r64 (REX.W, ModRM with mod = 11: no memory operand)
      if ((b0 & 0x08) === 0) return null; // not REX.W
    } else if (b0 === 0x48 && b1 === 0x83 && b2 === 0xec)
      length = 4; // sub rsp, imm8
    else if (b0 === 0x48 && b1 === 0x81 && b2 === 0xec)
      length = 7; // sub rsp, imm32
    else return null;
    at += length;
  }
  return at;
}

function jmpRel32(from: number, to: number, length: number): Buffer {
  const code = Buffer.alloc(length, INT3);
  code[0] = JMP_REL32;
  code.writeInt32LE(to - (from + JMP_REL32_SIZE), 1);
  return code;
}

/** Where the detour block goes: 16-byte aligned after the ELF file, within its last page. */
export function detourPlace(imageEnd: number): { offset: number; room: number } {
  const offset = Math.ceil(imageEnd / 16) * 16;
  return { offset, room: Math.ceil(imageEnd / PAGE) * PAGE - offset };
}

/**
 * The writes that detour the function at `entry` (an offset in `image`, the
 * vDSO read up to the end of its last page, mapped at `base`), or null when
 * it cannot be detoured. Works on a pristine and on an already detoured image
 * (the copied instructions are then read back from the block).
 */
export function planClockGettimeDetour(
  image: Buffer,
  imageEnd: number,
  base: bigint,
  entry: { offset: number; size: number },
  offsetSeconds: bigint,
): PatchWrite[] | null {
  const template = Buffer.from(CLOCK_GETTIME_DETOUR.hex, 'hex');
  const place = detourPlace(imageEnd);
  if (place.room < template.length || place.offset + template.length > image.length) return null;
  const slot = image.subarray(place.offset, place.offset + template.length);
  const head = image.subarray(entry.offset, entry.offset + CLOCK_GETTIME_DETOUR.originalRoom);
  const detoured =
    head[0] === JMP_REL32 && head.readInt32LE(1) === place.offset - (entry.offset + 5);
  const prologue = detoured
    ? slot.subarray(
        CLOCK_GETTIME_DETOUR.originalAt,
        CLOCK_GETTIME_DETOUR.originalAt + CLOCK_GETTIME_DETOUR.originalRoom,
      )
    : head;
  const length = prologueLength(prologue);
  if (length === null || length > entry.size || length > CLOCK_GETTIME_DETOUR.originalRoom)
    return null;
  // The block's place must be free (zeros past the ELF file), unless it holds our block.
  if (!detoured && slot.some((byte) => byte !== 0)) return null;
  const block = Buffer.from(template);
  prologue.copy(block, CLOCK_GETTIME_DETOUR.originalAt, 0, length);
  block.writeBigUInt64LE(base + BigInt(entry.offset + length), CLOCK_GETTIME_DETOUR.resumeAt);
  block.writeBigInt64LE(offsetSeconds, CLOCK_GETTIME_DETOUR.shiftAt);
  return [
    // The block first: a thread that enters the function meanwhile runs either the old code
    // or the jump to a complete block.
    { kind: 'clockGettimeDetour', symbol: '(detour block)', offset: place.offset, code: block },
    {
      kind: 'clockGettimeDetour',
      symbol: '__vdso_clock_gettime',
      offset: entry.offset,
      code: jmpRel32(entry.offset, place.offset, length),
    },
  ];
}
