import { BPF_MAXINSNS, type SockFilter } from '@sandlock/sys';
import { BPF_ABS, BPF_JA, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W } from './opcodes.js';
import { BpfProgramError, isConditionalJump, validateProgram } from './validate.js';

/** A position in the program, created by {@link Assembler.label} and placed once. */
export interface Label {
  readonly name: string;
}

/** Where a conditional jump goes: a label, or the next instruction. */
export type JumpTarget = Label | 'next';

/** The largest offset of a conditional jump: `jt`/`jf` are u8 (struct sock_filter). */
const MAX_CONDITIONAL_OFFSET = 255;

type Node =
  | { kind: 'statement'; code: number; k: number }
  | {
      kind: 'branch';
      code: number;
      k: number;
      onTrue: JumpTarget;
      onFalse: JumpTarget;
      /** Set once a target is out of u8 reach: the branch then hops over a `JA` to it. */
      trampolineTrue: boolean;
      trampolineFalse: boolean;
    }
  | { kind: 'goto'; target: Label }
  | { kind: 'place'; label: Label };

const nodeSize = (node: Node): number => {
  switch (node.kind) {
    case 'statement':
    case 'goto':
      return 1;
    case 'branch':
      return 1 + Number(node.trampolineTrue) + Number(node.trampolineFalse);
    case 'place':
      return 0;
  }
};

const u32 = (value: number): number => {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0xffffffff) {
    throw new RangeError(`BPF constant ${value} does not fit in 32 bits`);
  }
  return value >>> 0;
};

/**
 * A classic-BPF assembler with labels. Jumps name labels; {@link assemble} lays the program out,
 * and where a conditional jump's target is more than 255 instructions ahead it inserts a `JA`
 * trampoline (32-bit offset) right after the jump. Jumps only go forward, as in all classic BPF.
 */
export class Assembler {
  readonly #nodes: Node[] = [];
  readonly #placed = new Set<Label>();
  readonly #labels = new Set<Label>();

  /** A new label; `name` only shows in error messages. */
  label(name = `L${this.#labels.size}`): Label {
    const label: Label = Object.freeze({ name });
    this.#labels.add(label);
    return label;
  }

  /** Places `label` at the next instruction. */
  place(label: Label): this {
    if (!this.#labels.has(label))
      throw new Error(`label '${label.name}' belongs to another assembler`);
    if (this.#placed.has(label)) throw new Error(`label '${label.name}' is placed twice`);
    this.#placed.add(label);
    this.#nodes.push({ kind: 'place', label });
    return this;
  }

  /** Any non-jump instruction: `code` with the constant `k`. */
  statement(code: number, k = 0): this {
    if ((code & 0x07) === BPF_JMP) throw new Error('use jump() or goto() for jumps');
    this.#nodes.push({ kind: 'statement', code, k: u32(k) });
    return this;
  }

  /** A conditional jump (BPF_JMP | JEQ/JGT/JGE/JSET | K/X). */
  jump(code: number, k: number, onTrue: JumpTarget, onFalse: JumpTarget): this {
    if (!isConditionalJump(code))
      throw new Error(`0x${code.toString(16)} is not a conditional jump`);
    this.#nodes.push({
      kind: 'branch',
      code,
      k: u32(k),
      onTrue,
      onFalse,
      trampolineTrue: false,
      trampolineFalse: false,
    });
    return this;
  }

  /** An unconditional jump (BPF_JA), which reaches any later instruction. */
  goto(target: Label): this {
    this.#nodes.push({ kind: 'goto', target });
    return this;
  }

  /** A = seccomp_data word at `offset`. */
  load(offset: number): this {
    return this.statement(BPF_LD | BPF_W | BPF_ABS, offset);
  }

  /** Ends the filter with the action value `value`. */
  ret(value: number): this {
    return this.statement(BPF_RET | BPF_K, value);
  }

  /**
   * Lays the program out, adding trampolines until every conditional jump is in reach, and
   * checks the result as the kernel would (see {@link validateProgram}). Programs longer than
   * BPF_MAXINSNS (4096) are refused with a {@link BpfProgramError}.
   */
  assemble(): SockFilter[] {
    for (const label of this.#targets()) {
      if (!this.#placed.has(label)) {
        throw new Error(`label '${label.name}' is jumped to but never placed`);
      }
    }
    // Adding a trampoline only lengthens jumps, so this converges: a jump that needed one keeps it.
    let positions = this.#layout();
    for (let changed = true; changed; ) {
      changed = false;
      for (const [index, node] of this.#nodes.entries()) {
        if (node.kind !== 'branch') continue;
        const pc = positions.nodes[index]!;
        const offsetTo = (target: JumpTarget) =>
          target === 'next' ? 0 : this.#offset(positions, pc, target);
        if (!node.trampolineTrue && offsetTo(node.onTrue) > MAX_CONDITIONAL_OFFSET) {
          node.trampolineTrue = true;
          changed = true;
        }
        if (!node.trampolineFalse && offsetTo(node.onFalse) > MAX_CONDITIONAL_OFFSET) {
          node.trampolineFalse = true;
          changed = true;
        }
      }
      if (changed) positions = this.#layout();
    }
    if (positions.length > BPF_MAXINSNS) {
      throw new BpfProgramError(
        undefined,
        `the filter needs ${positions.length} instructions; the kernel accepts at most ${BPF_MAXINSNS} (BPF_MAXINSNS)`,
      );
    }
    const program = this.#emit(positions);
    validateProgram(program);
    return program;
  }

  *#targets(): Iterable<Label> {
    for (const node of this.#nodes) {
      if (node.kind === 'goto') yield node.target;
      if (node.kind === 'branch') {
        if (node.onTrue !== 'next') yield node.onTrue;
        if (node.onFalse !== 'next') yield node.onFalse;
      }
    }
  }

  #layout(): { nodes: number[]; labels: Map<Label, number>; length: number } {
    const nodes: number[] = [];
    const labels = new Map<Label, number>();
    let pc = 0;
    for (const node of this.#nodes) {
      nodes.push(pc);
      if (node.kind === 'place') labels.set(node.label, pc);
      pc += nodeSize(node);
    }
    return { nodes, labels, length: pc };
  }

  /** Instructions skipped by a jump at `pc` to `label` (the kernel counts from pc + 1). */
  #offset(positions: { labels: Map<Label, number>; length: number }, pc: number, label: Label) {
    const target = positions.labels.get(label)!;
    if (target <= pc)
      throw new Error(`jump back to label '${label.name}': BPF jumps only go forward`);
    if (target >= positions.length) {
      throw new Error(`label '${label.name}' is placed after the last instruction`);
    }
    return target - pc - 1;
  }

  #emit(positions: { nodes: number[]; labels: Map<Label, number>; length: number }): SockFilter[] {
    const program: SockFilter[] = [];
    for (const [index, node] of this.#nodes.entries()) {
      const pc = positions.nodes[index]!;
      switch (node.kind) {
        case 'place':
          break;
        case 'statement':
          program.push({ code: node.code, jt: 0, jf: 0, k: node.k });
          break;
        case 'goto':
          program.push({
            code: BPF_JMP | BPF_JA,
            jt: 0,
            jf: 0,
            k: this.#offset(positions, pc, node.target),
          });
          break;
        case 'branch': {
          // Layout: the jump, then the true trampoline, then the false trampoline (each optional).
          const after = nodeSize(node) - 1;
          const offsetTo = (target: JumpTarget) =>
            target === 'next' ? after : this.#offset(positions, pc, target);
          const jt = node.trampolineTrue ? 0 : offsetTo(node.onTrue);
          const jf = node.trampolineFalse ? Number(node.trampolineTrue) : offsetTo(node.onFalse);
          program.push({ code: node.code, jt, jf, k: node.k });
          let trampolinePc = pc + 1;
          for (const [needed, target] of [
            [node.trampolineTrue, node.onTrue],
            [node.trampolineFalse, node.onFalse],
          ] as const) {
            if (!needed || target === 'next') continue;
            const k = this.#offset(positions, trampolinePc, target);
            program.push({ code: BPF_JMP | BPF_JA, jt: 0, jf: 0, k });
            trampolinePc += 1;
          }
          break;
        }
      }
    }
    return program;
  }
}
