import type { Supervisor } from '@sandlock/dispatch';
import { type Finished, PYTHON, SYSTEM_DIRS } from '../../../tools/test-support/index.js';
import {
  runSupervised,
  type SupervisedRun,
  sessionPolicy,
} from '../../../tools/test-support/supervised.js';

export { type Finished, PYTHON };

/** The system directories a dynamically linked program needs, where they exist. */
export const SYSTEM_READ = SYSTEM_DIRS;

export interface RunOptions extends SupervisedRun {
  /** The policy fields the modules read (sessionPolicy makes the session policy of them). */
  policy: object;
}

/**
 * Runs `argv` confined as sandlock confines it, supervised with the session
 * `policy`. As in sandlock, a sandbox whose supervisor hides processes gets
 * no Landlock rules on /proc's process directories.
 */
export function run(
  supervisor: Supervisor,
  argv: readonly string[],
  options: RunOptions,
): Promise<Finished> {
  const hideProcesses =
    supervisor.modules.some((module) => module.name === 'proc-pids') &&
    (options.view ?? sessionPolicy(options.policy)).procReadable;
  return runSupervised(supervisor, argv, { hideProcesses, ...options });
}

/** Runs and expects exit 0; returns stdout. */
export async function output(
  supervisor: Supervisor,
  argv: readonly string[],
  options: RunOptions,
): Promise<string> {
  const result = await run(supervisor, argv, options);
  if (result.code !== 0) {
    throw new Error(`${argv.join(' ')} exited ${result.code ?? result.signal}: ${result.stderr}`);
  }
  return result.stdout;
}
