import { encodeSeccompData, type SockFilter } from '@sandlock/sys';
import { describe, expect, it } from 'vitest';
import { BpfProgramError, bpf, runFilter, validateProgram } from '../src/index.js';
import { raw } from './support/seccomp-data.js';

const b = bpf;
const stmt = (code: number, k = 0): SockFilter => ({ code, jt: 0, jf: 0, k });
const jump = (code: number, k: number, jt: number, jf: number): SockFilter => ({ code, jt, jf, k });
const RET_A = stmt(b.BPF_RET | b.BPF_A);
const retK = (k: number) => stmt(b.BPF_RET | b.BPF_K, k);
const ldImm = (k: number) => stmt(b.BPF_LD | b.BPF_IMM, k);
const ldxImm = (k: number) => stmt(b.BPF_LDX | b.BPF_IMM, k);
const alu = (op: number, src: number, k = 0) => stmt(b.BPF_ALU | op | src, k);

const data = raw(0xc000003e, 42, [0x1122334455667788n, 7]);
const run = (...program: SockFilter[]) => runFilter(program, data);

describe('runFilter', () => {
  it('loads seccomp_data words little-endian, and the length', () => {
    const ld = (k: number) => stmt(b.BPF_LD | b.BPF_W | b.BPF_ABS, k);
    expect(run(ld(0), RET_A)).toBe(42);
    expect(run(ld(4), RET_A)).toBe(0xc000003e);
    expect(run(ld(16), RET_A)).toBe(0x55667788);
    expect(run(ld(20), RET_A)).toBe(0x11223344);
    expect(run(ld(24), RET_A)).toBe(7);
    expect(run(stmt(b.BPF_LD | b.BPF_W | b.BPF_LEN), RET_A)).toBe(64);
    expect(run(stmt(b.BPF_LDX | b.BPF_W | b.BPF_LEN), stmt(b.BPF_MISC | b.BPF_TXA), RET_A)).toBe(
      64,
    );
    expect(runFilter([ld(0), RET_A], encodeSeccompData(data))).toBe(42);
  });

  it('computes 32-bit unsigned ALU results with K and X', () => {
    const cases: [number, number, number, number][] = [
      [b.BPF_ADD, 0xffffffff, 2, 1],
      [b.BPF_SUB, 1, 2, 0xffffffff],
      [b.BPF_MUL, 0x10000, 0x10001, 0x10000],
      [b.BPF_DIV, 0xffffffff, 16, 0x0fffffff],
      [b.BPF_OR, 0xf0, 0x0f, 0xff],
      [b.BPF_AND, 0xf0f0, 0xff00, 0xf000],
      [b.BPF_XOR, 0xff, 0x0f, 0xf0],
      [b.BPF_LSH, 0x80000001, 1, 2],
      [b.BPF_RSH, 0x80000000, 31, 1],
    ];
    for (const [op, a, k, expected] of cases) {
      expect(run(ldImm(a), alu(op, b.BPF_K, k), RET_A), `op 0x${op.toString(16)} K`).toBe(expected);
      expect(run(ldImm(a), ldxImm(k), alu(op, b.BPF_X), RET_A), `op 0x${op.toString(16)} X`).toBe(
        expected,
      );
    }
    expect(run(ldImm(1), alu(b.BPF_NEG, 0), RET_A)).toBe(0xffffffff);
    expect(run(ldImm(1), ldxImm(32), alu(b.BPF_LSH, b.BPF_X), RET_A)).toBe(0);
  });

  it('ends with 0 (SECCOMP_RET_KILL_THREAD) on division by X = 0', () => {
    expect(run(ldImm(5), ldxImm(0), alu(b.BPF_DIV, b.BPF_X), retK(0x7fff0000))).toBe(0);
  });

  it('takes unsigned conditional jumps with K and X', () => {
    const JMP = b.BPF_JMP;
    const branch = (op: number, a: number, k: number) =>
      run(ldImm(a), jump(JMP | op | b.BPF_K, k, 0, 1), retK(1), retK(0));
    const branchX = (op: number, a: number, x: number) =>
      run(ldImm(a), ldxImm(x), jump(JMP | op | b.BPF_X, 0, 0, 1), retK(1), retK(0));
    for (const test of [branch, branchX]) {
      expect(test(b.BPF_JEQ, 5, 5)).toBe(1);
      expect(test(b.BPF_JEQ, 5, 6)).toBe(0);
      expect(test(b.BPF_JGT, 0x80000000, 1)).toBe(1); // unsigned: no negative numbers
      expect(test(b.BPF_JGT, 1, 1)).toBe(0);
      expect(test(b.BPF_JGE, 1, 1)).toBe(1);
      expect(test(b.BPF_JGE, 0, 1)).toBe(0);
      expect(test(b.BPF_JSET, 0b1010, 0b0010)).toBe(1);
      expect(test(b.BPF_JSET, 0b1010, 0b0101)).toBe(0);
    }
    expect(run(stmt(JMP | b.BPF_JA, 1), retK(1), retK(2))).toBe(2);
  });

  it('keeps scratch memory and moves between A and X', () => {
    expect(
      run(
        ldImm(11),
        stmt(b.BPF_ST, 3),
        ldxImm(22),
        stmt(b.BPF_STX, 15),
        stmt(b.BPF_LD | b.BPF_MEM, 15),
        stmt(b.BPF_LDX | b.BPF_MEM, 3),
        alu(b.BPF_SUB, b.BPF_X),
        stmt(b.BPF_MISC | b.BPF_TAX),
        ldImm(0),
        stmt(b.BPF_MISC | b.BPF_TXA),
        RET_A,
      ),
    ).toBe(11);
  });
});

describe('validateProgram refuses what seccomp(2) refuses', () => {
  const refuses = (program: SockFilter[], message: RegExp) => {
    expect(() => validateProgram(program)).toThrow(BpfProgramError);
    expect(() => validateProgram(program)).toThrow(message);
  };

  it('checks length, opcodes, loads and constants', () => {
    refuses([], /empty/);
    refuses([stmt(b.BPF_LD | b.BPF_W | b.BPF_ABS, 2), RET_A], /aligned/);
    refuses([stmt(b.BPF_LD | b.BPF_W | b.BPF_ABS, 64), RET_A], /aligned/);
    refuses([stmt(b.BPF_LD | 0x08 | b.BPF_ABS, 0), RET_A], /not allowed/); // half-word load
    refuses([ldImm(1), alu(b.BPF_MOD, b.BPF_K, 3), RET_A], /not allowed/);
    refuses([ldImm(1), alu(b.BPF_DIV, b.BPF_K, 0), RET_A], /division by the constant 0/);
    refuses([ldImm(1), alu(b.BPF_LSH, b.BPF_K, 32), RET_A], /shift by 32/);
    refuses([stmt(b.BPF_ST, 16), RET_A], /scratch memory index 16/);
  });

  it('checks jumps and the final return', () => {
    refuses([stmt(b.BPF_JMP | b.BPF_JA, 1), RET_A], /leaves the program/);
    refuses([jump(b.BPF_JMP | b.BPF_JEQ | b.BPF_K, 0, 0, 1), RET_A], /leaves the program/);
    refuses([ldImm(1)], /last instruction must be a return/);
  });

  it('refuses reading scratch memory that is not written on every path', () => {
    refuses([stmt(b.BPF_LD | b.BPF_MEM, 0), RET_A], /M\[0\] is read before it is written/);
    refuses(
      [
        jump(b.BPF_JMP | b.BPF_JEQ | b.BPF_K, 0, 0, 1),
        stmt(b.BPF_ST, 0), // only on the true path
        stmt(b.BPF_LD | b.BPF_MEM, 0),
        RET_A,
      ],
      /M\[0\]/,
    );
    expect(() =>
      validateProgram([
        stmt(b.BPF_ST, 0),
        jump(b.BPF_JMP | b.BPF_JEQ | b.BPF_K, 0, 0, 0),
        stmt(b.BPF_LD | b.BPF_MEM, 0),
        RET_A,
      ]),
    ).not.toThrow();
  });
});
