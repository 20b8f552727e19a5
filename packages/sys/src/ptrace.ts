import { addressOf, rawSyscall } from './libc.js';
import { type Arch, hostArch, syscallNumber } from './syscalls/index.js';

// include/uapi/linux/ptrace.h
export const PTRACE_DETACH = 17;
export const PTRACE_SYSCALL = 24;
export const PTRACE_GETEVENTMSG = 0x4201;
export const PTRACE_GETREGSET = 0x4204;
export const PTRACE_SETREGSET = 0x4205;
export const PTRACE_SEIZE = 0x4206;
export const PTRACE_INTERRUPT = 0x4207;
export const PTRACE_GETSIGMASK = 0x420a;
export const PTRACE_SETSIGMASK = 0x420b;
export const PTRACE_GET_SYSCALL_INFO = 0x420e;
export const PTRACE_O_TRACESYSGOOD = 0x1;
/** A clone whose exit signal is not SIGCHLD (nor CLONE_VFORK) stops with PTRACE_EVENT_CLONE; the child is traced from birth. */
export const PTRACE_O_TRACECLONE = 0x8;
export const PTRACE_O_TRACEEXEC = 0x10;
export const PTRACE_EVENT_CLONE = 3;
export const PTRACE_EVENT_EXEC = 4;
/** The stop PTRACE_INTERRUPT (and a group stop of a seized tracee) reports. */
export const PTRACE_EVENT_STOP = 128;
/** ptrace_syscall_info.op */
export const PTRACE_SYSCALL_INFO_ENTRY = 1;
export const PTRACE_SYSCALL_INFO_EXIT = 2;
/** include/uapi/linux/elf.h: the general registers, for PTRACE_GETREGSET. */
export const NT_PRSTATUS = 1;
/** include/uapi/linux/wait.h: wait for clones (threads) too. */
export const __WALL = 0x40000000;
/** SIGTRAP, and SIGTRAP | 0x80 for syscall stops under PTRACE_O_TRACESYSGOOD. */
export const SIGTRAP = 5;

/**
 * include/linux/errno.h (not uapi): the syscall is restarted as it stands in
 * the registers, even when a signal handler ran (arch_do_signal_or_restart(),
 * arch/x86/kernel/signal.c; do_signal(), arch/arm64/kernel/signal.c).
 * seccomp_notify_send() passes a notification's `error` on without a range
 * check, so a supervisor may answer with it.
 */
export const ERESTARTNOINTR = 513;

/**
 * Where the syscall a thread makes lives in its general registers
 * (NT_PRSTATUS), as 64-bit word indexes. x86_64: struct user_regs_struct
 * (arch/x86/include/asm/user_64.h); aarch64: struct user_pt_regs
 * (arch/arm64/include/uapi/asm/ptrace.h).
 *
 * `restartNr` is the register the kernel takes the number from when it
 * restarts a call: on x86_64 orig_rax, copied to rax after the ptrace stop of
 * the signal path; on aarch64 x8, read again by the `svc` the kernel rewinds
 * to before that stop. `rewoundBeforeStop` says whether the pc already points
 * at the syscall instruction in that stop (aarch64) or is moved there after
 * it (x86_64).
 */
export interface SyscallRegisters {
  readonly size: number;
  readonly args: readonly number[];
  readonly result: number;
  readonly nr: number;
  readonly restartNr: number;
  readonly pc: number;
  /** The stack pointer (rsp, sp). */
  readonly sp: number;
  /** The length of the syscall instruction (x86_64 `syscall`, aarch64 `svc #0`). */
  readonly instructionLength: number;
  readonly rewoundBeforeStop: boolean;
  /** The number of the call being made on x86_64 (orig_rax): -1 stops a restart. */
  readonly origNr: number | null;
}

export const SYSCALL_REGISTERS: Readonly<Record<Arch, SyscallRegisters>> = Object.freeze({
  x86_64: Object.freeze({
    size: 27 * 8,
    // rdi, rsi, rdx, r10, r8, r9
    args: Object.freeze([14, 13, 12, 7, 9, 8]),
    result: 10, // rax
    nr: 10, // rax, on the way into the kernel
    restartNr: 15, // orig_rax
    pc: 16, // rip
    sp: 19, // rsp
    instructionLength: 2,
    rewoundBeforeStop: false,
    origNr: 15,
  }),
  aarch64: Object.freeze({
    size: 34 * 8,
    args: Object.freeze([0, 1, 2, 3, 4, 5]),
    result: 0,
    nr: 8,
    restartNr: 8,
    pc: 32,
    sp: 31,
    instructionLength: 4,
    rewoundBeforeStop: true,
    origNr: null,
  }),
});

/** sizeof(struct ptrace_syscall_info) as far as this package reads it. */
export const PTRACE_SYSCALL_INFO_SIZE = 88;

const ptraceNr = syscallNumber('ptrace', hostArch());
const wait4Nr = syscallNumber('wait4', hostArch());

/** ptrace(2): the result, or -errno. */
export function ptrace(
  request: number,
  tid: number,
  address: number | bigint | Buffer = 0,
  data: number | bigint | Buffer = 0,
): number {
  return rawSyscall(ptraceNr, request, tid, address, data);
}

/** wait4(2) on one pid: the pid (0 with WNOHANG and nothing to report), or -errno; `status` gets the status word. */
export function waitStatus(pid: number, status: Buffer, options: number): number {
  return rawSyscall(wait4Nr, pid, status, options, 0);
}

/** PTRACE_GETREGSET/SETREGSET NT_PRSTATUS through one iovec. */
export class RegisterSet {
  readonly words: Buffer;
  private readonly iovec = Buffer.alloc(16);

  constructor(readonly layout: SyscallRegisters) {
    this.words = Buffer.alloc(layout.size);
  }

  private point(): Buffer {
    this.iovec.writeBigUInt64LE(addressOf(this.words), 0);
    this.iovec.writeBigUInt64LE(BigInt(this.layout.size), 8);
    return this.iovec;
  }

  /** 0 or -errno. */
  load(tid: number): number {
    return ptrace(PTRACE_GETREGSET, tid, NT_PRSTATUS, this.point());
  }

  /** 0 or -errno. */
  store(tid: number): number {
    return ptrace(PTRACE_SETREGSET, tid, NT_PRSTATUS, this.point());
  }

  get(index: number): bigint {
    return this.words.readBigUInt64LE(index * 8);
  }

  set(index: number, value: bigint): void {
    this.words.writeBigUInt64LE(BigInt.asUintN(64, value), index * 8);
  }

  copyFrom(other: RegisterSet): void {
    other.words.copy(this.words);
  }
}
