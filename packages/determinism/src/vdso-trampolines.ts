// Machine code written over the vDSO's time (and getrandom) entry points.
//
// Each trampoline keeps its GNU as source beside its bytes; test/vdso-asm.test.ts
// re-assembles every source (x86_64 `as`, aarch64 `aarch64-linux-gnu-as`) and
// compares. To change one: edit the source, assemble it the same way
// (`as --64` / `aarch64-linux-gnu-as`, then `objcopy -O binary -j .text`), paste the hex.
//
// A shifting trampoline makes the real syscall with VDSO_TIME_MARKER in an argument
// register the kernel ignores (the seccomp filter lets such calls through without
// notifying the supervisor), then adds the session's offset, in seconds, to the
// seconds of the result. The offset is an 8-byte little-endian slot at the end
// of the code (`offsetSlot`), filled per session; the source assembles it as 0.
// The kernel keeps every register but rax, rcx and r11 across `syscall` on
// x86_64 (arch/x86/entry/entry_64.S) and every register but x0 across `svc` on
// aarch64, so the arguments are still there after the call.

import type { Arch } from '@sandlock/sys';

export type TrampolineKind =
  | 'clock_gettime'
  | 'gettimeofday'
  | 'time'
  | 'timeSyscall'
  | 'getrandom';

export interface TrampolineSource {
  /** GNU as source; `.equ MARKER` (x86_64) or MARKER_LO/MARKER_HI (aarch64) hold the marker. */
  readonly source: string;
  /** What binutils makes of `source` (objcopy -O binary -j .text). */
  readonly hex: string;
  /** The last 8 bytes are the offset slot. */
  readonly offsetSlot: boolean;
}

const X86_64_PRELUDE = `
        .intel_syntax noprefix
        .equ MARKER, 0x534c4b54         # VDSO_TIME_MARKER
`;

const X86_64: Readonly<Partial<Record<TrampolineKind, TrampolineSource>>> = {
  // int clock_gettime(clockid_t clock /* edi */, struct timespec *ts /* rsi */)
  // Shift tv_sec for CLOCK_REALTIME (0), _COARSE (5), _ALARM (8), CLOCK_TAI (11):
  // 0x921 has those bits set; `ja` also sends the negative (CPU-time) clocks away.
  clock_gettime: {
    source: `${X86_64_PRELUDE}
        mov edx, MARKER                 # third argument: unused by the kernel
        mov eax, 228                    # SYS_clock_gettime
        syscall
        test eax, eax
        jnz 1f                          # -errno: returned untouched
        cmp edi, 11
        ja 1f
        mov ecx, 0x921
        bt ecx, edi
        jnc 1f
        mov rcx, [rip + 2f]
        add [rsi], rcx                  # ts->tv_sec += offset
1:      ret
2:      .quad 0                         # offset slot
`,
    hex: 'ba544b4c53b8e40000000f0585c0751983ff0b7714b9210900000fa3f9730a488b0d0400000048010ec30000000000000000',
    offsetSlot: true,
  },
  // int gettimeofday(struct timeval *tv /* rdi */, struct timezone *tz /* rsi */)
  // Only tv is shifted, and only when it is not NULL (sandlock 0.6 added to *tz: §7.43).
  gettimeofday: {
    source: `${X86_64_PRELUDE}
        mov edx, MARKER
        mov eax, 96                     # SYS_gettimeofday
        syscall
        test eax, eax
        jnz 1f
        test rdi, rdi
        jz 1f
        mov rcx, [rip + 2f]
        add [rdi], rcx                  # tv->tv_sec += offset
1:      ret
2:      .quad 0
`,
    hex: 'ba544b4c53b8600000000f0585c0750f4885ff740a488b0d0400000048010fc30000000000000000',
    offsetSlot: true,
  },
  // time_t time(time_t *tloc /* rdi */): 40 bytes, exactly __vdso_time's size on Linux 6.x.
  // time(2) fails only with EFAULT for a bad tloc; a time is never negative.
  time: {
    source: `${X86_64_PRELUDE}
        mov esi, MARKER                 # second argument: unused by the kernel
        xor eax, eax
        mov al, 201                     # SYS_time (two bytes shorter than mov eax)
        syscall
        test rax, rax
        js 1f
        add rax, [rip + 2f]
        test rdi, rdi
        jz 1f
        mov [rdi], rax                  # the kernel stored the real time there: replace it
1:      ret
2:      .quad 0
`,
    hex: 'be544b4c5331c0b0c90f054885c0780f480305090000004885ff7403488907c30000000000000000',
    offsetSlot: true,
  },
  // A smaller time() for a vDSO whose __vdso_time has less room: the plain syscall, which
  // the filter notifies and the supervisor answers shifted (slower, still right).
  timeSyscall: {
    source: `${X86_64_PRELUDE}
        mov eax, 201
        syscall
        ret
`,
    hex: 'b8c90000000f05c3',
    offsetSlot: false,
  },
  // ssize_t getrandom(void *buf, size_t len, unsigned flags, void *state, size_t state_len):
  // -ENOSYS, so glibc (2.41+) and Go (1.24+) see no vDSO getrandom when they probe it and
  // use the getrandom syscall, which the random module answers.
  getrandom: {
    source: `${X86_64_PRELUDE}
        mov rax, -38                    # -ENOSYS
        ret
`,
    hex: '48c7c0daffffffc3',
    offsetSlot: false,
  },
};

const AARCH64_PRELUDE = `
        .equ MARKER_LO, 0x4b54          // VDSO_TIME_MARKER, low half
        .equ MARKER_HI, 0x534c          // and high half
`;

const AARCH64: Readonly<Partial<Record<TrampolineKind, TrampolineSource>>> = {
  // int __kernel_clock_gettime(clockid_t clock /* w0 */, struct timespec *ts /* x1 */)
  // `hint #34` is BTI C: the kernel maps the vDSO with PROT_BTI where the CPU has BTI
  // (arch/arm64/kernel/vdso.c), and libcs call it through a pointer (a NOP elsewhere).
  clock_gettime: {
    source: `${AARCH64_PRELUDE}
        hint #34                        // bti c
        mov x9, x0                      // the clock: x0 becomes the result
        movz x2, #MARKER_LO             // third argument: unused by the kernel
        movk x2, #MARKER_HI, lsl #16
        mov x8, #113                    // __NR_clock_gettime
        svc #0
        cbnz w0, 1f                     // -errno: returned untouched
        cmp w9, #11
        b.hi 1f
        mov w10, #0x921                 // REALTIME, REALTIME_COARSE, REALTIME_ALARM, TAI
        lsr w10, w10, w9
        tbz w10, #0, 1f
        ldr x10, 2f
        ldr x11, [x1]
        add x11, x11, x10
        str x11, [x1]                   // ts->tv_sec += offset
1:      ret
2:      .quad 0                         // offset slot
`,
    hex: '5f2403d5e90300aa826a89d28269aaf2280e80d2010000d4400100353f2d0071080100542a2481524a25c91aaa000036aa0000582b0040f96b010a8b2b0000f9c0035fd60000000000000000',
    offsetSlot: true,
  },
  // int __kernel_gettimeofday(struct timeval *tv /* x0 */, struct timezone *tz /* x1 */)
  gettimeofday: {
    source: `${AARCH64_PRELUDE}
        hint #34                        // bti c
        mov x9, x0
        movz x2, #MARKER_LO
        movk x2, #MARKER_HI, lsl #16
        mov x8, #169                    // __NR_gettimeofday
        svc #0
        cbnz w0, 1f
        cbz x9, 1f                      // tv == NULL: nothing to shift
        ldr x10, 2f
        ldr x11, [x9]
        add x11, x11, x10
        str x11, [x9]                   // tv->tv_sec += offset
1:      ret
2:      .quad 0
`,
    hex: '5f2403d5e90300aa826a89d28269aaf2281580d2010000d4c0000035a90000b4aa0000582b0140f96b010a8b2b0100f9c0035fd60000000000000000',
    offsetSlot: true,
  },
  // ssize_t __kernel_getrandom(...): -ENOSYS, as on x86_64.
  getrandom: {
    source: `${AARCH64_PRELUDE}
        hint #34                        // bti c
        mov x0, #-38                    // -ENOSYS
        ret
`,
    hex: '5f2403d5a0048092c0035fd6',
    offsetSlot: false,
  },
};

export const TRAMPOLINE_SOURCES: Readonly<
  Record<Arch, Readonly<Partial<Record<TrampolineKind, TrampolineSource>>>>
> = { x86_64: X86_64, aarch64: AARCH64 };

/**
 * The vDSO symbols each trampoline replaces, per arch (arch/x86/entry/vdso/vdso.lds.S,
 * arch/arm64/kernel/vdso/vdso.lds.S). On x86_64 the plain names are weak aliases of the
 * `__vdso_` ones, at the same address.
 */
export const VDSO_SYMBOLS: Readonly<
  Record<
    Arch,
    Readonly<
      Partial<Record<'clock_gettime' | 'gettimeofday' | 'time' | 'getrandom', readonly string[]>>
    >
  >
> = {
  x86_64: {
    clock_gettime: ['__vdso_clock_gettime', 'clock_gettime'],
    gettimeofday: ['__vdso_gettimeofday', 'gettimeofday'],
    time: ['__vdso_time', 'time'],
    getrandom: ['__vdso_getrandom', 'getrandom'],
  },
  aarch64: {
    clock_gettime: ['__kernel_clock_gettime'],
    gettimeofday: ['__kernel_gettimeofday'],
    getrandom: ['__kernel_getrandom'],
  },
};

/** The trampoline's bytes, with `offsetSeconds` in its slot when it has one. */
export function trampolineCode(arch: Arch, kind: TrampolineKind, offsetSeconds = 0n): Buffer {
  const entry = TRAMPOLINE_SOURCES[arch][kind];
  if (entry === undefined) throw new Error(`sandlock: no ${kind} trampoline on ${arch}`);
  const code = Buffer.from(entry.hex, 'hex');
  if (entry.offsetSlot) code.writeBigInt64LE(offsetSeconds, code.length - 8);
  return code;
}
