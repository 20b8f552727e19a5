import { parseOptions } from './args.js';
import {
  createCommand,
  deleteCommand,
  execCommand,
  featuresCommand,
  type Globals,
  killCommand,
  pauseCommand,
  psCommand,
  resumeCommand,
  startCommand,
  stateCommand,
  updateCommand,
} from './commands.js';
import { OciError, UsageError } from './errors.js';
import { type LogFormat, RuntimeLog } from './log.js';
import { DEFAULT_ROOT } from './state.js';

declare const SANDLOCK_OCI_VERSION: string;

const HELP = `Usage: sandlock-oci [GLOBAL OPTIONS] <command> [OPTIONS] ID

An OCI runtime that runs each container's process under Sandlock, for
containerd (io.containerd.runc.v2 with BinaryName), Docker and Kubernetes.

Commands:
  create --bundle DIR [--pid-file FILE] [--console-socket SOCKET] ID
  start ID
  state ID
  kill [--all] ID [SIGNAL]
  delete [--force] ID
  ps [--format table|json] ID
  exec --process FILE --detach [--pid-file FILE] [--console-socket SOCKET] ID
  pause ID
  resume ID
  update [--resources FILE|-] [--memory BYTES] [--pids-limit N] [--cpu-quota US]
         [--cpu-period US] [--cpuset-cpus LIST] ID
  features

Global options:
  --root DIR          state directory (default ${DEFAULT_ROOT})
  --log FILE          append errors and warnings there as JSON lines
  --log-format json|text
  --systemd-cgroup    accepted; no cgroup is created
  -v, --version       print the version`;

const GLOBALS = {
  values: { root: '', log: '', 'log-format': '', criu: '' },
  switches: { 'systemd-cgroup': '', debug: '', rootless: '', version: 'v', help: 'h' },
};

/** Splits the global options (before the command) from the command and its own. */
function splitGlobals(argv: readonly string[]): {
  globals: string[];
  command: string | undefined;
  rest: string[];
} {
  const takesValue = new Set(Object.keys(GLOBALS.values).map((name) => `--${name}`));
  let index = 0;
  while (index < argv.length && argv[index]!.startsWith('-')) {
    if (takesValue.has(argv[index]!)) index++;
    index++;
  }
  return { globals: argv.slice(0, index), command: argv[index], rest: argv.slice(index + 1) };
}

async function main(argv: readonly string[]): Promise<number> {
  const split = splitGlobals(argv);
  const parsed = parseOptions(split.globals, GLOBALS, 'sandlock-oci');
  const format = (parsed.options.get('log-format') ?? 'text') as LogFormat;
  if (format !== 'json' && format !== 'text') {
    throw new UsageError(`--log-format ${format}: expected json or text`);
  }
  const logFile = parsed.options.get('log') ?? null;
  const log = new RuntimeLog(logFile, format);
  const globals: Globals = {
    root: parsed.options.get('root') ?? DEFAULT_ROOT,
    log,
    logArgs: [
      '--root',
      parsed.options.get('root') ?? DEFAULT_ROOT,
      ...(logFile !== null ? ['--log', logFile] : []),
      '--log-format',
      format,
    ],
  };
  try {
    if (parsed.switches.has('version') || split.command === '--version') {
      process.stdout.write(`sandlock-oci version ${SANDLOCK_OCI_VERSION}\nspec: 1.0.2\n`);
      return 0;
    }
    switch (split.command) {
      case 'create':
        return await createCommand(split.rest, globals);
      case 'start':
        return await startCommand(split.rest, globals);
      case 'state':
        return await stateCommand(split.rest, globals);
      case 'kill':
        return await killCommand(split.rest, globals);
      case 'delete':
        return await deleteCommand(split.rest, globals);
      case 'ps':
        return await psCommand(split.rest, globals);
      case 'exec':
        return await execCommand(split.rest, globals);
      case 'pause':
        return await pauseCommand(split.rest, globals);
      case 'resume':
        return await resumeCommand(split.rest, globals);
      case 'update':
        return await updateCommand(split.rest, globals);
      case 'features':
        return featuresCommand();
      case undefined:
      case 'help':
        process.stdout.write(`${HELP}\n`);
        return split.command === undefined && !parsed.switches.has('help') ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${split.command}' (see sandlock-oci --help)`);
    }
  } catch (error) {
    const message =
      error instanceof OciError
        ? error.message
        : error instanceof Error
          ? (error.message ?? String(error))
          : String(error);
    log.error(message);
    if (logFile !== null) process.stderr.write(`sandlock-oci: ${message}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `sandlock-oci: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
