export { Assembler, type JumpTarget, type Label } from './bpf/assembler.js';
export { runFilter } from './bpf/interpreter.js';
export * as bpf from './bpf/opcodes.js';
export { BpfProgramError, validateProgram } from './bpf/validate.js';
export { type CompiledFilter, compileRuleSet } from './compiler.js';
export { type FilterStepOptions, seccompFilterStep } from './install.js';
export { defaultDenyList } from './policy/deny-list.js';
export {
  OciProfileError,
  type OciSeccompArg,
  type OciSeccompProfile,
  ociProfileRules,
} from './policy/oci-profile.js';
export {
  compileDenyOnlyFilter,
  compileSandboxFilter,
  type DenyEntry,
  type DenyOnlyFilterOptions,
  denyOnlyRules,
  metadataCalls,
  type SandboxFilterOptions,
  sandboxRules,
} from './policy/sandbox-filter.js';
export {
  type Action,
  actionValue,
  allow,
  describeAction,
  errno,
  killProcess,
  killThread,
  log,
  notify,
  sameAction,
  trap,
} from './rules/actions.js';
export {
  type ArgIndex,
  type ArgMatcher,
  type ArgValue,
  type ArgWidth,
  argAnyBits,
  argEquals,
  argIn,
  type MatcherSyscall,
  type NormalizedMatcher,
  normalizeMatcher,
  resolveArgument,
} from './rules/matchers.js';
export { type Rule, type RuleSet, RuleSetBuilder } from './rules/rule-set.js';
