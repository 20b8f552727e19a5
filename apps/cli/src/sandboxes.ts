// `sandlock ps`, `sandlock inspect` and `sandlock kill`: the user's running
// sandboxes, from the registry the library keeps (Sandbox.list()).
import { constants } from 'node:os';
import { profileText } from '@sandlock/policy';
import {
  badSandboxName,
  SANDBOX_SIGNALS,
  Sandbox,
  type SandboxEntry,
  SandboxError,
} from 'sandlock';
import { formatOptions, type OptionSpec, parseArgs, UsageError } from './args.js';
import { type Reporter, reportError } from './report.js';

const JSON_OPTION: OptionSpec = { long: 'json', help: 'print JSON' };
const HELP_OPTION: OptionSpec = { long: 'help', short: 'h', help: 'show this help' };

const PS_OPTIONS: OptionSpec[] = [
  { ...JSON_OPTION, help: 'print a JSON array of the entries (with each policy)' },
  HELP_OPTION,
];
const INSPECT_OPTIONS: OptionSpec[] = [
  { ...JSON_OPTION, help: 'print the whole entry, its policy as Sandbox.fromPolicy takes it' },
  HELP_OPTION,
];
const KILL_OPTIONS: OptionSpec[] = [
  {
    long: 'signal',
    short: 's',
    value: 'SIGNAL',
    help: `the signal, by name or number (default KILL): ${SANDBOX_SIGNALS.map((name) => name.slice(3)).join(', ')}`,
  },
  HELP_OPTION,
];

export const PS_HELP = `Usage: sandlock ps [--json]

Lists your running sandboxes, started by any sandlock or program using the
library: NAME (sandlock run --name, else sandbox-N), PID (the program's),
UPTIME, COMMAND, and PORTS the host has under another number (VIRTUAL->REAL,
with --port-remap). The list is kept in $XDG_RUNTIME_DIR/sandlock, else in
a private directory in the temporary directory; entries of sandboxes that
are gone are removed as it is read.
Exit status: 0; 125 for a usage error or a registry that cannot be read.

Options:
${formatOptions(PS_OPTIONS)}

Examples:
  sandlock ps
  sandlock ps --json | jq -r '.[].name'`;

export const INSPECT_HELP = `Usage: sandlock inspect [--json] NAME

Prints the policy the running sandbox NAME enforces, as a TOML profile of
the fields not at their defaults (sandlock run -p takes it), after comment
lines with its pid, start and command; with --json, the whole entry.
Exit status: 0; 1 when no running sandbox is called NAME; 125 for a usage error.

Options:
${formatOptions(INSPECT_OPTIONS)}

Examples:
  sandlock inspect web
  sandlock inspect --json web | jq .policy.fsWrite`;

export const KILL_HELP = `Usage: sandlock kill [--signal SIGNAL] NAME

Sends SIGNAL to every process of the running sandbox NAME, also those that
left its process group or session. With KILL (the default) it returns once
they have all ended.
Exit status: 0; 1 when no running sandbox is called NAME; 125 for a usage error.

Options:
${formatOptions(KILL_OPTIONS)}

Examples:
  sandlock kill web
  sandlock kill -s TERM web`;

/** A duration in whole units, two at most: 42s, 5m03s, 3h04m, 2d05h. */
export function formatUptime(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const pad = (n: number) => String(n).padStart(2, '0');
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${pad(seconds % 60)}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}h${pad(minutes % 60)}m`;
  return `${Math.floor(hours / 24)}d${pad(hours % 24)}h`;
}

/** A word of a command line, quoted for a shell when it needs to be. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function commandLine(entry: SandboxEntry): string {
  // Control characters would move the terminal's cursor: shown as `?`.
  return entry.command
    .map(shellWord)
    .join(' ')
    .replace(/[\u0000-\u001f\u007f]/g, '?');
}

function portsOf(entry: SandboxEntry): string {
  if (entry.ports.length === 0) return '-';
  return entry.ports
    .map((port) => `${port.virtual}->${port.real}${port.protocol === 'udp' ? '/udp' : ''}`)
    .join(',');
}

const COMMAND_WIDTH = 40;

function table(entries: readonly SandboxEntry[], now: number): string {
  const rows = [
    ['NAME', 'PID', 'UPTIME', 'COMMAND', 'PORTS'],
    ...entries.map((entry) => {
      const command = commandLine(entry);
      return [
        entry.name,
        String(entry.pid),
        formatUptime(now - Date.parse(entry.startedAt)),
        command.length > COMMAND_WIDTH ? `${command.slice(0, COMMAND_WIDTH - 1)}…` : command,
        portsOf(entry),
      ];
    }),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
        .join('  '),
    )
    .join('\n');
}

/** The one NAME argument of inspect and kill. */
function nameArgument(rest: readonly string[], command: string): string {
  const [name, ...extra] = rest;
  if (name === undefined) throw new UsageError(`${command}: give the NAME of a sandbox`);
  if (extra.length > 0) throw new UsageError(`${command}: unexpected argument '${extra[0]}'`);
  const bad = badSandboxName(name);
  if (bad !== null) throw new UsageError(`${command}: ${bad}`);
  return name;
}

/** `error` when no running sandbox has the name: its message, exit status 1. */
function notFound(error: unknown): number | null {
  if (!(error instanceof SandboxError) || error.step !== 'lookup') return null;
  process.stderr.write(`${error.message}\n`);
  return 1;
}

/** A signal by name (KILL, SIGKILL, kill) or number, among those a sandbox can be sent. */
export function signalOf(text: string): NodeJS.Signals {
  const upper = text.toUpperCase();
  const named = (upper.startsWith('SIG') ? upper : `SIG${upper}`) as NodeJS.Signals;
  const byNumber = /^\d+$/.test(text)
    ? (Object.keys(constants.signals) as NodeJS.Signals[]).find(
        (name) => constants.signals[name] === Number(text),
      )
    : undefined;
  const signal = byNumber ?? named;
  if (!SANDBOX_SIGNALS.includes(signal)) {
    throw new UsageError(
      `sandlock kill: --signal expects one of ${SANDBOX_SIGNALS.map((name) => name.slice(3)).join(', ')} (a name or its number), got '${text}'`,
    );
  }
  return signal;
}

/**
 * Options before and after the NAME argument (`sandlock kill web -s TERM`,
 * `sandlock inspect web --json`), as for `kill(1)`; nothing after `--`.
 */
function parseAroundName(argv: readonly string[], specs: OptionSpec[], command: string) {
  const parsed = parseArgs(argv, specs, command);
  const [name, ...after] = parsed.rest;
  const endedByDashes = argv[argv.length - parsed.rest.length - 1] === '--';
  if (name === undefined || after.length === 0 || endedByDashes) return parsed;
  const more = parseArgs(after, specs, command);
  for (const [long, values] of more.options) {
    parsed.options.set(long, [...(parsed.options.get(long) ?? []), ...values]);
  }
  return { ...parsed, uses: [...parsed.uses, ...more.uses], rest: [name, ...more.rest] };
}

function helpOrParse(argv: readonly string[], specs: OptionSpec[], command: string, help: string) {
  const parsed = parseAroundName(argv, specs, command);
  if (parsed.options.has('help')) {
    process.stdout.write(`${help}\n`);
    return null;
  }
  return parsed;
}

/** `sandlock ps`: returns the exit code. */
export async function psCommand(argv: readonly string[]): Promise<number> {
  const reporter: Reporter = { json: false, statusFd: null };
  try {
    const parsed = helpOrParse(argv, PS_OPTIONS, 'sandlock ps', PS_HELP);
    if (parsed === null) return 0;
    if (parsed.rest.length > 0) {
      throw new UsageError(`sandlock ps: unexpected argument '${parsed.rest[0]}'`);
    }
    const entries = await Sandbox.list();
    process.stdout.write(
      parsed.options.has('json')
        ? `${JSON.stringify(entries, null, 2)}\n`
        : `${table(entries, Date.now())}\n`,
    );
    return 0;
  } catch (error) {
    return reportError(reporter, error);
  }
}

/**
 * The entry's policy as a profile; as JSON when it no longer passes the
 * policy's checks here (a plugin file removed since, another version's field).
 */
function asProfile(entry: SandboxEntry): string {
  let body: string;
  try {
    body = profileText(Sandbox.fromPolicy(entry.policy).policy);
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0];
    return `# not shown as a profile (${reason}); as JSON:\n${JSON.stringify(entry.policy, null, 2)}\n`;
  }
  return body === '' ? '' : `\n${body}`;
}

/** `sandlock inspect`: returns the exit code. */
export async function inspectCommand(argv: readonly string[]): Promise<number> {
  const reporter: Reporter = { json: false, statusFd: null };
  try {
    const parsed = helpOrParse(argv, INSPECT_OPTIONS, 'sandlock inspect', INSPECT_HELP);
    if (parsed === null) return 0;
    const name = nameArgument(parsed.rest, 'sandlock inspect');
    const entry = (await Sandbox.list()).find((each) => each.name === name);
    if (entry === undefined) {
      process.stderr.write(
        `sandlock inspect: no running sandbox is called '${name}' (sandlock ps lists them)\n`,
      );
      return 1;
    }
    if (parsed.options.has('json')) {
      process.stdout.write(`${JSON.stringify(entry, null, 2)}\n`);
      return 0;
    }
    const header = [
      `# sandbox ${entry.name}: pid ${entry.pid}, started ${entry.startedAt}`,
      `# command: ${commandLine(entry)}`,
      ...(entry.ports.length > 0 ? [`# ports: ${portsOf(entry)}`] : []),
      '# its policy (fields at their defaults left out):',
    ];
    process.stdout.write(`${header.join('\n')}\n${asProfile(entry)}`);
    return 0;
  } catch (error) {
    return reportError(reporter, error);
  }
}

/** `sandlock kill`: returns the exit code. */
export async function killCommand(argv: readonly string[]): Promise<number> {
  const reporter: Reporter = { json: false, statusFd: null };
  try {
    const parsed = helpOrParse(argv, KILL_OPTIONS, 'sandlock kill', KILL_HELP);
    if (parsed === null) return 0;
    const given = parsed.options.get('signal')?.at(-1);
    const signal = given === undefined ? 'SIGKILL' : signalOf(given);
    const name = nameArgument(parsed.rest, 'sandlock kill');
    try {
      await Sandbox.kill(name, signal);
    } catch (error) {
      const code = notFound(error);
      if (code !== null) return code;
      throw error;
    }
    return 0;
  } catch (error) {
    return reportError(reporter, error);
  }
}
