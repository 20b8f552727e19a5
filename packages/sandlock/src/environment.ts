import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { canonical, type ModulePolicy, modulePolicy, policyReads } from '@sandlock/policy';
import { bytePath } from '@sandlock/sys';
import { SandboxError } from './errors.js';
import type { Policy } from './policy.js';

/** The program's environment: this process's (unless cleanEnv), then the policy's, then the call's. */
export function programEnvironment(
  policy: Policy,
  extra: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  const base: Record<string, string> = {};
  if (!policy.cleanEnv) {
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined) base[key] = value;
    }
  }
  return { ...base, ...policy.env, ...extra };
}

/** A command that cannot be started: `code` is ENOENT (not found) or EACCES (not executable). */
export class CommandError extends SandboxError {
  constructor(
    message: string,
    readonly code: 'ENOENT' | 'EACCES',
  ) {
    super(message, 'execve');
  }
}

/** Whether the sandbox may execute `path`: its target lies in what the policy grants, outside what it denies. */
function executable(path: string, view: ModulePolicy): boolean {
  return policyReads(view, bytePath(canonical(path)));
}

function isExecutableFile(path: string): boolean {
  try {
    if (statSync(path).isDirectory()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function outsideTheGrants(command: string, path: string): CommandError {
  const target = canonical(path);
  const shown = target === path ? path : `${path} (${target})`;
  return new CommandError(
    `sandlock: ${command}: ${shown} is outside what the sandbox may execute; grant its directory with -r ${dirname(target)} (fsRead('${dirname(target)}'))`,
    'EACCES',
  );
}

/**
 * Finds argv[0] as execvp(3) would inside the sandbox: in the program's PATH,
 * skipping what its policy does not let it execute (a version manager's shim
 * in a home directory, say). Throws a CommandError: ENOENT when nothing is
 * found, EACCES when what is found is not executable, or only outside the
 * grants (naming it, and the grant that would allow it).
 */
export function resolveCommand(
  command: string,
  env: Record<string, string>,
  policy: Policy,
): string {
  const view = modulePolicy(policy);
  if (command.includes('/')) {
    const path = resolve(policy.cwd ?? process.cwd(), command);
    if (!existsSync(path)) {
      throw new CommandError(`sandlock: ${command}: no such file or directory`, 'ENOENT');
    }
    if (!isExecutableFile(path))
      throw new CommandError(`sandlock: ${command}: not executable`, 'EACCES');
    if (!executable(path, view)) throw outsideTheGrants(command, path);
    return command;
  }
  let outside: string | undefined;
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const candidate = join(resolve(policy.cwd ?? process.cwd(), dir || '.'), command);
    if (!isExecutableFile(candidate)) continue;
    if (executable(candidate, view)) return candidate;
    outside ??= candidate;
  }
  if (outside !== undefined) throw outsideTheGrants(command, outside);
  throw new CommandError(`sandlock: ${command}: command not found`, 'ENOENT');
}
