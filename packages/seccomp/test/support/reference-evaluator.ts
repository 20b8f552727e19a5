// A second, deliberately naive reading of the rule data: no BPF, no halves, no simplification.
// Compiled programs must agree with it on every input.

import {
  type Arch,
  AUDIT_ARCH,
  argumentLayout,
  type SeccompData,
  syscallName,
  X32_SYSCALL_BIT,
} from '@sandlock/sys';
import type { Action, ArgMatcher, RuleSet } from '../../src/index.js';

function returnValue(action: Action): number {
  switch (action.kind) {
    case 'allow':
      return 0x7fff0000;
    case 'errno':
      return 0x00050000 + action.errno;
    case 'notify':
      return 0x7fc00000;
    case 'killProcess':
      return 0x80000000;
    case 'killThread':
      return 0;
    case 'trap':
      return 0x00030000 + action.data;
    case 'log':
      return 0x7ffc0000;
  }
}

/** A named argument's index and width, straight from the signature table. */
function argument(matcher: ArgMatcher, syscall: string, arch: Arch): [number, number] {
  if (typeof matcher.arg === 'number') return [matcher.arg, matcher.width!];
  const layout = argumentLayout(syscall, arch)!;
  const index = layout.findIndex(([name]) => name === matcher.arg);
  return [index, layout[index]![1] === 'word' ? 64 : 32];
}

function holds(matcher: ArgMatcher, args: SeccompData['args'], syscall: string, arch: Arch) {
  const [index, bits] = argument(matcher, syscall, arch);
  const arg = BigInt.asUintN(bits, args[index]!);
  const mask = BigInt.asUintN(
    bits,
    BigInt('mask' in matcher && matcher.mask !== undefined ? matcher.mask : -1),
  );
  const value = (v: number | bigint) => BigInt.asUintN(bits, BigInt(v));
  switch (matcher.op) {
    case 'eq':
      return (arg & mask) === value(matcher.value);
    case 'in':
      return matcher.values.some((v) => (arg & mask) === value(v));
    case 'anyBits':
      return (arg & mask) !== 0n;
  }
}

export function evaluateRules(ruleSet: RuleSet, data: SeccompData): number {
  if (data.arch >>> 0 !== AUDIT_ARCH[ruleSet.arch]) return 0x80000000;
  if (ruleSet.arch === 'x86_64' && data.nr >>> 0 >= X32_SYSCALL_BIT) return 0x80000000;
  const name = data.nr >= 0 ? syscallName(data.nr, ruleSet.arch) : undefined;
  for (const rule of (name !== undefined && ruleSet.syscalls.get(name)) || []) {
    if ((rule.when ?? []).every((matcher) => holds(matcher, data.args, name!, ruleSet.arch)))
      return returnValue(rule.action);
  }
  return returnValue(ruleSet.defaultAction);
}
