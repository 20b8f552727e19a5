import type { StdioEntry } from '@sandlock/sys';
import { badSandboxName, SANDBOX_NAME_RULE } from './registry.js';

/** The program's standard streams: one form for all three, or one entry each. */
export type StdioOption =
  | 'pipe'
  | 'inherit'
  | 'ignore'
  | readonly [StdioEntry, StdioEntry, StdioEntry];

/** What execa buffers by default, per stream: 100 MB. */
export const DEFAULT_MAX_BUFFER = 100_000_000;

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

/** A mistake in the arguments of spawn() or run(). */
function wrong(call: string, what: string, value: unknown): TypeError {
  return new TypeError(`sandlock: ${call}: ${what}, got ${kindOf(value)}`);
}

/** argv: a non-empty array of strings without NUL, the first not empty. */
export function checkArgv(call: string, argv: unknown): readonly string[] {
  if (!Array.isArray(argv)) {
    throw wrong(call, "argv must be an array such as ['ls', '-l'] (a string is not split)", argv);
  }
  if (argv.length === 0 || argv[0] === '') {
    throw wrong(call, 'the command (argv[0]) must be a non-empty string', argv[0]);
  }
  argv.forEach((arg, index) => {
    if (typeof arg !== 'string' || arg.includes('\0')) {
      throw wrong(call, `argv[${index}] must be a string without NUL`, arg);
    }
  });
  return argv;
}

/**
 * Checks the options object: known names only, each of its type. `known`
 * maps each name to a check returning the problem, or null.
 */
export function checkOptions(
  call: string,
  options: unknown,
  known: Readonly<Record<string, (value: unknown) => string | null>>,
): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw wrong(call, 'options must be an object', options);
  }
  for (const [name, value] of Object.entries(options)) {
    const check = known[name];
    if (check === undefined) {
      throw new TypeError(
        `sandlock: ${call}: unknown option '${name}' (known: ${Object.keys(known).join(', ')})`,
      );
    }
    if (value === undefined) continue;
    const problem = check(value);
    if (problem !== null) throw wrong(call, `${name} must be ${problem}`, value);
  }
}

const ENTRY_WORDS = ['pipe', 'inherit', 'ignore'];

/** Checks of the options spawn() and run() share. */
export const SPAWN_CHECKS: Readonly<Record<string, (value: unknown) => string | null>> = {
  stdio: (value) => {
    if (typeof value === 'string')
      return ENTRY_WORDS.includes(value) ? null : "'pipe', 'inherit' or 'ignore'";
    return Array.isArray(value) && value.length === 3
      ? null
      : "'pipe', 'inherit', 'ignore' or an array of three entries";
  },
  env: (value) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      return 'an object of strings';
    for (const [key, text] of Object.entries(value)) {
      if (key === '' || key.includes('=') || /[\u0000-\u001f\u007f]/.test(key)) {
        return `an object of variables (the name ${JSON.stringify(key)} has '=' or a control character)`;
      }
      if (typeof text !== 'string' || text.includes('\0')) {
        return `an object of strings (${key} is ${kindOf(text)})`;
      }
    }
    return null;
  },
  cwd: (value) => (typeof value === 'string' && value.startsWith('/') ? null : 'an absolute path'),
  onRefusal: (value) => (typeof value === 'function' ? null : 'a function'),
  name: (value) => (badSandboxName(value) === null ? null : SANDBOX_NAME_RULE),
  workdirEnd: (value) =>
    value === 'policy' || value === 'dry-run' || value === 'defer'
      ? null
      : "'policy', 'dry-run' or 'defer'",
  extraFilter: (value) =>
    value !== null &&
    typeof value === 'object' &&
    Buffer.isBuffer((value as { program?: unknown }).program)
      ? null
      : 'an object with a program Buffer (a compiled seccomp filter)',
  user: (value) => {
    const id = (n: unknown) =>
      Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) < 2 ** 32 - 1;
    if (value === null || typeof value !== 'object')
      return 'an object { uid, gid, groups?, umask? }';
    const { uid, gid, groups, umask, ...rest } = value as Record<string, unknown>;
    if (Object.keys(rest).length > 0)
      return `an object { uid, gid, groups?, umask? } (unknown ${Object.keys(rest).join(', ')})`;
    if (!id(uid) || !id(gid)) return 'an object whose uid and gid are ids (0 to 4294967294)';
    if (
      groups !== undefined &&
      (!Array.isArray(groups) || !groups.every(id) || groups.length > 65536)
    ) {
      return 'an object whose groups is a list of ids';
    }
    if (
      umask !== undefined &&
      !(Number.isInteger(umask) && (umask as number) >= 0 && (umask as number) <= 0o777)
    ) {
      return 'an object whose umask is 0 to 0o777';
    }
    return null;
  },
  joinable: (value) => (typeof value === 'boolean' ? null : 'true or false'),
  terminal: (value) => (typeof value === 'boolean' ? null : 'true or false'),
};

/** The three entries of a stdio option (`'inherit'` → three times 'inherit'; null for 'ignore'). */
export function stdioEntries(
  stdio: StdioOption | undefined,
): readonly [StdioEntry, StdioEntry, StdioEntry] {
  if (stdio === undefined || stdio === 'pipe') return ['pipe', 'pipe', 'pipe'];
  if (stdio === 'inherit') return ['inherit', 'inherit', 'inherit'];
  if (stdio === 'ignore') return ['ignore', 'ignore', 'ignore'];
  return stdio;
}

/** A positive, finite number of milliseconds. */
export function positiveMs(value: unknown): string | null {
  return typeof value === 'number' && Number.isFinite(value) && value > 0
    ? null
    : 'a positive, finite number of milliseconds';
}
