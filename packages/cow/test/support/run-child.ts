// Runs support/child.ts in a process of its own (a real process that can die
// or lack a capability), optionally under a wrapper such as setpriv.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const register = fileURLToPath(new URL('../../../dispatch/src/dev/register.mjs', import.meta.url));
const script = fileURLToPath(new URL('./child.ts', import.meta.url));

export interface ChildEnd {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export function child(...args: string[]): Promise<ChildEnd> {
  return childUnder([], ...args);
}

/** child.ts run by `wrapper` (its argv, the node command appended). */
export function childUnder(wrapper: string[], ...args: string[]): Promise<ChildEnd> {
  return scriptUnder(wrapper, script, args);
}

/**
 * A TypeScript file of this package run by `wrapper`; `started` is given
 * the process (its standard input a pipe) as soon as it runs.
 */
export function scriptUnder(
  wrapper: string[],
  file: string,
  args: string[],
  started?: (child: ChildProcess) => void,
): Promise<ChildEnd> {
  const argv = [...wrapper, process.execPath, '--import', register, file, ...args];
  return new Promise((resolve) => {
    const process_ = spawn(argv[0]!, argv.slice(1), {
      stdio: [started === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    started?.(process_);
    let stdout = '';
    let stderr = '';
    process_.stdout!.on('data', (chunk) => {
      stdout += chunk;
    });
    process_.stderr!.on('data', (chunk) => {
      stderr += chunk;
    });
    process_.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
