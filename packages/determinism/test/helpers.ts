// Shared by the random and time tests: start a program confined as sandlock
// confines it and supervised by a Supervisor whose modules read `policy`.
import type { Supervisor } from '@sandlock/dispatch';
import { type Finished, PYTHON, SYSTEM_DIRS } from '../../../tools/test-support/index.js';
import {
  outputSupervised,
  runSupervised,
  type StartedSupervised,
  type SupervisedRun,
  startSupervised,
} from '../../../tools/test-support/supervised.js';

export { type Finished, PYTHON };

/** The policy fields the determinism modules read (the lead adds them to sandlock's Policy). */
export interface DeterminismPolicy {
  randomSeed?: bigint | null;
  timeStart?: number | null;
}

/** The system directories a dynamically linked program needs, where they exist. */
export const SYSTEM_READ = SYSTEM_DIRS;

/** Readable by default: the system, /proc, /sys and the character devices programs open. */
export const DEFAULT_READ = [
  ...SYSTEM_READ,
  '/proc',
  '/sys',
  '/dev/null',
  '/dev/zero',
  '/dev/urandom',
  '/dev/random',
];

export interface RunOptions extends Omit<SupervisedRun, 'policy' | 'fsRead'> {
  /** Paths the sandbox may read (Landlock); default DEFAULT_READ. */
  fsRead?: readonly string[];
  /** The session policy the modules read. */
  policy: DeterminismPolicy;
}

/**
 * Runs `argv` confined as sandlock confines it, supervised by `supervisor`
 * with the session `policy` (the CLI tests run the same through `sandlock run`).
 */
export function run(
  supervisor: Supervisor,
  argv: readonly string[],
  options: RunOptions,
): Promise<Finished> {
  return runSupervised(supervisor, argv, { ...options, fsRead: options.fsRead ?? DEFAULT_READ });
}

/** Runs and expects exit 0; returns stdout. */
export function output(
  supervisor: Supervisor,
  argv: readonly string[],
  options: RunOptions,
): Promise<string> {
  return outputSupervised(supervisor, argv, { ...options, fsRead: options.fsRead ?? DEFAULT_READ });
}

export type { StartedSupervised as Started } from '../../../tools/test-support/supervised.js';

/**
 * Starts `argv` as {@link run} does, on the CPUs `cpuCores` (the policy's
 * sched_setaffinity step) when given, and resolves once it runs, with its pid.
 */
export function start(
  supervisor: Supervisor,
  argv: readonly string[],
  options: RunOptions & { cpuCores?: readonly number[] },
): Promise<StartedSupervised> {
  return startSupervised(supervisor, argv, { ...options, fsRead: options.fsRead ?? DEFAULT_READ });
}
