import { BPF_MAXINSNS, SECCOMP_DATA_OFFSETS } from '@sandlock/sys';
import { describe, expect, it } from 'vitest';
import { Assembler, BpfProgramError, bpf, runFilter } from '../src/index.js';
import { raw } from './support/seccomp-data.js';

const { BPF_JMP, BPF_JEQ, BPF_JGT, BPF_JA, BPF_K, BPF_LD, BPF_IMM, BPF_ALU, BPF_ADD } = bpf;
const JEQ = BPF_JMP | BPF_JEQ | BPF_K;

/** Pads with `count` harmless instructions (A += 0). */
function filler(asm: Assembler, count: number): void {
  for (let i = 0; i < count; i++) asm.statement(BPF_ALU | BPF_ADD | BPF_K, 0);
}

/** A program returning 1 when nr == 7 and 2 otherwise, with `gap` instructions before the targets. */
function farBranch(gap: number) {
  const asm = new Assembler();
  const yes = asm.label('yes');
  const no = asm.label('no');
  asm.load(SECCOMP_DATA_OFFSETS.nr);
  asm.jump(JEQ, 7, yes, no);
  asm.ret(3); // unreachable
  filler(asm, gap);
  asm.place(yes).ret(1);
  asm.place(no).ret(2);
  return asm.assemble();
}

describe('Assembler', () => {
  it('resolves labels and next into u8 offsets', () => {
    const asm = new Assembler();
    const done = asm.label('done');
    asm.load(SECCOMP_DATA_OFFSETS.nr);
    asm.jump(JEQ, 1, 'next', done);
    asm.ret(10);
    asm.place(done).ret(20);
    const program = asm.assemble();
    expect(program[1]).toMatchObject({ jt: 0, jf: 1 });
    expect(runFilter(program, raw(0, 1))).toBe(10);
    expect(runFilter(program, raw(0, 2))).toBe(20);
  });

  it('needs no trampoline for a jump of exactly 255', () => {
    // The jump is at pc 1, the unreachable ret at 2, fillers at 3..255, "yes" at 256, "no" at
    // 257: offsets 254 and 255.
    const program = farBranch(253);
    expect(program[1]).toMatchObject({ jt: 254, jf: 255 });
    expect(program.some((insn) => insn.code === (BPF_JMP | BPF_JA))).toBe(false);
    expect(runFilter(program, raw(0, 7))).toBe(1);
    expect(runFilter(program, raw(0, 8))).toBe(2);
  });

  it('adds a trampoline for a jump of 256, which can push the other branch out of reach', () => {
    // "no" is 256 away and gets a trampoline; that one instruction moves "yes" to 256 as well.
    const program = farBranch(254);
    expect(program.filter((insn) => insn.code === (BPF_JMP | BPF_JA))).toHaveLength(2);
    expect(runFilter(program, raw(0, 7))).toBe(1);
    expect(runFilter(program, raw(0, 8))).toBe(2);
  });

  it('inserts JA trampolines for conditional jumps beyond 255 instructions', () => {
    for (const gap of [255, 256, 300, 1000, 3000]) {
      const program = farBranch(gap);
      const trampolines = program.filter((insn) => insn.code === (BPF_JMP | BPF_JA));
      expect(trampolines.length, `gap ${gap}`).toBe(2);
      expect(runFilter(program, raw(0, 7)), `gap ${gap}`).toBe(1);
      expect(runFilter(program, raw(0, 8)), `gap ${gap}`).toBe(2);
    }
  });

  it('keeps the near branch direct when only one target is far', () => {
    const asm = new Assembler();
    const far = asm.label('far');
    asm.load(SECCOMP_DATA_OFFSETS.nr);
    asm.jump(BPF_JMP | BPF_JGT | BPF_K, 100, far, 'next');
    asm.ret(5);
    filler(asm, 400);
    asm.place(far).ret(6);
    const program = asm.assemble();
    expect(program.filter((insn) => insn.code === (BPF_JMP | BPF_JA))).toHaveLength(1);
    expect(runFilter(program, raw(0, 101))).toBe(6);
    expect(runFilter(program, raw(0, 100))).toBe(5);
  });

  it('converges when trampolines push other jumps out of reach', () => {
    // 200 branches, each to its own return far below: every insertion lengthens the others.
    const asm = new Assembler();
    const targets = Array.from({ length: 200 }, (_, i) => asm.label(`t${i}`));
    asm.load(SECCOMP_DATA_OFFSETS.nr);
    targets.forEach((target, i) => {
      asm.jump(JEQ, i, target, 'next');
    });
    asm.ret(0xffff);
    filler(asm, 100);
    targets.forEach((target, i) => {
      asm.place(target).ret(i);
    });
    const program = asm.assemble();
    for (const nr of [0, 1, 50, 199]) expect(runFilter(program, raw(0, nr))).toBe(nr);
    expect(runFilter(program, raw(0, 200))).toBe(0xffff);
  });

  it(`refuses programs over BPF_MAXINSNS (${BPF_MAXINSNS}) with a clear error`, () => {
    const asm = new Assembler();
    filler(asm, BPF_MAXINSNS);
    asm.ret(0);
    expect(() => asm.assemble()).toThrow(BpfProgramError);
    expect(() => asm.assemble()).toThrow(/4097 instructions.*at most 4096 \(BPF_MAXINSNS\)/);
  });

  it('accepts exactly BPF_MAXINSNS instructions', () => {
    const asm = new Assembler();
    filler(asm, BPF_MAXINSNS - 1);
    asm.ret(9);
    expect(asm.assemble()).toHaveLength(BPF_MAXINSNS);
  });

  it('refuses backward jumps, unplaced and twice-placed labels', () => {
    const back = new Assembler();
    const top = back.label('top');
    back.place(top).load(0).jump(JEQ, 0, top, 'next').ret(0);
    expect(() => back.assemble()).toThrow(/jump back to label 'top'/);

    const unplaced = new Assembler();
    unplaced.load(0).goto(unplaced.label('nowhere')).ret(0);
    expect(() => unplaced.assemble()).toThrow(/'nowhere' is jumped to but never placed/);

    const twice = new Assembler();
    const label = twice.label('twice');
    twice.place(label);
    expect(() => twice.place(label)).toThrow(/placed twice/);

    const atEnd = new Assembler();
    const end = atEnd.label('end');
    atEnd.load(0).jump(JEQ, 0, end, 'next').ret(0).place(end);
    expect(() => atEnd.assemble()).toThrow(/after the last instruction/);
  });

  it('refuses a program that does not end in a return', () => {
    const asm = new Assembler();
    asm.statement(BPF_LD | BPF_IMM, 1);
    expect(() => asm.assemble()).toThrow(/last instruction must be a return/);
  });
});
