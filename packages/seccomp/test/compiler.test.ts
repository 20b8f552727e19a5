import {
  type Arch,
  AUDIT_ARCH,
  type SeccompData,
  syscallNames,
  syscallNumber,
} from '@sandlock/sys';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Action,
  type ArgMatcher,
  actionValue,
  allow,
  argAnyBits,
  argEquals,
  argIn,
  BpfProgramError,
  compileRuleSet,
  errno,
  killProcess,
  normalizeMatcher,
  notify,
  type Rule,
  type RuleSet,
  RuleSetBuilder,
  runFilter,
} from '../src/index.js';
import { evaluateRules } from './support/reference-evaluator.js';
import { call, raw } from './support/seccomp-data.js';

const ALLOW = actionValue(allow);
const KILL = actionValue(killProcess);
const NOTIFY = actionValue(notify);
const EPERM = actionValue(errno(1));

function ruleSet(
  arch: Arch,
  rules: Record<string, Rule[]>,
  defaultAction: Action = allow,
): RuleSet {
  const builder = new RuleSetBuilder(arch, defaultAction);
  for (const [name, list] of Object.entries(rules)) builder.add(name, ...list);
  return builder.build();
}

function verdict(set: RuleSet, data: SeccompData): number {
  return runFilter(compileRuleSet(set).instructions, data);
}

describe('compileRuleSet: program shape', () => {
  it('kills other ABIs and x32 calls before any rule', () => {
    const set = ruleSet('x86_64', { getpid: [{ action: allow }] }, errno(38));
    const getpid = syscallNumber('getpid', 'x86_64');
    expect(verdict(set, raw(AUDIT_ARCH.x86_64, getpid))).toBe(ALLOW);
    expect(verdict(set, call('x86_64', 'getppid'))).toBe(actionValue(errno(38)));
    expect(verdict(set, raw(AUDIT_ARCH.i386, 20))).toBe(KILL);
    expect(verdict(set, raw(AUDIT_ARCH.aarch64, getpid))).toBe(KILL);
    expect(verdict(set, raw(AUDIT_ARCH.x86_64, 0x40000000 | getpid))).toBe(KILL);
    expect(verdict(set, raw(AUDIT_ARCH.x86_64, 0x40000000))).toBe(KILL);
    expect(verdict(set, raw(AUDIT_ARCH.x86_64, -1))).toBe(KILL);
  });

  it('has no x32 check on aarch64, where the bit means nothing', () => {
    const set = ruleSet('aarch64', {}, allow);
    expect(verdict(set, raw(AUDIT_ARCH.aarch64, 0x40000000 | 172))).toBe(ALLOW);
    expect(verdict(set, raw(AUDIT_ARCH.x86_64, 39))).toBe(KILL);
  });

  it('tries rules in order and falls back to the default', () => {
    const set = ruleSet('x86_64', {
      socket: [
        { when: [argEquals(0, 32, 16)], action: errno(1) },
        { when: [argEquals(0, 32, 2), argEquals(1, 32, 2, 0xf)], action: errno(2) },
        { action: notify },
        { action: errno(3) }, // unreachable
      ],
    });
    expect(verdict(set, call('x86_64', 'socket', [16, 1]))).toBe(EPERM);
    expect(verdict(set, call('x86_64', 'socket', [2, 2 | 0x80000]))).toBe(actionValue(errno(2)));
    expect(verdict(set, call('x86_64', 'socket', [2, 1]))).toBe(NOTIFY);
    expect(verdict(set, call('x86_64', 'read'))).toBe(ALLOW);
  });

  it('compares 64-bit arguments on both halves', () => {
    const set = ruleSet('x86_64', {
      write: [{ when: [argEquals(2, 64, 0x1_0000_0005n)], action: errno(1) }],
      read: [
        { when: [argIn(2, 64, [5, 0x2_0000_0005n, 0xffff_ffff_ffff_ffffn])], action: errno(1) },
      ],
      mmap: [{ when: [argAnyBits(3, 64, 0x1_0000_0001n)], action: errno(1) }],
    });
    expect(verdict(set, call('x86_64', 'write', [0, 0, 0x1_0000_0005n]))).toBe(EPERM);
    expect(verdict(set, call('x86_64', 'write', [0, 0, 5]))).toBe(ALLOW);
    expect(verdict(set, call('x86_64', 'write', [0, 0, 0x2_0000_0005n]))).toBe(ALLOW);
    expect(verdict(set, call('x86_64', 'read', [0, 0, 5]))).toBe(EPERM);
    expect(verdict(set, call('x86_64', 'read', [0, 0, 0x2_0000_0005n]))).toBe(EPERM);
    expect(verdict(set, call('x86_64', 'read', [0, 0, -1]))).toBe(EPERM);
    expect(verdict(set, call('x86_64', 'read', [0, 0, 0x1_0000_0005n]))).toBe(ALLOW);
    expect(verdict(set, call('x86_64', 'read', [0, 0, 0xffff_ffffn]))).toBe(ALLOW);
    expect(verdict(set, call('x86_64', 'mmap', [0, 0, 0, 0x1_0000_0000n]))).toBe(EPERM);
    expect(verdict(set, call('x86_64', 'mmap', [0, 0, 0, 1]))).toBe(EPERM);
    expect(verdict(set, call('x86_64', 'mmap', [0, 0, 0, 2]))).toBe(ALLOW);
  });

  it('ignores the upper half for 32-bit arguments', () => {
    const set = ruleSet('x86_64', {
      ioctl: [{ when: [argEquals(1, 32, 0x5412)], action: errno(1) }],
      openat: [{ when: [argEquals(0, 32, -100)], action: errno(1) }],
    });
    expect(verdict(set, call('x86_64', 'ioctl', [0, 0x5412]))).toBe(EPERM);
    expect(verdict(set, call('x86_64', 'ioctl', [0, 0x1_0000_5412n]))).toBe(EPERM);
    expect(verdict(set, call('x86_64', 'ioctl', [0, 0xffff_ffff_0000_5412n]))).toBe(EPERM);
    expect(verdict(set, call('x86_64', 'openat', [-100]))).toBe(EPERM);
    expect(verdict(set, call('x86_64', 'openat', [0xffff_ff9c]))).toBe(EPERM);
  });

  it('refuses unknown names and matchers that can never match', () => {
    expect(() => compileRuleSet(ruleSet('aarch64', { open: [{ action: errno(1) }] }))).toThrow(
      /unknown syscall 'open' on aarch64/,
    );
    const compile = (matcher: ArgMatcher) =>
      compileRuleSet(ruleSet('x86_64', { read: [{ when: [matcher], action: errno(1) }] }));
    expect(() => compile(argEquals(0, 32, 0x1_0000_0000n))).toThrow(/does not fit in 32 bits/);
    expect(() => compile(argEquals(0, 32, 3, 1))).toThrow(/outside the mask/);
    expect(() => compile(argIn(0, 64, []))).toThrow(/empty set/);
    expect(() => compile(argAnyBits(0, 64, 0))).toThrow(/empty mask/);
    expect(() => errno(4096)).toThrow(/outside 0..4095/);
  });

  it('reads a named argument at its index and width, on each architecture', () => {
    const program = (arch: Arch, when: ArgMatcher[]) =>
      compileRuleSet(ruleSet(arch, { clone: [{ when, action: errno(1) }] })).instructions;
    for (const arch of ['x86_64', 'aarch64'] as const) {
      // clone(2), NOTES: child_tid and tls trade places between the two.
      const tls = arch === 'x86_64' ? 4 : 3;
      expect(program(arch, [argEquals('tls', 0x1_0000_0000n)])).toEqual(
        program(arch, [argEquals(tls, 64, 0x1_0000_0000n)]),
      );
    }
    const set = ruleSet('x86_64', {
      openat: [
        { when: [argEquals('dirfd', -100), argAnyBits('flags', 0o200000)], action: errno(1) },
      ],
      socket: [{ when: [argIn('domain', [16, 17])], action: errno(1) }],
      getrandom: [{ when: [argEquals('buflen', 0x1_0000_0000n)], action: errno(1) }],
    });
    // `int` arguments: the low half only, as the kernel truncates them.
    expect(verdict(set, call('x86_64', 'openat', [0xffff_ff9c, 0, 0x1_0001_0000n]))).toBe(EPERM);
    expect(verdict(set, call('x86_64', 'openat', [0xffff_ff9c, 0, 0]))).toBe(ALLOW);
    expect(verdict(set, call('x86_64', 'socket', [0x1_0000_0010n]))).toBe(EPERM);
    expect(verdict(set, call('x86_64', 'socket', [2]))).toBe(ALLOW);
    // A 64-bit word: both halves.
    expect(verdict(set, call('x86_64', 'getrandom', [0, 0x1_0000_0000n]))).toBe(EPERM);
    expect(verdict(set, call('x86_64', 'getrandom', [0, 0]))).toBe(ALLOW);
  });

  it('refuses an argument name the syscall does not have, naming both', () => {
    const compile = (syscall: string, matcher: ArgMatcher) =>
      compileRuleSet(ruleSet('x86_64', { [syscall]: [{ when: [matcher], action: errno(1) }] }));
    expect(() => compile('socket', argEquals('famly', 2))).toThrow(
      "socket has no argument 'famly' on x86_64 (its arguments: domain, type, protocol)",
    );
    expect(() => compile('read', argEquals('fd', 0))).toThrow(
      /argument 'fd' of read: read has no argument names on x86_64/,
    );
    expect(() => compile('socket', { op: 'eq', arg: 'domain', width: 64, value: 2 })).toThrow(
      "argument 'domain' of socket is an int: width 32, not 64",
    );
    expect(() => normalizeMatcher(argEquals('domain', 2))).toThrow(/'domain' is named/);
    expect(
      normalizeMatcher(argEquals('domain', -1), { syscall: 'socket', arch: 'aarch64' }),
    ).toEqual({ op: 'eq', arg: 0, width: 32, mask: 0xffff_ffffn, value: 0xffff_ffffn });
  });

  it('shares identical blocks and drops rules that cannot change the verdict', () => {
    const one = compileRuleSet(ruleSet('x86_64', { mount: [{ action: errno(1) }] }));
    const many = compileRuleSet(
      ruleSet('x86_64', {
        mount: [{ action: errno(1) }],
        umount2: [{ action: errno(1) }],
        pivot_root: [{ action: errno(1) }],
        // Only allow rules under a default allow: nothing to emit.
        read: [{ when: [argEquals(0, 32, 1)], action: allow }, { action: allow }],
      }),
    );
    const returns = (program: typeof one) =>
      program.instructions.filter((insn) => insn.code === 0x06);
    expect(returns(many)).toHaveLength(returns(one).length);
    expect(many.instructions.length - one.instructions.length).toBe(2); // two more JEQs
  });

  it('stays correct when every syscall has its own block (trampolines in the dispatch)', () => {
    for (const arch of ['x86_64', 'aarch64'] as const) {
      const names = syscallNames(arch);
      const set = ruleSet(
        arch,
        Object.fromEntries(names.map((name, i) => [name, [{ action: errno(1 + (i % 4000)) }]])),
      );
      const { instructions } = compileRuleSet(set);
      expect(instructions.length).toBeGreaterThan(256);
      expect(instructions.some((insn) => insn.code === 0x05)).toBe(true); // JA trampolines
      for (const name of names) {
        const data = call(arch, name);
        expect(runFilter(instructions, data), name).toBe(evaluateRules(set, data));
      }
    }
  });

  it('refuses rule sets that need more than BPF_MAXINSNS instructions', () => {
    const values = Array.from({ length: 5000 }, (_, i) => i * 3);
    const set = ruleSet('x86_64', { ioctl: [{ when: [argIn(1, 32, values)], action: errno(1) }] });
    expect(() => compileRuleSet(set)).toThrow(BpfProgramError);
    expect(() => compileRuleSet(set)).toThrow(/at most 4096 \(BPF_MAXINSNS\)/);
  });
});

// --- property tests: compiled BPF agrees with the naive reading of the rules ---

/** Interesting 64-bit values: small numbers, word boundaries, sign bits. */
const INTERESTING = [
  0n,
  1n,
  2n,
  3n,
  0x10n,
  0x5412n,
  0x7fff_ffffn,
  0x8000_0000n,
  0xffff_ffffn,
  0x1_0000_0000n,
  0x1_0000_0001n,
  0x8000_0000_0000_0000n,
  0xffff_ffff_0000_0000n,
  0xffff_ffff_ffff_ffffn,
];
const u64 = fc.oneof(
  fc.constantFrom(...INTERESTING),
  fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn }),
  fc.bigInt({ min: 0n, max: 15n }),
);
const arch = fc.constantFrom<Arch>('x86_64', 'aarch64');
const width = fc.constantFrom<32 | 64>(32, 64);
const argIndex = fc.constantFrom<0 | 1 | 2 | 3 | 4 | 5>(0, 1, 2, 3, 4, 5);
const fit = (value: bigint, bits: 32 | 64) => BigInt.asUintN(bits, value);

const matcher: fc.Arbitrary<ArgMatcher> = fc.oneof(
  fc
    .record({ arg: argIndex, width, value: u64, mask: fc.option(u64, { nil: undefined }) })
    .map(({ arg, width, value, mask }) => {
      const m = mask === undefined ? undefined : fit(mask, width);
      const v = m === undefined ? fit(value, width) : fit(value, width) & m;
      return argEquals(arg, width, v, m);
    }),
  fc
    .record({
      arg: argIndex,
      width,
      values: fc.array(u64, { minLength: 1, maxLength: 6 }),
      mask: fc.option(u64, { nil: undefined }),
    })
    .map(({ arg, width, values, mask }) => {
      const m = mask === undefined ? undefined : fit(mask, width);
      return argIn(
        arg,
        width,
        values.map((v) => (m === undefined ? fit(v, width) : fit(v, width) & m)),
        m,
      );
    }),
  fc
    .record({ arg: argIndex, width, mask: u64 })
    .filter(({ width, mask }) => fit(mask, width) !== 0n)
    .map(({ arg, width, mask }) => argAnyBits(arg, width, fit(mask, width))),
);

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.constant(allow),
  fc.constant(notify),
  fc.constant(killProcess),
  fc.integer({ min: 0, max: 4095 }).map(errno),
);

const rule: fc.Arbitrary<Rule> = fc.record({
  when: fc.array(matcher, { maxLength: 3 }),
  action,
});

/** A rule set over a handful of names present on both arches, with the inputs to try on it. */
const SHARED_NAMES = [
  'read',
  'write',
  'openat',
  'socket',
  'ioctl',
  'clone',
  'prctl',
  'mmap',
  'kill',
  'getpid',
];
const scenario = fc
  .record({
    arch,
    defaultAction: action,
    rules: fc.dictionary(fc.constantFrom(...SHARED_NAMES), fc.array(rule, { maxLength: 4 }), {
      maxKeys: SHARED_NAMES.length,
    }),
  })
  .chain(({ arch, defaultAction, rules }) => {
    const set = ruleSet(arch, rules, defaultAction);
    const used = Object.values(rules)
      .flat()
      .flatMap((r) => r.when ?? [])
      .flatMap((m) => (m.op === 'in' ? m.values : m.op === 'eq' ? [m.value] : [m.mask]))
      .map((v) => BigInt(v));
    // Arguments near the values the matchers look for, so that matches happen often.
    const near = used.length > 0 ? fc.constantFrom(...used) : u64;
    const arg = fc.oneof(
      { weight: 1, arbitrary: u64 },
      { weight: 4, arbitrary: near },
      {
        weight: 2,
        arbitrary: fc
          .tuple(near, u64)
          .map(([v, noise]) => (v & 0xffff_ffffn) | BigInt.asUintN(64, noise << 32n)),
      },
    );
    const named = Object.keys(rules);
    const nr = fc.oneof(
      {
        weight: 6,
        arbitrary: fc
          .constantFrom(...(named.length > 0 ? named : SHARED_NAMES))
          .map((name) => syscallNumber(name, arch)),
      },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 500 }) },
      { weight: 1, arbitrary: fc.constantFrom(0x40000000, 0x40000000 | 39, -1, 0x7fffffff) },
    );
    const auditArch = fc.oneof(
      { weight: 8, arbitrary: fc.constant(AUDIT_ARCH[arch]) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(AUDIT_ARCH.x86_64, AUDIT_ARCH.aarch64, AUDIT_ARCH.i386),
      },
    );
    const data = fc
      .record({ nr, auditArch, args: fc.array(arg, { minLength: 6, maxLength: 6 }) })
      .map(({ nr, auditArch, args }) => raw(auditArch, nr, args));
    return fc.record({
      set: fc.constant(set),
      inputs: fc.array(data, { minLength: 1, maxLength: 20 }),
    });
  });

describe('compileRuleSet: property', () => {
  it('gives every (nr, args, arch) the verdict the rule data says', () => {
    fc.assert(
      fc.property(scenario, ({ set, inputs }) => {
        const { instructions } = compileRuleSet(set);
        for (const data of inputs) {
          expect(runFilter(instructions, data)).toBe(evaluateRules(set, data));
        }
      }),
      { numRuns: 1000 },
    );
  });
});
