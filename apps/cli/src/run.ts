import { constants } from 'node:os';
import {
  afterDelay,
  badSandboxName,
  type ExitStatus,
  formatChanges,
  type HttpDenial,
  parseDuration,
  Sandbox,
  type SandboxProcess,
  type SandboxRefusal,
} from 'sandlock';
import {
  formatOptions,
  type OptionSpec,
  optionWidth,
  type ParsedArgs,
  parseArgs,
  UsageError,
} from './args.js';
import { draftOf, POLICY_OPTIONS, PROFILE_OPTION, policyOptionGroups } from './policy-options.js';
import { EXIT, type Reporter, reportError, writeStatus } from './report.js';
import { statusFdOf } from './status-fd.js';

/** Options of a run that are not policy fields. */
const RUNNING_OPTIONS: OptionSpec[] = [
  PROFILE_OPTION,
  {
    long: 'timeout',
    short: 't',
    value: 'DURATION',
    help: 'kill every process of the sandbox after DURATION (10, 1.5, 30s, 5m, 1h, 2d)',
  },
  {
    long: 'kill-after',
    short: 'k',
    value: 'DURATION',
    help: 'on timeout or a forwarded signal, send SIGTERM first and SIGKILL after DURATION',
  },
  { long: 'exec-shell', short: 'e', value: 'CMD', help: 'run CMD with /bin/sh -c' },
  {
    long: 'name',
    value: 'NAME',
    help: 'name the sandbox for sandlock ps/inspect/kill (default sandbox-N; not the host name: --hostname)',
  },
  { long: 'status-fd', value: 'FD', help: 'write one JSON line with the outcome to FD' },
  {
    long: 'verbose',
    help: "print a line on stderr for each thing refused on the sandbox's behalf, with the rule",
  },
  {
    long: 'print-policy',
    help: 'print what the policy becomes on this kernel, as JSON, and run nothing',
  },
  {
    long: 'dry-run',
    help: 'with --workdir: run, print the changes (A, M, D path), discard them',
  },
  { long: 'json', help: 'with --dry-run: one JSON object per change' },
  { long: 'diff', help: 'with --dry-run: a unified diff of each modified text file' },
  { long: 'json-errors', help: 'print errors as JSON lines' },
  { long: 'help', short: 'h', help: 'show this help' },
];

export const RUN_OPTIONS: OptionSpec[] = [...POLICY_OPTIONS, ...RUNNING_OPTIONS];

function optionsHelp(): string {
  const groups = [...policyOptionGroups(), { title: 'Running', options: RUNNING_OPTIONS }];
  const width = optionWidth(groups.map((group) => group.options));
  return groups
    .map((group) => `${group.title}:\n${formatOptions(group.options, width)}`)
    .join('\n\n');
}

export const RUN_HELP = `Usage: sandlock run [OPTIONS] -- COMMAND [ARGS...]
       sandlock run [OPTIONS] -e 'SHELL COMMAND'

       sandlock run [OPTIONS] --print-policy [-- COMMAND]

Runs COMMAND confined: it can read only what -r/-w grant, write only what -w
grants, open no TCP port unless allowed, and cannot signal or reach
processes outside the sandbox. With -p, a profile gives the policy first;
flags then replace its single values and add to its lists (docs/policy.md).
--print-policy prints the policy and what each protection becomes on this
kernel (Landlock ABI and rights, seccomp filter, supervisor modules) and
exits 0 without running anything. --verbose prints
'sandlock: refused: WHAT (RULE)' for each hidden /proc entry, refused fork,
metadata change or kill made on the sandbox's behalf.

${optionsHelp()}

Exit status: the command's; 128+N when a signal N ended it; 124 on timeout;
125 when sandlock failed before the command started; 126 when the command
is not executable; 127 when it is not found.

Examples:
  sandlock run --system -- ls /usr
  sandlock run --system -m 512M -P 20 -c 50 -- python3 job.py
  sandlock run --system -w /tmp -e 'echo hi > /tmp/x'
  sandlock run -r / --fs-deny /home -t 10 -- python3 script.py
  sandlock run -p build -w "$PWD" -- make`;

/** The sandbox the options describe. */
function sandboxOf(parsed: ParsedArgs): Sandbox {
  return Sandbox.fromDraft(draftOf(parsed, 'sandlock run'));
}

/** The --name value, checked. */
function nameOf(options: Map<string, string[]>): string | undefined {
  const name = options.get('name')?.at(-1);
  const bad = name === undefined ? null : badSandboxName(name);
  if (bad !== null) throw new UsageError(`sandlock run: --name: ${bad}`);
  return name;
}

/** A `timeout(1)` duration option in milliseconds, or undefined when not given. */
function durationOf(
  options: Map<string, string[]>,
  name: string,
  shown: string,
): number | undefined {
  const value = options.get(name)?.at(-1);
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === null) {
    throw new UsageError(
      `sandlock run: ${shown} expects a positive duration such as 10, 1.5, 30s, 5m or 1h, got '${value}'`,
    );
  }
  return ms;
}

/** One --verbose line. */
function printRefusal(refusal: SandboxRefusal): void {
  const dropped =
    refusal.dropped > 0 && refusal.module !== null
      ? `sandlock: refused: ${refusal.dropped} more, not shown (too many at once)\n`
      : '';
  process.stderr.write(`${dropped}sandlock: refused: ${refusal.what} (${refusal.rule})\n`);
}

/** One --verbose line for a connection or request the HTTP proxy refused. */
function printDenial(denial: HttpDenial): void {
  const what =
    denial.method !== null
      ? `${denial.method} ${denial.host ?? ''}${denial.path ?? ''}`
      : `connection to ${denial.host ?? `${denial.destination.address}:${denial.destination.port}`}`;
  // A deny rule's reason names it already ("denied by --http-deny '…'").
  const rule =
    denial.rule !== null && !denial.reason.includes(denial.rule) ? `; ${denial.rule}` : '';
  process.stderr.write(`sandlock: refused: ${what} (${denial.reason}${rule})\n`);
}

/** What became of the workdir's layer: the dry run's change list on stdout, a kept layer's place on stderr. */
function reportWorkdir(
  status: ExitStatus,
  options: { dryRun: boolean; json: boolean; diff: boolean; lower: string | null },
): void {
  const workdir = status.workdir;
  if (workdir === undefined || workdir === null) return;
  if (options.dryRun) {
    process.stdout.write(
      formatChanges(workdir.changes, {
        json: options.json,
        diff: options.diff,
        ...(options.lower !== null ? { lower: options.lower } : {}),
        ...(workdir.upper !== undefined ? { upper: workdir.upper } : {}),
      }),
    );
    workdir.abort();
  }
  if (workdir.kept !== undefined) {
    process.stderr.write(
      `sandlock: the workdir's layer is kept at ${workdir.kept} (sandlock cow commit|abort PATH)\n`,
    );
  }
}

/** `sandlock run`: returns the exit code. */
export async function runCommand(argv: readonly string[]): Promise<number> {
  const reporter: Reporter = { json: argv.includes('--json-errors'), statusFd: null };
  try {
    const parsed = parseArgs(argv, RUN_OPTIONS, 'sandlock run');
    const { options, rest } = parsed;
    if (options.has('help')) {
      process.stdout.write(`${RUN_HELP}\n`);
      return 0;
    }
    reporter.statusFd = statusFdOf(options.get('status-fd')?.at(-1));
    const shell = options.get('exec-shell')?.at(-1);
    if (shell !== undefined && rest.length > 0) {
      throw new UsageError('sandlock run: give either -e/--exec-shell or a command, not both');
    }
    const command = shell !== undefined ? ['/bin/sh', '-c', shell] : rest;
    if (options.has('print-policy')) {
      const description = await sandboxOf(parsed).describe();
      process.stdout.write(`${JSON.stringify(description, null, 2)}\n`);
      return 0;
    }
    if (command.length === 0) {
      throw new UsageError('sandlock run: no command given (sandlock run [OPTIONS] -- COMMAND)');
    }
    const dryRun = options.has('dry-run');
    if ((options.has('json') || options.has('diff')) && !dryRun) {
      throw new UsageError('sandlock run: --json and --diff go with --dry-run');
    }
    const name = nameOf(options);
    const timeout = durationOf(options, 'timeout', '-t/--timeout');
    const killAfter = durationOf(options, 'kill-after', '-k/--kill-after');
    const sandbox = sandboxOf(parsed);
    if (dryRun && sandbox.policy.workdir === null) {
      throw new UsageError('sandlock run: --dry-run needs --workdir DIR');
    }
    // Signals to sandlock go to the sandbox; one that arrives while it starts
    // waits for it. With --kill-after, a signal forwarded or a timeout is
    // followed by SIGKILL.
    let sandboxed: SandboxProcess | undefined;
    const pending: NodeJS.Signals[] = [];
    let escalation: (() => void) | undefined;
    const escalate = (kill: () => void) => {
      if (killAfter !== undefined) escalation ??= afterDelay(killAfter, kill);
    };
    const forward = (signal: NodeJS.Signals) => {
      if (sandboxed === undefined) {
        pending.push(signal);
        return;
      }
      const target = sandboxed;
      void target.kill(signal).catch(() => {});
      escalate(() => void target.kill('SIGKILL').catch(() => {}));
    };
    const forwarded: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
    for (const signal of forwarded) process.on(signal, forward);
    let cancelTimeout: (() => void) | undefined;
    let status: ExitStatus;
    try {
      const started = await sandbox.spawn(command, {
        stdio: ['inherit', 'inherit', 'inherit'],
        ...(name !== undefined ? { name } : {}),
        ...(options.has('verbose') ? { onRefusal: printRefusal } : {}),
        // A dry run keeps the layer until its changes (and diffs) are printed.
        ...(dryRun ? { workdirEnd: 'defer' as const } : {}),
      });
      sandboxed = started;
      if (options.has('verbose')) started.on('denied', printDenial);
      for (const warning of started.warnings) {
        process.stderr.write(`sandlock: warning: ${warning}\n`);
      }
      for (const signal of pending.splice(0)) forward(signal);
      if (timeout !== undefined) {
        cancelTimeout = afterDelay(timeout, () => {
          if (killAfter === undefined) return started.expire();
          started.expire('SIGTERM');
          escalate(() => started.expire());
        });
      }
      status = await started.wait();
    } finally {
      cancelTimeout?.();
      escalation?.();
      for (const signal of forwarded) process.off(signal, forward);
    }

    reportWorkdir(status, {
      dryRun,
      json: options.has('json'),
      diff: options.has('diff'),
      lower: sandbox.policy.workdir,
    });
    if (status.timedOut) {
      writeStatus(reporter, { timeout: true });
      process.stderr.write(`sandlock: timed out after ${timeout! / 1000}s\n`);
      return EXIT.timeout;
    }
    if (status.killedBy) {
      process.stderr.write(`sandlock: killed: ${status.killedBy.message}\n`);
    }
    if (status.signal !== null) {
      const reason = status.killedBy ? { killed_by: status.killedBy.reason } : {};
      writeStatus(reporter, { signal: status.signal, ...reason });
      return 128 + (constants.signals[status.signal] ?? 0);
    }
    writeStatus(reporter, { exit_code: status.exitCode });
    return status.exitCode ?? EXIT.failed;
  } catch (error) {
    return reportError(reporter, error);
  }
}
