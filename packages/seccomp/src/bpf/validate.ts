import { BPF_MAXINSNS, SECCOMP_DATA_SIZE, type SockFilter } from '@sandlock/sys';
import {
  BPF_A,
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_AND,
  BPF_DIV,
  BPF_IMM,
  BPF_JA,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JMP,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LEN,
  BPF_LSH,
  BPF_MEM,
  BPF_MEMWORDS,
  BPF_MISC,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_RET,
  BPF_RSH,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  BPF_TAX,
  BPF_TXA,
  BPF_W,
  BPF_X,
  BPF_XOR,
} from './opcodes.js';

/** A program the kernel would refuse: which instruction, and why. */
export class BpfProgramError extends Error {
  override readonly name = 'BpfProgramError';
  constructor(
    readonly index: number | undefined,
    reason: string,
  ) {
    super(index === undefined ? reason : `instruction ${index}: ${reason}`);
  }
}

const ALU_OPS = [BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_AND, BPF_OR, BPF_XOR, BPF_LSH, BPF_RSH];
const CONDITIONAL_JUMPS = [BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JSET];

// The opcodes seccomp accepts: seccomp_check_filter() in kernel/seccomp.c lists them one by one.
// Packet loads other than LD|W|ABS and BPF_MOD are valid socket-filter BPF but not seccomp BPF.
const SECCOMP_OPCODES: ReadonlySet<number> = new Set([
  BPF_LD | BPF_W | BPF_ABS,
  BPF_LD | BPF_W | BPF_LEN,
  BPF_LDX | BPF_W | BPF_LEN,
  BPF_RET | BPF_K,
  BPF_RET | BPF_A,
  ...ALU_OPS.flatMap((op) => [BPF_ALU | op | BPF_K, BPF_ALU | op | BPF_X]),
  BPF_ALU | BPF_NEG,
  BPF_LD | BPF_IMM,
  BPF_LDX | BPF_IMM,
  BPF_MISC | BPF_TAX,
  BPF_MISC | BPF_TXA,
  BPF_LD | BPF_MEM,
  BPF_LDX | BPF_MEM,
  BPF_ST,
  BPF_STX,
  BPF_JMP | BPF_JA,
  ...CONDITIONAL_JUMPS.flatMap((op) => [BPF_JMP | op | BPF_K, BPF_JMP | op | BPF_X]),
]);

export function isConditionalJump(code: number): boolean {
  return CONDITIONAL_JUMPS.some(
    (op) => code === (BPF_JMP | op | BPF_K) || code === (BPF_JMP | op | BPF_X),
  );
}

/**
 * Throws a {@link BpfProgramError} for any program seccomp(2) would answer with EINVAL. The checks
 * are those of bpf_check_classic() (net/core/filter.c) plus seccomp_check_filter()
 * (kernel/seccomp.c): the length limit, the seccomp opcode subset, aligned in-bounds `seccomp_data`
 * loads, forward in-bounds jumps, constant divisors and shifts, a final return, and no scratch
 * memory read before it is written on every path.
 */
export function validateProgram(program: readonly SockFilter[]): void {
  if (program.length === 0) throw new BpfProgramError(undefined, 'empty program');
  if (program.length > BPF_MAXINSNS) {
    throw new BpfProgramError(
      undefined,
      `${program.length} instructions exceed the kernel's limit of ${BPF_MAXINSNS} (BPF_MAXINSNS)`,
    );
  }
  program.forEach((insn, pc) => {
    const { code, k, jt, jf } = insn;
    if (!SECCOMP_OPCODES.has(code)) {
      throw new BpfProgramError(
        pc,
        `opcode 0x${code.toString(16)} is not allowed in seccomp filters`,
      );
    }
    const remaining = program.length - pc - 1;
    if (code === (BPF_LD | BPF_W | BPF_ABS) && (k >= SECCOMP_DATA_SIZE || k % 4 !== 0)) {
      throw new BpfProgramError(pc, `load offset ${k} is not an aligned seccomp_data word`);
    }
    if (code === (BPF_ALU | BPF_DIV | BPF_K) && k === 0) {
      throw new BpfProgramError(pc, 'division by the constant 0');
    }
    if ((code === (BPF_ALU | BPF_LSH | BPF_K) || code === (BPF_ALU | BPF_RSH | BPF_K)) && k >= 32) {
      throw new BpfProgramError(pc, `shift by ${k} (must be below 32)`);
    }
    if (
      (code === (BPF_LD | BPF_MEM) ||
        code === (BPF_LDX | BPF_MEM) ||
        code === BPF_ST ||
        code === BPF_STX) &&
      k >= BPF_MEMWORDS
    ) {
      throw new BpfProgramError(pc, `scratch memory index ${k} (there are ${BPF_MEMWORDS} words)`);
    }
    if (code === (BPF_JMP | BPF_JA) && k >= remaining) {
      throw new BpfProgramError(pc, `jump by ${k} leaves the program`);
    }
    if (isConditionalJump(code) && (jt >= remaining || jf >= remaining)) {
      throw new BpfProgramError(pc, `jump (jt ${jt}, jf ${jf}) leaves the program`);
    }
  });
  const last = program[program.length - 1]!;
  if (last.code !== (BPF_RET | BPF_K) && last.code !== (BPF_RET | BPF_A)) {
    throw new BpfProgramError(program.length - 1, 'the last instruction must be a return');
  }
  checkScratchMemory(program);
}

/**
 * Every read of M[i] must follow a write of M[i] on every path reaching it, or the kernel refuses
 * the program (check_load_and_stores() in net/core/filter.c). Jumps only go forward, so one pass
 * that carries the set of written words along each edge is exact.
 */
function checkScratchMemory(program: readonly SockFilter[]): void {
  const ALL = (1 << BPF_MEMWORDS) - 1;
  const reaching = new Array<number>(program.length).fill(ALL);
  let written = 0;
  program.forEach(({ code, k, jt, jf }, pc) => {
    written &= reaching[pc]!;
    if (code === BPF_ST || code === BPF_STX) {
      written |= 1 << k;
    } else if (code === (BPF_LD | BPF_MEM) || code === (BPF_LDX | BPF_MEM)) {
      if ((written & (1 << k)) === 0) {
        throw new BpfProgramError(pc, `scratch memory M[${k}] is read before it is written`);
      }
    } else if (code === (BPF_JMP | BPF_JA)) {
      reaching[pc + 1 + k]! &= written;
      written = ALL;
    } else if (isConditionalJump(code)) {
      reaching[pc + 1 + jt]! &= written;
      reaching[pc + 1 + jf]! &= written;
      written = ALL;
    }
  });
}
