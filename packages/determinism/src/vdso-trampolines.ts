// Machine code written over the vDSO's time (and getrandom) entry points.
//
// Each trampoline keeps its GNU as source beside its bytes; test/vdso-asm.test.ts
// re-assembles every source (x86_64 `as`, aarch64 `aarch64-linux-gnu-as`) and
// compares. To change one: edit the source, assemble it the same way
// (`as --64` / `aarch64-linux-gnu-as`, then `objcopy -O binary -j .text`), paste the hex.
//
// No trampoline carries anything that lets its syscall pass the seccomp filter
// unseen: a value in a register would be one any code of the sandbox can put
// there too (docs/design.md, "The clock without a bypass"). So there are two kinds:
// - the plain syscall (`…Syscall`): the filter notifies it for the realtime
//   clocks and the supervisor answers with the shifted time;
// - on x86_64 when clock_gettime is detoured (./vdso-detour.ts), gettimeofday
//   and time call the detoured clock_gettime, which shifts without a syscall.
//   Their `call rel32` is filled per image (`callAt`).

import type { Arch } from '@sandlock/sys';

export type TrampolineKind =
  | 'clockGettimeSyscall'
  | 'gettimeofdaySyscall'
  | 'timeSyscall'
  | 'gettimeofdayViaClock'
  | 'timeViaClock'
  | 'getrandom';

export interface TrampolineSource {
  /** GNU as source. */
  readonly source: string;
  /** What binutils makes of `source` (objcopy -O binary -j .text). */
  readonly hex: string;
  /** The syscall the code makes, if any (checked against the tables by the asm test). */
  readonly syscall?: string;
  /** Where the rel32 of its `call __vdso_clock_gettime` sits (filled per image), if it has one. */
  readonly callAt?: number;
}

const X86_64_PRELUDE = `
        .intel_syntax noprefix
`;

const X86_64: Readonly<Partial<Record<TrampolineKind, TrampolineSource>>> = {
  // int clock_gettime(clockid_t clock, struct timespec *ts): the syscall. The filter notifies
  // the realtime clocks (answered shifted by the supervisor) and lets the others run.
  clockGettimeSyscall: {
    source: `${X86_64_PRELUDE}
        mov eax, 228                    # SYS_clock_gettime
        syscall
        ret
`,
    hex: 'b8e40000000f05c3',
    syscall: 'clock_gettime',
  },
  // int gettimeofday(struct timeval *tv, struct timezone *tz): the syscall, answered by the supervisor.
  gettimeofdaySyscall: {
    source: `${X86_64_PRELUDE}
        mov eax, 96                     # SYS_gettimeofday
        syscall
        ret
`,
    hex: 'b8600000000f05c3',
    syscall: 'gettimeofday',
  },
  // time_t time(time_t *tloc): the syscall, answered by the supervisor.
  timeSyscall: {
    source: `${X86_64_PRELUDE}
        mov eax, 201                    # SYS_time
        syscall
        ret
`,
    hex: 'b8c90000000f05c3',
    syscall: 'time',
  },
  // int gettimeofday(struct timeval *tv /* rdi */, struct timezone *tz /* rsi */) over the
  // detoured clock_gettime(CLOCK_REALTIME): tv_usec = tv_nsec / 1000, as the kernel's vDSO
  // does. With tz (obsolete, rarely asked for) the syscall, which the supervisor answers.
  gettimeofdayViaClock: {
    source: `${X86_64_PRELUDE}
        test rsi, rsi
        jnz 3f                          # tz wanted: the syscall
        xor eax, eax
        test rdi, rdi
        jz 2f                           # neither tv nor tz: nothing to do
        push rdi                        # tv
        sub rsp, 16                     # a struct timespec; rsp 16-byte aligned at the call
        xor edi, edi                    # CLOCK_REALTIME
        mov rsi, rsp
        .byte 0xe8                      # call rel32: __vdso_clock_gettime, filled per image
        .long 0
        test eax, eax
        jnz 1f                          # -errno: returned untouched
        mov rdi, [rsp + 16]
        mov rcx, [rsp]
        mov [rdi], rcx                  # tv_sec (shifted by the detour)
        mov rax, [rsp + 8]
        xor edx, edx
        mov ecx, 1000
        div rcx
        mov [rdi + 8], rax              # tv_usec = tv_nsec / 1000
        xor eax, eax
1:      add rsp, 24
2:      ret
3:      mov eax, 96                     # SYS_gettimeofday
        syscall
        ret
`,
    hex: '4885f6754031c04885ff7438574883ec1031ff4889e6e80000000085c07521488b7c2410488b0c2448890f488b44240831d2b9e803000048f7f14889470831c04883c418c3b8600000000f05c3',
    syscall: 'gettimeofday',
    callAt: 0x17,
  },
  // time_t time(time_t *tloc /* rdi */) over the detoured clock_gettime(CLOCK_REALTIME_COARSE):
  // the kernel's time() and its vDSO read the same seconds (the time at the last tick). 34 of
  // the 40 bytes __vdso_time has on Linux 6.x; with less room, timeSyscall.
  timeViaClock: {
    source: `${X86_64_PRELUDE}
        push rdi                        # tloc
        sub rsp, 16                     # a struct timespec; rsp 16-byte aligned at the call
        push 5
        pop rdi                         # CLOCK_REALTIME_COARSE
        mov rsi, rsp
        .byte 0xe8                      # call rel32: __vdso_clock_gettime, filled per image
        .long 0
        mov rax, [rsp]                  # tv_sec (shifted by the detour)
        add rsp, 16
        pop rdi
        test rdi, rdi
        jz 1f
        mov [rdi], rax
1:      ret
`,
    hex: '574883ec106a055f4889e6e800000000488b04244883c4105f4885ff7403488907c3',
    callAt: 0x0c,
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
  },
};

const AARCH64: Readonly<Partial<Record<TrampolineKind, TrampolineSource>>> = {
  // int __kernel_clock_gettime(clockid_t clock, struct timespec *ts): the syscall.
  // `hint #34` is BTI C: the kernel maps the vDSO with PROT_BTI where the CPU has BTI
  // (arch/arm64/kernel/vdso.c), and libcs call it through a pointer (a NOP elsewhere).
  clockGettimeSyscall: {
    source: `
        hint #34                        // bti c
        mov x8, #113                    // __NR_clock_gettime
        svc #0
        ret
`,
    hex: '5f2403d5280e80d2010000d4c0035fd6',
    syscall: 'clock_gettime',
  },
  // int __kernel_gettimeofday(struct timeval *tv, struct timezone *tz): the syscall.
  gettimeofdaySyscall: {
    source: `
        hint #34                        // bti c
        mov x8, #169                    // __NR_gettimeofday
        svc #0
        ret
`,
    hex: '5f2403d5281580d2010000d4c0035fd6',
    syscall: 'gettimeofday',
  },
  // ssize_t __kernel_getrandom(...): -ENOSYS, as on x86_64.
  getrandom: {
    source: `
        hint #34                        // bti c
        mov x0, #-38                    // -ENOSYS
        ret
`,
    hex: '5f2403d5a0048092c0035fd6',
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

/**
 * The trampoline's bytes. One that calls clock_gettime needs `call`: the
 * offsets, in the vDSO, of the trampoline and of the function it calls.
 */
export function trampolineCode(
  arch: Arch,
  kind: TrampolineKind,
  call?: { readonly from: number; readonly to: number },
): Buffer {
  const entry = TRAMPOLINE_SOURCES[arch][kind];
  if (entry === undefined) throw new Error(`sandlock: no ${kind} trampoline on ${arch}`);
  const code = Buffer.from(entry.hex, 'hex');
  if (entry.callAt !== undefined) {
    if (call === undefined) throw new Error(`sandlock: the ${kind} trampoline needs its callee`);
    code.writeInt32LE(call.to - (call.from + entry.callAt + 4), entry.callAt);
  }
  return code;
}
