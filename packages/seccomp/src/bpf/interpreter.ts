import {
  encodeSeccompData,
  SECCOMP_DATA_SIZE,
  type SeccompData,
  type SockFilter,
} from '@sandlock/sys';
import {
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
  BPF_XOR,
  bpfClass,
  bpfMiscOp,
  bpfMode,
  bpfOp,
  bpfRval,
  bpfSrc,
} from './opcodes.js';
import { BpfProgramError, validateProgram } from './validate.js';

const u32 = (value: number): number => value >>> 0;

function alu(op: number, a: number, operand: number): number | 'divide-by-zero' {
  switch (op) {
    case BPF_ADD:
      return u32(a + operand);
    case BPF_SUB:
      return u32(a - operand);
    case BPF_MUL:
      return Math.imul(a, operand) >>> 0;
    case BPF_DIV:
      return operand === 0 ? 'divide-by-zero' : Math.floor(a / operand) >>> 0;
    case BPF_OR:
      return u32(a | operand);
    case BPF_AND:
      return u32(a & operand);
    case BPF_XOR:
      return u32(a ^ operand);
    // JavaScript shifts count modulo 32; BPF on a 32-bit register shifts everything out.
    case BPF_LSH:
      return operand >= 32 ? 0 : u32(a << operand);
    case BPF_RSH:
      return operand >= 32 ? 0 : a >>> operand;
    case BPF_NEG:
      return u32(-a);
    default:
      throw new BpfProgramError(undefined, `unknown ALU operation 0x${op.toString(16)}`);
  }
}

function jumpTaken(op: number, a: number, operand: number): boolean {
  switch (op) {
    case BPF_JEQ:
      return a === operand;
    case BPF_JGT:
      return a > operand;
    case BPF_JGE:
      return a >= operand;
    case BPF_JSET:
      return (a & operand) !== 0;
    default:
      throw new BpfProgramError(undefined, `unknown jump operation 0x${op.toString(16)}`);
  }
}

/**
 * Runs a seccomp filter on one syscall, as the kernel would, and returns the 32-bit action value
 * (SECCOMP_RET_* | data). The program is validated first, so a program that passes here also
 * loads. Registers and scratch memory are 32-bit unsigned; comparisons are unsigned.
 */
export function runFilter(program: readonly SockFilter[], data: SeccompData | Buffer): number {
  validateProgram(program);
  const packet = Buffer.isBuffer(data) ? data : encodeSeccompData(data);
  if (packet.length !== SECCOMP_DATA_SIZE) {
    throw new RangeError(`seccomp_data is ${SECCOMP_DATA_SIZE} bytes, got ${packet.length}`);
  }
  const memory = new Uint32Array(BPF_MEMWORDS);
  let a = 0;
  let x = 0;
  let pc = 0;
  // validateProgram guarantees forward jumps that stay inside and a final return.
  for (;;) {
    const insn = program[pc]!;
    const { code, k } = insn;
    pc += 1;
    switch (bpfClass(code)) {
      case BPF_LD:
        if (bpfMode(code) === BPF_ABS) {
          // seccomp_data is in the task's native byte order: little-endian on x86_64 and aarch64.
          a = packet.readUInt32LE(k);
        } else if (bpfMode(code) === BPF_LEN) {
          a = SECCOMP_DATA_SIZE;
        } else if (bpfMode(code) === BPF_IMM) {
          a = u32(k);
        } else if (bpfMode(code) === BPF_MEM) {
          a = memory[k]!;
        }
        break;
      case BPF_LDX:
        if (bpfMode(code) === BPF_LEN) x = SECCOMP_DATA_SIZE;
        else if (bpfMode(code) === BPF_IMM) x = u32(k);
        else if (bpfMode(code) === BPF_MEM) x = memory[k]!;
        break;
      case BPF_ST:
        memory[k] = a;
        break;
      case BPF_STX:
        memory[k] = x;
        break;
      case BPF_ALU: {
        const result = alu(bpfOp(code), a, bpfSrc(code) === BPF_K ? u32(k) : x);
        // A division by X = 0 ends a classic program with 0 (bpf_convert_filter() in
        // net/core/filter.c), which seccomp reads as SECCOMP_RET_KILL_THREAD.
        if (result === 'divide-by-zero') return 0;
        a = result;
        break;
      }
      case BPF_JMP:
        if (bpfOp(code) === BPF_JA) {
          pc += u32(k);
        } else {
          const operand = bpfSrc(code) === BPF_K ? u32(k) : x;
          pc += jumpTaken(bpfOp(code), a, operand) ? insn.jt : insn.jf;
        }
        break;
      case BPF_RET:
        return bpfRval(code) === BPF_K ? u32(k) : a;
      case BPF_MISC:
        if (bpfMiscOp(code) === BPF_TAX) x = a;
        else a = x;
        break;
    }
  }
}
