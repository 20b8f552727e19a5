import { fstatSync } from 'node:fs';
import { constants } from 'node:os';
import { type PolicyBuilder, type PortSpec, Sandbox } from 'sandlock';
import { formatOptions, type OptionSpec, parseArgs, UsageError } from './args.js';
import { EXIT, type Reporter, reportError, writeStatus } from './report.js';

export const RUN_OPTIONS: OptionSpec[] = [
  { long: 'fs-read', short: 'r', value: 'PATH', help: 'allow reading and executing beneath PATH' },
  {
    long: 'fs-write',
    short: 'w',
    value: 'PATH',
    help: 'allow reading, executing and writing beneath PATH',
  },
  { long: 'fs-deny', value: 'PATH', help: 'hide PATH inside a readable or writable tree' },
  { long: 'env', value: 'KEY=VALUE', help: 'set an environment variable for the command' },
  { long: 'clean-env', help: 'start from an empty environment (only --env variables)' },
  { long: 'cwd', value: 'DIR', help: 'working directory of the command' },
  {
    long: 'timeout',
    short: 't',
    value: 'SECS',
    help: 'kill every process of the sandbox after SECS seconds',
  },
  { long: 'exec-shell', short: 'e', value: 'CMD', help: 'run CMD with /bin/sh -c' },
  { long: 'net-bind', value: 'PORT', help: 'allow binding TCP PORT (or FROM-TO)' },
  { long: 'net-connect', value: 'PORT', help: 'allow connecting to TCP PORT (or FROM-TO)' },
  {
    long: 'net-deny',
    value: 'PROTO',
    help: "refuse 'udp' sockets too ('raw' is refused by default)",
  },
  { long: 'net-allow', value: 'PROTO', help: "allow 'raw' sockets" },
  {
    long: 'max-memory',
    short: 'm',
    value: 'SIZE',
    help: 'kill the sandbox above SIZE of memory (512M, 2G)',
  },
  {
    long: 'max-processes',
    short: 'P',
    value: 'N',
    help: 'at most N processes at once (threads not counted)',
  },
  { long: 'max-cpu', short: 'c', value: 'PCT', help: 'throttle to PCT percent of one CPU' },
  { long: 'max-open-files', value: 'N', help: 'limit open files (RLIMIT_NOFILE)' },
  { long: 'hostname', value: 'NAME', help: 'the host name the sandbox sees' },
  { long: 'name', value: 'NAME', help: 'name the sandbox (also its host name, unless --hostname)' },
  { long: 'num-cpus', value: 'N', help: 'the number of CPUs the sandbox sees' },
  { long: 'deterministic-dirs', help: 'list every directory sorted by name' },
  {
    long: 'random-seed',
    value: 'N',
    help: 'seed getrandom and /dev/urandom: the same N gives the same bytes',
  },
  {
    long: 'time-start',
    value: 'TIME',
    help: 'start the wall clock at TIME (e.g. 2000-01-01T00:00:00Z); it then ticks',
  },
  { long: 'cpu-cores', value: 'LIST', help: 'run only on these CPUs, e.g. 0,2-3' },
  { long: 'no-randomize-memory', help: 'turn off address space randomization' },
  { long: 'no-huge-pages', help: 'turn off transparent huge pages' },
  { long: 'no-coredump', help: 'never write core files' },
  { long: 'best-effort', help: 'run where the kernel lacks a protection, saying what was dropped' },
  { long: 'status-fd', value: 'FD', help: 'write one JSON line with the outcome to FD' },
  { long: 'json-errors', help: 'print errors as JSON lines' },
  { long: 'help', short: 'h', help: 'show this help' },
];

export const RUN_HELP = `Usage: sandlock run [OPTIONS] -- COMMAND [ARGS...]
       sandlock run [OPTIONS] -e 'SHELL COMMAND'

Runs COMMAND confined: it can read only what -r/-w grant, write only what -w
grants, open no TCP port unless allowed, and cannot signal or reach
processes outside the sandbox.

Options:
${formatOptions(RUN_OPTIONS)}

Exit status: the command's; 128+N when a signal N ended it; 124 on timeout;
125 when sandlock failed before the command started; 126 when the command
is not executable; 127 when it is not found.

Examples:
  sandlock run -r /usr -r /lib -r /lib64 -r /bin -r /etc -- ls /usr
  sandlock run -r /usr -r /lib -r /lib64 -r /bin -m 512M -P 20 -c 50 -- python3 job.py
  sandlock run -r /usr -r /lib -r /lib64 -r /bin -w /tmp -e 'echo hi > /tmp/x'
  sandlock run -r / --fs-deny /home -t 10 -- python3 script.py`;

function portSpec(text: string, flag: string): PortSpec {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!match) throw new UsageError(`sandlock run: ${flag} expects PORT or FROM-TO, got '${text}'`);
  const from = Number(match[1]);
  return match[2] === undefined ? from : { from, to: Number(match[2]) };
}

function cpuList(text: string): number[] {
  const cores: number[] = [];
  for (const part of text.split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!match)
      throw new UsageError(`sandlock run: --cpu-cores expects a list like 0,2-3, got '${text}'`);
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : Number(match[2]);
    for (let cpu = from; cpu <= to; cpu++) cores.push(cpu);
  }
  return cores;
}

function wholeNumber(text: string, flag: string): number {
  if (!/^\d+$/.test(text))
    throw new UsageError(`sandlock run: ${flag} expects a whole number, got '${text}'`);
  return Number(text);
}

/** Applies every run option to a policy builder. */
function applyOptions(builder: PolicyBuilder<Sandbox>, options: Map<string, string[]>): void {
  const each = (name: string, apply: (value: string) => void) => {
    for (const value of options.get(name) ?? []) apply(value);
  };
  each('fs-read', (path) => builder.fsRead(path));
  each('fs-write', (path) => builder.fsWrite(path));
  each('fs-deny', (path) => builder.fsDeny(path));
  each('env', (pair) => {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`sandlock run: --env expects KEY=VALUE, got '${pair}'`);
    builder.env(pair.slice(0, eq), pair.slice(eq + 1));
  });
  each('clean-env', () => builder.cleanEnv());
  each('cwd', (dir) => builder.cwd(dir));
  each('net-bind', (port) => builder.netBind(portSpec(port, '--net-bind')));
  each('net-connect', (port) => builder.netConnect(portSpec(port, '--net-connect')));
  each('net-deny', (proto) => {
    if (proto === 'udp') builder.noUdp();
    else if (proto === 'raw') builder.noRawSockets();
    else throw new UsageError(`sandlock run: --net-deny expects 'udp' or 'raw', got '${proto}'`);
  });
  each('net-allow', (proto) => {
    if (proto === 'raw') builder.noRawSockets(false);
    else throw new UsageError(`sandlock run: --net-allow expects 'raw', got '${proto}'`);
  });
  each('max-memory', (size) => builder.maxMemory(size));
  each('max-processes', (n) => builder.maxProcesses(wholeNumber(n, '--max-processes')));
  each('max-cpu', (pct) => builder.maxCpu(wholeNumber(pct, '--max-cpu')));
  each('max-open-files', (n) => builder.maxOpenFiles(wholeNumber(n, '--max-open-files')));
  each('cpu-cores', (list) => builder.cpuCores(...cpuList(list)));
  const name = options.get('name')?.at(-1);
  const hostname = options.get('hostname')?.at(-1) ?? name;
  if (hostname !== undefined) builder.hostname(hostname);
  each('num-cpus', (n) => builder.numCpus(wholeNumber(n, '--num-cpus')));
  each('deterministic-dirs', () => builder.deterministicDirs());
  each('random-seed', (n) => {
    if (!/^\d{1,20}$/.test(n) || BigInt(n) >= 1n << 64n) {
      throw new UsageError(
        `sandlock run: --random-seed expects a whole number from 0 to 2^64-1, got '${n}'`,
      );
    }
    builder.randomSeed(n);
  });
  each('time-start', (time) => {
    if (!/^\d{4}-\d{2}-\d{2}(T.*)?$/.test(time) || Number.isNaN(Date.parse(time))) {
      throw new UsageError(
        `sandlock run: --time-start expects an ISO 8601 date-time such as 2000-01-01T00:00:00Z, got '${time}'`,
      );
    }
    builder.timeStart(time);
  });
  each('no-randomize-memory', () => builder.noRandomizeMemory());
  each('no-huge-pages', () => builder.noHugePages());
  each('no-coredump', () => builder.noCoredump());
  each('best-effort', () => builder.bestEffort());
}

function timeoutOf(options: Map<string, string[]>): number | undefined {
  const value = options.get('timeout')?.at(-1);
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds <= 0) {
    throw new UsageError(
      `sandlock run: --timeout expects a positive number of seconds, got '${value}'`,
    );
  }
  return seconds * 1000;
}

function statusFdOf(options: Map<string, string[]>): number | null {
  const value = options.get('status-fd')?.at(-1);
  if (value === undefined) return null;
  const fd = wholeNumber(value, '--status-fd');
  try {
    fstatSync(fd);
  } catch {
    throw new UsageError(`sandlock run: --status-fd ${fd} is not an open file descriptor`);
  }
  return fd;
}

/** `sandlock run`: returns the exit code. */
export async function runCommand(argv: readonly string[]): Promise<number> {
  const reporter: Reporter = { json: argv.includes('--json-errors'), statusFd: null };
  try {
    const { options, rest } = parseArgs(argv, RUN_OPTIONS, 'sandlock run');
    if (options.has('help')) {
      process.stdout.write(`${RUN_HELP}\n`);
      return 0;
    }
    reporter.statusFd = statusFdOf(options);
    const shell = options.get('exec-shell')?.at(-1);
    if (shell !== undefined && rest.length > 0) {
      throw new UsageError('sandlock run: give either -e/--exec-shell or a command, not both');
    }
    const command = shell !== undefined ? ['/bin/sh', '-c', shell] : rest;
    if (command.length === 0) {
      throw new UsageError('sandlock run: no command given (sandlock run [OPTIONS] -- COMMAND)');
    }
    const timeout = timeoutOf(options);
    const builder = Sandbox.builder();
    applyOptions(builder, options);
    const sandbox = builder.build();
    const sandboxed = await sandbox.spawn(command, { stdio: ['inherit', 'inherit', 'inherit'] });
    for (const warning of sandboxed.warnings)
      process.stderr.write(`sandlock: warning: ${warning}\n`);

    const forward = (signal: NodeJS.Signals) => void sandboxed.kill(signal).catch(() => {});
    const forwarded: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
    for (const signal of forwarded) process.on(signal, forward);
    const timer = timeout !== undefined ? setTimeout(() => sandboxed.expire(), timeout) : undefined;
    const status = await sandboxed.wait();
    clearTimeout(timer);
    for (const signal of forwarded) process.off(signal, forward);

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
