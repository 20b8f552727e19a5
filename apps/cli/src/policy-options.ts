import { statSync } from 'node:fs';
import {
  applyFlag,
  badProfileName,
  FIELDS,
  PolicyDraft,
  type PolicyFlag,
  policyFlags,
  profileDir,
  profilePath,
  readProfile,
} from '@sandlock/policy';
import { type OptionSpec, type ParsedArgs, UsageError } from './args.js';

/** A policy flag as the argument parser sees it. */
export interface PolicyOption extends OptionSpec {
  readonly flag: PolicyFlag;
}

/** Every policy field's flags, from the policy table. */
export const POLICY_OPTIONS: readonly PolicyOption[] = policyFlags().map((flag) => ({
  long: flag.long,
  ...(flag.short ? { short: flag.short } : {}),
  ...(flag.value ? { value: flag.value } : {}),
  help: flag.help,
  flag,
}));

export const PROFILE_OPTION: OptionSpec = {
  long: 'profile',
  short: 'p',
  value: 'NAME|FILE',
  help: 'start from a profile: NAME in the profile directory, or a TOML FILE',
};

const TITLES: Record<string, string> = {
  filesystem: 'Filesystem',
  environment: 'Environment',
  program: 'Program',
  limits: 'Limits',
  network: 'Network',
  sandbox: 'Sandbox',
  determinism: 'What the sandbox sees',
  http: 'HTTP and TLS',
};

/** The policy options grouped by profile section, in table order, for help. */
export function policyOptionGroups(): { title: string; options: PolicyOption[] }[] {
  const groups = new Map<string, PolicyOption[]>();
  for (const option of POLICY_OPTIONS) {
    const section = FIELDS[option.flag.field].profile.section;
    groups.set(section, [...(groups.get(section) ?? []), option]);
  }
  return [...groups].map(([section, options]) => ({
    title: TITLES[section] ?? section,
    options,
  }));
}

/** Throws `missing` when `file` does not exist, and what the error was when it cannot be told. */
function mustExist(file: string, missing: string, command: string): void {
  try {
    statSync(file);
  } catch (error) {
    // EACCES on a directory on the way is not "no such profile".
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      `${command}: -p/--profile: ${code === 'ENOENT' || code === 'ENOTDIR' ? missing : `cannot read ${file}: ${(error as Error).message.split(',')[0]}`}`,
    );
  }
}

/** The file a `-p` value names: a path (with a `/` or ending in .toml) or a profile name. */
export function profileFile(value: string, command: string): string {
  if (value.includes('/') || value.endsWith('.toml')) {
    mustExist(value, `no file '${value}'`, command);
    return value;
  }
  const bad = badProfileName(value);
  if (bad !== null) throw new UsageError(`${command}: -p/--profile: ${bad}`);
  const file = profilePath(value);
  mustExist(file, `no profile '${value}' in ${profileDir()} (see sandlock profile list)`, command);
  return file;
}

/**
 * The policy the options describe: the profiles first, in the order given,
 * then every policy flag in order (single values replaced, lists extended).
 */
export function draftOf(parsed: ParsedArgs, command: string): PolicyDraft {
  const draft = new PolicyDraft();
  for (const file of (parsed.options.get('profile') ?? []).map((v) => profileFile(v, command))) {
    readProfile(file, draft);
  }
  for (const { spec, value } of parsed.uses) {
    if ('flag' in spec) applyFlag(draft, (spec as PolicyOption).flag, value);
  }
  return draft;
}
