// Starting a program confined exactly as sandlock confines it, supervised by
// a given Supervisor with a given session policy: for the tests of handler
// modules below the `sandlock` package (which cannot depend on it).
import type { Supervisor } from '@sandlock/dispatch';
import { type ModulePolicy, modulePolicy } from '@sandlock/policy';
import { brokerSocketPair, close, launch, type StdioEntry } from '@sandlock/sys';
import { parsePolicy, prepareConfinement } from '../../packages/sandlock/src/index.js';
import { collect, type Finished, SYSTEM_DIRS } from './index.js';

export interface SupervisedRun {
  /** Paths the sandbox may read (Landlock); default SYSTEM_DIRS, /proc, /sys and /dev/null. */
  fsRead?: readonly string[];
  /** Paths it may write. */
  fsWrite?: readonly string[];
  /** Paths cut out of what it may read and write. */
  fsDeny?: readonly string[];
  /** Leave /proc's process directories out of Landlock (the proc-pids module serves them). */
  hideProcesses?: boolean;
  /** The policy fields the modules read (made into the session policy by sessionPolicy). */
  policy: object;
  /**
   * The session policy itself, instead of sessionPolicy(policy): for a test of
   * what a module does with a value the policy's checks keep out.
   */
  view?: ModulePolicy;
  env?: Readonly<Record<string, string>>;
  stdio?: readonly [StdioEntry, StdioEntry, StdioEntry];
  /** The CPUs it runs on (the policy's sched_setaffinity step). */
  cpuCores?: readonly number[];
  /** TCP ports it may bind (Landlock). */
  netBind?: readonly number[];
}

export interface StartedSupervised {
  /** The program's pid (the process the reaper forked and exec'd). */
  readonly pid: number;
  /** The sandbox's reaper (REAPER_SIGNAL of @sandlock/sys stops and continues the whole sandbox). */
  readonly reaperPid: number;
  readonly finished: Promise<Finished>;
}

/** The session policy sandlock gives the modules (modulePolicy) for these policy fields. */
export function sessionPolicy(fields: object = {}): ModulePolicy {
  return modulePolicy(parsePolicy(fields));
}

/** Runs `argv` confined and supervised to its end; resolves with its output. */
export async function runSupervised(
  supervisor: Supervisor,
  argv: readonly string[],
  options: SupervisedRun,
): Promise<Finished> {
  return (await startSupervised(supervisor, argv, options)).finished;
}

/** Starts `argv` confined and supervised; resolves once it runs, with its pid. */
export async function startSupervised(
  supervisor: Supervisor,
  argv: readonly string[],
  options: SupervisedRun,
): Promise<StartedSupervised> {
  const view = options.view ?? sessionPolicy(options.policy);
  const notify = supervisor.notifiedSyscalls({ policy: view });
  const fsRead = options.fsRead ?? [...SYSTEM_DIRS, '/proc', '/sys', '/dev/null'];
  const policy = parsePolicy({
    fsRead,
    fsWrite: options.fsWrite ?? [],
    fsDeny: options.fsDeny ?? [],
    cpuCores: options.cpuCores ?? null,
    netBind: options.netBind ?? [],
  });
  // The modules that act on the sandbox's behalf do it through its reaper.
  const broker =
    notify.length > 0 && supervisor.actsOnBehalf({ policy: view }) ? brokerSocketPair() : null;
  const confinement = prepareConfinement(policy, {
    notify,
    hideProcesses: options.hideProcesses ?? false,
    ...(broker !== null ? { brokerFd: broker.reaper } : {}),
  });
  if (broker !== null) confinement.fds.push(broker.reaper);
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
  if (confinement.listener) {
    supervisor.attach(launched.takeListener(), {
      reaperPid: launched.pid,
      programPid: report.pid,
      policy: view,
      notified: notify,
      ...(broker !== null ? { broker: broker.supervisor } : {}),
    });
  } else if (broker !== null) close(broker.supervisor);
  await launched.release();
  return { pid: report.pid, reaperPid: launched.pid, finished };
}

/** {@link runSupervised}, expecting exit 0; resolves with its stdout. */
export async function outputSupervised(
  supervisor: Supervisor,
  argv: readonly string[],
  options: SupervisedRun,
): Promise<string> {
  const result = await runSupervised(supervisor, argv, options);
  if (result.code !== 0) {
    throw new Error(`${argv.join(' ')} exited ${result.code ?? result.signal}: ${result.stderr}`);
  }
  return result.stdout;
}
