import { type Dirent, lstatSync, readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { canonical } from '@sandlock/policy';
import { SENSITIVE_PATHS } from '@sandlock/procfs';
import { pathWithin } from '@sandlock/sys';

export type FsIntent = 'readExec' | 'write';

export interface FsRule {
  path: string;
  intent: FsIntent;
  /**
   * A rule carving made for an entry it listed: gone by the time the ruleset
   * is built (a process's /proc/<pid> exits), it needs no rule.
   */
  optional?: boolean;
}

/**
 * Replaces a rule on `rule.path` by rules on every entry along the way down
 * to `denied`, except the entries leading to it. Landlock only allows, so a
 * hole in an allowed tree is made by allowing its siblings one by one. The
 * directories on the way lose their own rights (their listing among them),
 * and a name created there later is not covered: both fail closed.
 * Symlinks get no rule: following one is not a Landlock access; its target
 * is governed by the rules on the target's own tree.
 */
function carve(rule: FsRule, denied: string): FsRule[] {
  const out: FsRule[] = [];
  let directory = rule.path;
  const steps = relative(rule.path, denied).split(sep);
  for (const step of steps) {
    let entries: Dirent[];
    try {
      entries = readdirSync(directory, { withFileTypes: true });
    } catch {
      return out; // not a readable directory: nothing beneath to allow
    }
    for (const entry of entries) {
      if (entry.name === step || isSymlinkEntry(directory, entry)) continue;
      out.push({ path: join(directory, entry.name), intent: rule.intent, optional: true });
    }
    directory = join(directory, step);
  }
  return out;
}

/**
 * Whether a directory entry is a symlink: its d_type, or an lstat where the
 * file system does not fill d_type in (DT_UNKNOWN, getdents64(2)); an entry
 * gone meanwhile counts as one (nothing to grant).
 */
function isSymlinkEntry(directory: string, entry: Dirent): boolean {
  if (entry.isSymbolicLink()) return true;
  if (entry.isFile() || entry.isDirectory() || entry.isCharacterDevice()) return false;
  if (entry.isBlockDevice() || entry.isFIFO() || entry.isSocket()) return false;
  try {
    return lstatSync(join(directory, entry.name)).isSymbolicLink();
  } catch {
    return true;
  }
}

const PROC = '/proc';
const PROCESS_NAME = /^\d+$/;

/**
 * Rules on /proc's entries, but for the processes' directories, the symlinks
 * (self, thread-self) and the host's sensitive files, which the supervisor
 * refuses anyway (kcore, kallsyms…).
 */
function procEntriesWithoutProcesses(intent: FsIntent, madeUp: readonly string[]): FsRule[] {
  const out: FsRule[] = [];
  let entries: Dirent[];
  try {
    entries = readdirSync(PROC, { withFileTypes: true });
  } catch {
    // This process cannot list /proc (inside another sandbox that does not
    // grant it): neither can the sandbox, so there is nothing to grant.
    return out;
  }
  for (const entry of entries) {
    if (PROCESS_NAME.test(entry.name) || isSymlinkEntry(PROC, entry)) continue;
    const path = join(PROC, entry.name);
    if (SENSITIVE_PATHS.includes(path) || madeUp.includes(path)) continue;
    out.push({ path, intent, optional: true });
  }
  return out;
}

/**
 * Takes the processes' directories of /proc out of the rules that grant
 * them: a sandbox that hides the host's processes (procfs's proc-pids module)
 * reaches /proc/<pid> only through the supervisor, which opens what it may see
 * on its behalf. Otherwise a thread could swap an approved path for
 * /proc/<outside pid>/… between the module's check and the kernel's open; now
 * Landlock refuses that open. Entries carving listed (optional rules) for a
 * process are dropped too; a /proc/<pid> the policy names itself stays. So
 * are the files in /proc the supervisor makes up (`madeUp`: /proc/loadavg,
 * /proc/meminfo…), for the same race: the real ones would tell the host's.
 */
function withoutProcessDirectories(rules: FsRule[], madeUp: readonly string[]): FsRule[] {
  return rules.flatMap((rule) => {
    if (pathWithin(PROC, rule.path)) {
      const around = rule.path === PROC ? [] : carve(rule, PROC);
      return [...around, ...procEntriesWithoutProcesses(rule.intent, madeUp)];
    }
    const parent = rule.path.slice(0, rule.path.lastIndexOf('/'));
    const name = rule.path.slice(rule.path.lastIndexOf('/') + 1);
    if (rule.optional && parent === PROC && PROCESS_NAME.test(name)) return [];
    return [rule];
  });
}

/**
 * The Landlock path rules for a policy: reads, writes, and the holes that
 * `fsDeny` cuts into them. Paths are canonical (Landlock rules bind to the
 * inode a path resolves to). With `hideProcesses`, /proc's process
 * directories are left out too (see {@link withoutProcessDirectories}).
 */
export function filesystemRules(
  fsRead: readonly string[],
  fsWrite: readonly string[],
  fsDeny: readonly string[],
  options: {
    hideProcesses?: boolean;
    /** With hideProcesses: files directly in /proc the supervisor makes up, left out too. */
    madeUp?: readonly string[];
    /**
     * Trees readable and never writable whatever `fsWrite` says (a
     * copy-on-write workdir: its changes are made in the layer on the
     * sandbox's behalf): a write rule on one, or beneath, becomes a read
     * rule; a write rule above one is carved around it.
     */
    readOnly?: readonly string[];
  } = {},
): FsRule[] {
  let rules: FsRule[] = [
    ...fsWrite.map((path) => ({ path: canonical(path), intent: 'write' as const })),
    ...fsRead.map((path) => ({ path: canonical(path), intent: 'readExec' as const })),
  ];
  for (const denied of fsDeny.map(canonical)) {
    rules = rules.flatMap((rule) => {
      if (pathWithin(rule.path, denied)) return [];
      if (pathWithin(denied, rule.path)) return carve(rule, denied);
      return [rule];
    });
  }
  for (const kept of (options.readOnly ?? []).map(canonical)) {
    rules = rules.flatMap((rule) => {
      if (rule.intent !== 'write') return [rule];
      if (pathWithin(rule.path, kept)) return [{ ...rule, intent: 'readExec' as const }];
      if (pathWithin(kept, rule.path)) {
        return [...carve(rule, kept), { path: rule.path, intent: 'readExec' as const }];
      }
      return [rule];
    });
    rules.push({ path: kept, intent: 'readExec' });
  }
  return options.hideProcesses ? withoutProcessDirectories(rules, options.madeUp ?? []) : rules;
}
