import { existsSync } from 'node:fs';
import type { Supervisor } from '@sandlock/dispatch';
import { close, launch } from '@sandlock/sys';
// Imported by path, not by package name: `sandlock` will depend on this
// package, and a dependency back would be a cycle.
import { parsePolicy, prepareConfinement } from '../../sandlock/src/index.js';
import type { ProcfsPolicy } from '../src/index.js';

/** The system directories a dynamically linked program needs, where they exist. */
export const SYSTEM_READ = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) =>
  existsSync(path),
);

export interface Finished {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Paths the sandbox may read (Landlock); default SYSTEM_READ and /proc, /sys. */
  fsRead?: readonly string[];
  /** Paths cut out of fsRead (Landlock); default none. */
  fsDeny?: readonly string[];
  /** The session policy the modules read. */
  policy: ProcfsPolicy;
}

/**
 * Runs `argv` confined as sandlock confines it (Landlock, the sandbox's
 * seccomp filter with a listener), supervised by `supervisor` with the
 * session `policy`; the lead's wiring will make this
 * `Sandbox.builder().hostname(…).numCpus(…)`.
 */
export async function run(
  supervisor: Supervisor,
  argv: readonly string[],
  options: RunOptions,
): Promise<Finished> {
  const notify = supervisor.notifiedSyscalls({ policy: options.policy });
  const fsRead = options.fsRead ?? [...SYSTEM_READ, '/proc', '/sys', '/dev/null'];
  const confinement = prepareConfinement(parsePolicy({ fsRead, fsDeny: options.fsDeny ?? [] }), {
    notify,
  });
  let launched: ReturnType<typeof launch>;
  try {
    launched = launch({
      path: argv[0]!,
      argv,
      env: { PATH: '/usr/bin:/bin', LANG: 'C' },
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
