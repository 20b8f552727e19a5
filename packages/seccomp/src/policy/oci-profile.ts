// An OCI runtime-spec seccomp profile (config-linux.md, "Seccomp": the
// `linux.seccomp` object Docker and containerd write into config.json) as a
// RuleSet this package compiles.
import { type Arch, argumentLayout, ERRNO, syscallNumber } from '@sandlock/sys';
import { type Action, allow, errno, killProcess, killThread, log, trap } from '../rules/actions.js';
import type { ArgIndex, ArgMatcher } from '../rules/matchers.js';
import { type Rule, type RuleSet, RuleSetBuilder } from '../rules/rule-set.js';

export interface OciSeccompArg {
  index: number;
  value: number | bigint;
  valueTwo?: number | bigint;
  op: string;
}

export interface OciSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  syscalls?: { names: string[]; action: string; errnoRet?: number; args?: OciSeccompArg[] }[];
}

/** A part of a profile this compiler cannot express; `field` is its place in linux.seccomp. */
export class OciProfileError extends Error {
  override name = 'OciProfileError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`linux.seccomp.${field}: ${message}`);
  }
}

const ARCH_NAMES: Record<Arch, string> = {
  x86_64: 'SCMP_ARCH_X86_64',
  aarch64: 'SCMP_ARCH_AARCH64',
};

function actionOf(name: string, errnoRet: number | undefined, field: string): Action {
  switch (name) {
    case 'SCMP_ACT_ALLOW':
      return allow;
    case 'SCMP_ACT_ERRNO':
      return errno(errnoRet ?? ERRNO.EPERM);
    // libseccomp's SCMP_ACT_KILL is SECCOMP_RET_KILL_THREAD.
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return killThread;
    case 'SCMP_ACT_KILL_PROCESS':
      return killProcess;
    case 'SCMP_ACT_TRAP':
      return trap(0);
    case 'SCMP_ACT_LOG':
      return log;
    default:
      // SCMP_ACT_TRACE needs a ptrace tracer, SCMP_ACT_NOTIFY a listener the
      // runtime would hand to listenerPath: neither exists here.
      throw new OciProfileError(field, `action ${name} is not supported`);
  }
}

function widthOf(syscall: string, index: ArgIndex, arch: Arch): 32 | 64 {
  const kind = argumentLayout(syscall, arch)?.[index]?.[1];
  return kind === undefined || kind === 'word' ? 64 : 32;
}

/**
 * One condition. `SCMP_CMP_NE` comes back as `negated`: the rule list says
 * "equal: the default action" before the rule itself (see below).
 */
function matcherOf(
  arg: OciSeccompArg,
  syscall: string,
  arch: Arch,
  field: string,
): { matcher: ArgMatcher; negated: boolean } {
  if (!Number.isInteger(arg.index) || arg.index < 0 || arg.index > 5) {
    throw new OciProfileError(`${field}.index`, `${arg.index} is not 0 to 5`);
  }
  const index = arg.index as ArgIndex;
  const width = widthOf(syscall, index, arch);
  const value = BigInt(arg.value);
  switch (arg.op) {
    case 'SCMP_CMP_EQ':
      return { matcher: { op: 'eq', arg: index, width, value }, negated: false };
    case 'SCMP_CMP_MASKED_EQ':
      // (arg & value) == valueTwo (libseccomp's datum_a is the mask).
      return {
        matcher: { op: 'eq', arg: index, width, mask: value, value: BigInt(arg.valueTwo ?? 0) },
        negated: false,
      };
    case 'SCMP_CMP_NE':
      return { matcher: { op: 'eq', arg: index, width, value }, negated: true };
    default:
      throw new OciProfileError(
        `${field}.op`,
        `${arg.op} is not supported (EQ, NE and MASKED_EQ are)`,
      );
  }
}

function knownOn(syscall: string, arch: Arch): boolean {
  try {
    syscallNumber(syscall, arch);
    return true;
  } catch {
    return false;
  }
}

/**
 * The rules of `profile` for `arch`. Conditions of one entry all hold (AND),
 * except when two name the same argument: then each is a rule of its own
 * (OR), as runc does. A syscall this arch does not have is skipped (runc and
 * libseccomp do the same). A rule with `SCMP_CMP_NE` is expressed as "equal:
 * the default action" followed by the rule, so only one condition of that
 * rule may be NE and such rules go after the syscall's others; a second one
 * for the same syscall is refused. Other architectures of
 * `architectures` are not needed: the compiled filter kills every call of
 * another ABI.
 */
export function ociProfileRules(profile: OciSeccompProfile, arch: Arch): RuleSet {
  const defaultAction = actionOf(profile.defaultAction, profile.defaultErrnoRet, 'defaultAction');
  if (profile.architectures !== undefined && profile.architectures.length > 0) {
    if (!profile.architectures.includes(ARCH_NAMES[arch])) {
      throw new OciProfileError('architectures', `${ARCH_NAMES[arch]} is not listed`);
    }
  }
  for (const [index, flag] of (profile.flags ?? []).entries()) {
    if (flag !== 'SECCOMP_FILTER_FLAG_SPEC_ALLOW' && flag !== 'SECCOMP_FILTER_FLAG_LOG') {
      throw new OciProfileError(`flags[${index}]`, `${flag} is not supported`);
    }
  }
  if (profile.listenerPath !== undefined && profile.listenerPath !== '') {
    throw new OciProfileError('listenerPath', 'a seccomp agent is not supported');
  }
  const plain = new Map<string, Rule[]>();
  const negated = new Map<string, { rules: Rule[]; field: string }>();
  for (const [entryIndex, entry] of (profile.syscalls ?? []).entries()) {
    const field = `syscalls[${entryIndex}]`;
    const action = actionOf(entry.action, entry.errnoRet, `${field}.action`);
    for (const name of entry.names) {
      if (!knownOn(name, arch)) continue;
      const conditions = (entry.args ?? []).map((arg, argIndex) =>
        matcherOf(arg, name, arch, `${field}.args[${argIndex}]`),
      );
      const indexes = (entry.args ?? []).map((arg) => arg.index);
      const sameArgTwice = new Set(indexes).size !== indexes.length;
      const groups = sameArgTwice ? conditions.map((condition) => [condition]) : [conditions];
      for (const group of groups) {
        const ne = group.filter((condition) => condition.negated);
        const when = group.filter((condition) => !condition.negated).map((c) => c.matcher);
        if (ne.length === 0) {
          plain.set(name, [...(plain.get(name) ?? []), { when, action }]);
          continue;
        }
        if (ne.length > 1 || negated.has(name)) {
          throw new OciProfileError(
            `${field}.args`,
            `more than one SCMP_CMP_NE condition for ${name}`,
          );
        }
        negated.set(name, {
          field,
          rules: [
            { when: [...when, ne[0]!.matcher], action: defaultAction },
            { when, action },
          ],
        });
      }
    }
  }
  const builder = new RuleSetBuilder(arch, defaultAction);
  for (const [name, rules] of plain) builder.add(name, ...rules);
  for (const [name, { rules }] of negated) builder.add(name, ...rules);
  return builder.build();
}
