import { accessSync, constants, statSync } from 'node:fs';
import { resolveExecutable } from '@sandlock/sys';
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

/** Finds argv[0] like execvp(3), in the program's PATH; throws a CommandError. */
export function resolveCommand(command: string, env: Record<string, string>): string {
  const path = resolveExecutable(command, env.PATH);
  if (path === undefined) {
    throw new CommandError(`sandlock: ${command}: command not found`, 'ENOENT');
  }
  try {
    if (statSync(path).isDirectory()) throw new Error('directory');
    accessSync(path, constants.X_OK);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new CommandError(
      `sandlock: ${path}: ${missing ? 'no such file or directory' : 'not executable'}`,
      missing ? 'ENOENT' : 'EACCES',
    );
  }
  return path;
}
