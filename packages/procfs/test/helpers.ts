import type { Supervisor } from '@sandlock/dispatch';
import { type Finished, PYTHON, SYSTEM_DIRS } from '../../../tools/test-support/index.js';
import {
  outputSupervised,
  runSupervised,
  type SupervisedRun,
} from '../../../tools/test-support/supervised.js';
import type { ProcfsPolicy } from '../src/index.js';

export { type Finished, PYTHON };

/** The system directories a dynamically linked program needs, where they exist. */
export const SYSTEM_READ = SYSTEM_DIRS;

export interface RunOptions extends SupervisedRun {
  /** The session policy the modules read. */
  policy: ProcfsPolicy;
}

/** Runs `argv` confined as sandlock confines it, supervised with the session `policy`. */
export function run(
  supervisor: Supervisor,
  argv: readonly string[],
  options: RunOptions,
): Promise<Finished> {
  return runSupervised(supervisor, argv, options);
}

/** Runs and expects exit 0; returns stdout. */
export function output(
  supervisor: Supervisor,
  argv: readonly string[],
  options: RunOptions,
): Promise<string> {
  return outputSupervised(supervisor, argv, options);
}
