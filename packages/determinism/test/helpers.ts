// Shared by the random and time tests: start a program confined as sandlock
// confines it and supervised by a Supervisor whose modules read `policy`.
import type { Supervisor } from '@sandlock/dispatch';
import { close, launch } from '@sandlock/sys';
import { collect, type Finished, PYTHON, SYSTEM_DIRS } from '../../../tools/test-support/index.js';
import {
  outputSupervised,
  runSupervised,
  type SupervisedRun,
} from '../../../tools/test-support/supervised.js';
import { parsePolicy, prepareConfinement } from '../../sandlock/src/index.js';

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

export interface Started {
  /** The program's pid (the process the reaper forked and exec'd). */
  readonly pid: number;
  readonly finished: Promise<Finished>;
}

/**
 * Starts `argv` as {@link run} does, on the CPUs `cpuCores` (the policy's
 * sched_setaffinity step) when given, and resolves once it runs, with its pid.
 */
export async function start(
  supervisor: Supervisor,
  argv: readonly string[],
  options: RunOptions & { cpuCores?: readonly number[] },
): Promise<Started> {
  const notify = supervisor.notifiedSyscalls({ policy: options.policy });
  const policy = parsePolicy({
    fsRead: options.fsRead ?? DEFAULT_READ,
    fsWrite: options.fsWrite ?? [],
    cpuCores: options.cpuCores ?? null,
  });
  const confinement = prepareConfinement(policy, { notify });
  let launched: ReturnType<typeof launch>;
  try {
    launched = launch({
      path: argv[0]!,
      argv,
      env: options.env ?? { PATH: '/usr/bin:/bin', LANG: 'C' },
      steps: confinement.steps,
      stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
      handshake: true,
    });
  } finally {
    for (const fd of confinement.fds) close(fd);
  }
  const finished = collect(launched.child);
  const report = await launched.ready;
  supervisor.attach(launched.takeListener(), {
    reaperPid: launched.pid,
    programPid: report.pid,
    policy: options.policy,
    notified: notify,
  });
  await launched.release();
  return { pid: report.pid, finished };
}
