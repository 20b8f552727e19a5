import {
  type Arch,
  AUDIT_ARCH,
  encodeSockFilters,
  SECCOMP_DATA_OFFSETS,
  type SockFilter,
  syscallNumber,
  X32_SYSCALL_BIT,
} from '@sandlock/sys';
import { Assembler, type Label } from './bpf/assembler.js';
import { BPF_ALU, BPF_AND, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_JSET, BPF_K } from './bpf/opcodes.js';
import { type Action, actionValue, killProcess, sameAction } from './rules/actions.js';
import { type MatcherSyscall, type NormalizedMatcher, normalizeMatcher } from './rules/matchers.js';
import type { Rule, RuleSet } from './rules/rule-set.js';

/** A compiled filter: the instructions, and the packed `struct sock_filter` array seccomp(2) takes. */
export interface CompiledFilter {
  readonly arch: Arch;
  readonly instructions: readonly SockFilter[];
  readonly program: Buffer;
}

interface SimpleRule {
  when: NormalizedMatcher[];
  action: Action;
}

const JEQ = BPF_JMP | BPF_JEQ | BPF_K;
const JGE = BPF_JMP | BPF_JGE | BPF_K;
const JSET = BPF_JMP | BPF_JSET | BPF_K;
const AND = BPF_ALU | BPF_AND | BPF_K;
const WORD = 0xffffffffn;

/** Below this many syscalls a dispatch node compares one by one instead of splitting the range. */
const LINEAR_DISPATCH = 4;

/**
 * `seccomp_data.args[i]` is a u64 in the task's byte order (include/uapi/linux/seccomp.h). Both
 * architectures Sandlock supports are little-endian: the low word comes first.
 */
const argLowWord = (arg: number): number => SECCOMP_DATA_OFFSETS.args + 8 * arg;
const argHighWord = (arg: number): number => argLowWord(arg) + 4;

/**
 * Drops what cannot change a verdict: rules after the first unconditional one, and trailing rules
 * whose action is the default anyway.
 */
function simplify(
  rules: readonly Rule[],
  defaultAction: Action,
  where: MatcherSyscall,
): SimpleRule[] {
  const simple: SimpleRule[] = [];
  for (const rule of rules) {
    const when = (rule.when ?? []).map((matcher) => normalizeMatcher(matcher, where));
    simple.push({ when, action: rule.action });
    if (simple.at(-1)!.when.length === 0) break;
  }
  while (simple.length > 0 && sameAction(simple.at(-1)!.action, defaultAction)) simple.pop();
  return simple;
}

/** A key equal for rule lists that compile to the same code, so they share one block. */
function blockKey(rules: readonly SimpleRule[]): string {
  return JSON.stringify(rules, (_key, value) =>
    typeof value === 'bigint' ? `0x${value.toString(16)}` : value,
  );
}

/** `(word & mask) == value` on one 32-bit half; falls through on a match. */
function emitWordEquals(asm: Assembler, offset: number, mask: number, value: number, fail: Label) {
  if (mask === 0) return; // value ⊆ mask, so 0 == 0: always true
  asm.load(offset);
  if (mask !== 0xffffffff) asm.statement(AND, mask);
  asm.jump(JEQ, value, 'next', fail);
}

/** Emits code that falls through when `matcher` holds and jumps to `fail` otherwise. */
function emitMatcher(asm: Assembler, matcher: NormalizedMatcher, fail: Label): void {
  const low = argLowWord(matcher.arg);
  const high = argHighWord(matcher.arg);
  const maskLow = Number(matcher.mask & WORD);
  const maskHigh = matcher.width === 64 ? Number(matcher.mask >> 32n) : 0;
  switch (matcher.op) {
    case 'eq':
      emitWordEquals(asm, high, maskHigh, Number(matcher.value >> 32n), fail);
      emitWordEquals(asm, low, maskLow, Number(matcher.value & WORD), fail);
      return;
    case 'anyBits': {
      const match = asm.label('any-bit-set');
      const words = [
        { offset: high, mask: maskHigh },
        { offset: low, mask: maskLow },
      ].filter((word) => word.mask !== 0);
      words.forEach(({ offset, mask }, index) => {
        asm.load(offset);
        asm.jump(JSET, mask, match, index === words.length - 1 ? fail : 'next');
      });
      asm.place(match);
      return;
    }
    case 'in': {
      // Values sharing a high word share its comparison.
      const byHigh = new Map<number, number[]>();
      for (const value of matcher.values) {
        const key = Number(value >> 32n);
        byHigh.set(key, [...(byHigh.get(key) ?? []), Number(value & WORD)]);
      }
      const match = asm.label('in-set');
      const groups = [...byHigh];
      groups.forEach(([highValue, lowValues], index) => {
        const last = index === groups.length - 1;
        const nextGroup = last ? fail : asm.label('next-high-word');
        emitWordEquals(asm, high, maskHigh, highValue, nextGroup);
        if (maskLow === 0) {
          asm.goto(match);
        } else {
          asm.load(low);
          if (maskLow !== 0xffffffff) asm.statement(AND, maskLow);
          // The high words of the groups differ: once one matched, no other group can.
          lowValues.forEach((lowValue, i) => {
            asm.jump(JEQ, lowValue, match, i === lowValues.length - 1 ? fail : 'next');
          });
        }
        if (!last) asm.place(nextGroup);
      });
      asm.place(match);
      return;
    }
  }
}

function emitBlock(asm: Assembler, rules: readonly SimpleRule[], defaultAction: Action): void {
  for (const rule of rules) {
    const next = asm.label('next-rule');
    for (const matcher of rule.when) emitMatcher(asm, matcher, next);
    asm.ret(actionValue(rule.action));
    asm.place(next);
    if (rule.when.length === 0) return;
  }
  asm.ret(actionValue(defaultAction));
}

interface DispatchEntry {
  nr: number;
  block: Label;
}

/** Branches on A = nr to each entry's block (a binary search over sorted numbers), else to `miss`. */
function emitDispatch(asm: Assembler, entries: readonly DispatchEntry[], miss: Label): void {
  if (entries.length === 0) {
    asm.goto(miss);
    return;
  }
  if (entries.length <= LINEAR_DISPATCH) {
    entries.forEach(({ nr, block }, index) => {
      asm.jump(JEQ, nr, block, index === entries.length - 1 ? miss : 'next');
    });
    return;
  }
  const middle = Math.floor(entries.length / 2);
  const upper = asm.label('upper-half');
  asm.jump(JGE, entries[middle]!.nr, upper, 'next');
  emitDispatch(asm, entries.slice(0, middle), miss);
  asm.place(upper);
  emitDispatch(asm, entries.slice(middle), miss);
}

/**
 * Compiles a {@link RuleSet} to a seccomp program:
 *
 *   1. `arch` must be the rule set's ABI, else KILL_PROCESS;
 *   2. on x86_64, `nr >= X32_SYSCALL_BIT` (x32 calls, which arrive with AUDIT_ARCH_X86_64 and
 *      would otherwise slip past every rule keyed by x86_64 numbers) → KILL_PROCESS;
 *   3. a binary search on `nr` jumps to the syscall's block;
 *   4. a block tries its rules in order and returns the first matching rule's action;
 *   5. everything else gets the default action.
 *
 * Syscall names are resolved with the generated tables of @sandlock/sys: a name unknown on the
 * arch is an error. Identical blocks are emitted once.
 */
export function compileRuleSet(ruleSet: RuleSet): CompiledFilter {
  const { arch, defaultAction } = ruleSet;
  const asm = new Assembler();
  const kill = asm.label('kill');
  const fallback = asm.label('default');

  const blocks = new Map<string, { label: Label; rules: SimpleRule[] }>();
  const entries: DispatchEntry[] = [];
  const seen = new Map<number, string>();
  for (const [name, rules] of ruleSet.syscalls) {
    const nr = syscallNumber(name, arch);
    const other = seen.get(nr);
    if (other !== undefined)
      throw new Error(`syscalls '${other}' and '${name}' share number ${nr} on ${arch}`);
    seen.set(nr, name);
    const simple = simplify(rules, defaultAction, { syscall: name, arch });
    if (simple.length === 0) continue;
    const key = blockKey(simple);
    let block = blocks.get(key);
    if (block === undefined) {
      block = { label: asm.label(`block-${name}`), rules: simple };
      blocks.set(key, block);
    }
    entries.push({ nr, block: block.label });
  }
  entries.sort((a, b) => a.nr - b.nr);

  asm.load(SECCOMP_DATA_OFFSETS.arch);
  asm.jump(JEQ, AUDIT_ARCH[arch], 'next', kill);
  asm.load(SECCOMP_DATA_OFFSETS.nr);
  if (arch === 'x86_64') {
    // arch/x86/entry/syscall_64.c dispatches numbers with __X32_SYSCALL_BIT to the x32 table
    // (when CONFIG_X86_X32_ABI is set), and seccomp sees them with AUDIT_ARCH_X86_64. Every
    // number from the bit up is either x32 or invalid (the kernel answers ENOSYS), so the whole
    // range goes; that includes nr = -1, which no plain program issues.
    asm.jump(JGE, X32_SYSCALL_BIT, kill, 'next');
  }
  emitDispatch(asm, entries, fallback);
  asm.place(fallback);
  asm.ret(actionValue(defaultAction));
  for (const { label, rules } of blocks.values()) {
    asm.place(label);
    emitBlock(asm, rules, defaultAction);
  }
  asm.place(kill);
  asm.ret(actionValue(killProcess));

  const instructions = Object.freeze(asm.assemble());
  return Object.freeze({ arch, instructions, program: encodeSockFilters(instructions) });
}
