// Shared by the random and time tests: start a program confined as sandlock
// confines it and supervised by a Supervisor whose modules read `policy`.
import { existsSync } from 'node:fs';
import type { Supervisor } from '@sandlock/dispatch';
import { close, launch } from '@sandlock/sys';
// Imported by path, not by package name: `sandlock` will depend on this
// package, and a dependency back would be a cycle.
import { parsePolicy, prepareConfinement } from '../../sandlock/src/index.js';

/** The policy fields the determinism modules read (the lead adds them to sandlock's Policy). */
export interface DeterminismPolicy {
  randomSeed?: bigint | null;
  timeStart?: number | null;
}

/** The system directories a dynamically linked program needs, where they exist. */
export const SYSTEM_READ = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) =>
  existsSync(path),
);

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

export interface Finished {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Paths the sandbox may read (Landlock); default DEFAULT_READ. */
  fsRead?: readonly string[];
  /** Paths the sandbox may write (Landlock); default none. */
  fsWrite?: readonly string[];
  /** The session policy the modules read. */
  policy: DeterminismPolicy;
  /** The environment; default PATH and LANG only. */
  env?: Record<string, string>;
}

/**
 * Runs `argv` confined as sandlock confines it (Landlock, the sandbox's
 * seccomp filter with a listener), supervised by `supervisor` with the
 * session `policy`; the lead's wiring will make this
 * `Sandbox.builder().randomSeed(…).timeStart(…)`.
 */
export async function run(
  supervisor: Supervisor,
  argv: readonly string[],
  options: RunOptions,
): Promise<Finished> {
  const notify = supervisor.notifiedSyscalls({ policy: options.policy });
  const fsRead = options.fsRead ?? DEFAULT_READ;
  const confinement = prepareConfinement(parsePolicy({ fsRead, fsWrite: options.fsWrite ?? [] }), {
    notify,
  });
  let launched: ReturnType<typeof launch>;
  try {
    launched = launch({
      path: argv[0]!,
      argv,
      env: options.env ?? { PATH: '/usr/bin:/bin', LANG: 'C' },
      steps: confinement.steps,
      stdio: ['ignore', 'pipe', 'pipe'],
      handshake: true,
    });
  } finally {
    for (const fd of confinement.fds) close(fd);
  }
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  launched.child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  launched.child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
  const finished = new Promise<Finished>((resolve) =>
    launched.child.on('close', (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      }),
    ),
  );
  const report = await launched.ready;
  if (confinement.listener) {
    supervisor.attach(launched.takeListener(), {
      reaperPid: launched.pid,
      programPid: report.pid,
      policy: options.policy,
    });
  }
  await launched.release();
  return finished;
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

export const PYTHON = '/usr/bin/python3';
