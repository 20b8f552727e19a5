import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Origin, type PolicyProblem, shown } from './origin.js';
import { parseByteSize } from './size.js';

/** Where a value is being checked: its field path and origin; collects problems. */
export class At {
  constructor(
    readonly field: string,
    readonly origin: Origin,
    private readonly problems: PolicyProblem[],
  ) {}

  /** The same origin, one level down: `fsRead[2]`, `env.PATH`, `netBind[0].from`. */
  inner(suffix: string): At {
    return new At(`${this.field}${suffix}`, this.origin, this.problems);
  }

  problem(message: string): undefined {
    const origin = this.origin.kind === 'value' ? {} : { origin: this.origin };
    this.problems.push({ field: this.field, message, ...origin });
    return undefined;
  }

  /** `expected <what>, got <value as the user wrote it>`. */
  expected(what: string, value: unknown): undefined {
    return this.problem(`expected ${what}, got ${shown(value, this.origin)}`);
  }
}

/** A JSON Schema fragment. */
export type Schema = Readonly<Record<string, unknown>>;

/**
 * A type of policy value: how a value is checked (from a policy object or a
 * profile, whose values are JSON-like), how a flag's text becomes such a
 * value, its JSON Schema, and how the reference describes it.
 */
export interface Kind<T> {
  /** Returns the checked value, or undefined after reporting problems at `at`. */
  check(value: unknown, at: At): T | undefined;
  /** A flag's text as a value for `check` (default: the text). */
  fromText?(text: string): unknown;
  readonly schema: Schema;
  /** The values it takes, for the reference: `a size such as 512M`. */
  readonly describe: string;
}

export const bool: Kind<boolean> = {
  check: (value, at) => (typeof value === 'boolean' ? value : at.expected('true or false', value)),
  fromText: (text) => (text === 'true' ? true : text === 'false' ? false : text),
  schema: { type: 'boolean' },
  describe: 'true or false',
};

function wholeNumber(text: string): unknown {
  return /^-?\d+$/.test(text.trim()) ? Number(text) : text;
}

export function integer(
  min: number,
  max: number | (() => number),
  what: string,
  /** For a bound of this machine: how the reference names it. */
  maxText?: string,
  /** Why the bounds are what they are, for problems. */
  why?: string,
): Kind<number> {
  const high = () => (typeof max === 'function' ? max() : max);
  return {
    check(value, at) {
      if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= high()) {
        return value;
      }
      const reason = why === undefined ? '' : ` (${why})`;
      return at.problem(
        `expected ${what} from ${min} to ${high()}, got ${shown(value, at.origin)}${reason}`,
      );
    },
    fromText: wholeNumber,
    schema:
      typeof max === 'function'
        ? { type: 'integer', minimum: min }
        : { type: 'integer', minimum: min, maximum: max },
    describe: `${what} from ${min} to ${typeof max === 'function' ? maxText : max}${why === undefined ? '' : ` (${why})`}`,
  };
}

function absolute(value: unknown): value is string {
  return typeof value === 'string' && value !== '' && !value.includes('\0') && isAbsolute(value);
}

export const path: Kind<string> = {
  check: (value, at) => (absolute(value) ? value : at.expected('an absolute path', value)),
  schema: { type: 'string', pattern: '^/' },
  describe: 'an absolute path',
};

export const existingPath: Kind<string> = {
  check(value, at) {
    if (!absolute(value)) return at.expected('an absolute path', value);
    if (!existsSync(value)) return at.problem(`${value} does not exist`);
    return value;
  },
  schema: path.schema,
  describe: 'an absolute path that exists',
};

/** An existing directory, by absolute path. */
export const existingDirectory: Kind<string> = {
  check(value, at) {
    if (!absolute(value)) return at.expected('an absolute path', value);
    let directory: boolean;
    try {
      directory = statSync(value).isDirectory();
    } catch {
      return at.problem(`${value} does not exist`);
    }
    return directory ? value : at.problem(`${value} is not a directory`);
  },
  schema: path.schema,
  describe: 'an absolute path of a directory that exists',
};

/** One of a few words. */
export function oneOf<const T extends string>(values: readonly T[]): Kind<T> {
  const words = values.join(', ');
  return {
    check: (value, at) =>
      typeof value === 'string' && (values as readonly string[]).includes(value)
        ? (value as T)
        : at.expected(`one of ${words}`, value),
    schema: { type: 'string', enum: [...values] },
    describe: `one of ${values.map((value) => `\`${value}\``).join(', ')}`,
  };
}

/** A list; a flag's text is one item (or, with `split`, several). */
export function list<T>(
  item: Kind<T>,
  options: { split?: (text: string) => unknown[] } = {},
): Kind<T[]> {
  return {
    check(value, at) {
      if (!Array.isArray(value)) return at.expected('a list', value);
      const out: T[] = [];
      let bad = false;
      value.forEach((element, index) => {
        const checked = item.check(element, at.inner(`[${index}]`));
        if (checked === undefined) bad = true;
        else out.push(checked);
      });
      return bad ? undefined : out;
    },
    fromText: (text) => options.split?.(text) ?? [item.fromText ? item.fromText(text) : text],
    schema: { type: 'array', items: item.schema },
    describe: `a list, each ${item.describe}`,
  };
}

/** A kind whose unset value is null. */
export function nullable<T>(kind: Kind<T>): Kind<T | null> {
  return {
    check: (value, at) => (value === null ? null : kind.check(value, at)),
    ...(kind.fromText ? { fromText: kind.fromText } : {}),
    schema: kind.schema,
    describe: kind.describe,
  };
}

/** A TCP port, or an inclusive range of ports. */
export type PortSpec = number | { readonly from: number; readonly to: number };

const tcpPort = integer(0, 65535, 'a TCP port');

export const portSpec: Kind<PortSpec> = {
  check(value, at) {
    if (typeof value === 'string') {
      const match = /^(\d+)(?:-(\d+))?$/.exec(value.trim());
      if (!match) return at.expected('a TCP port or a range FROM-TO', value);
      value =
        match[2] === undefined
          ? Number(match[1])
          : { from: Number(match[1]), to: Number(match[2]) };
    }
    if (typeof value === 'number') return tcpPort.check(value, at);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const { from, to, ...rest } = value as Record<string, unknown>;
      const low = tcpPort.check(from, at.inner('.from'));
      const high = tcpPort.check(to, at.inner('.to'));
      if (Object.keys(rest).length > 0)
        return at.problem(`unknown keys ${Object.keys(rest).join(', ')}`);
      if (low === undefined || high === undefined) return undefined;
      if (low > high) return at.problem(`range start ${low} is above its end ${high}`);
      return { from: low, to: high };
    }
    return at.expected('a TCP port or a range {from, to}', value);
  },
  fromText: (text) => text,
  schema: {
    oneOf: [
      { type: 'integer', minimum: 0, maximum: 65535 },
      { type: 'string', pattern: '^\\d+(-\\d+)?$' },
      {
        type: 'object',
        properties: {
          from: { type: 'integer', minimum: 0, maximum: 65535 },
          to: { type: 'integer', minimum: 0, maximum: 65535 },
        },
        required: ['from', 'to'],
        additionalProperties: false,
      },
    ],
  },
  describe: 'a TCP port (8080) or a range (8000-8100, or {from, to})',
};

// The C0 control characters and DEL.
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Environment variables: names without `=` or control characters, values without NUL. */
export const variables: Kind<Record<string, string>> = {
  check(value, at) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return at.expected(at.origin.kind === 'flag' ? 'KEY=VALUE' : 'an object of strings', value);
    }
    const out: Record<string, string> = {};
    let bad = false;
    for (const [key, text] of Object.entries(value)) {
      if (key === '' || key.includes('=') || CONTROL.test(key)) {
        bad = true;
        at.problem(
          `variable name ${JSON.stringify(key)} must be non-empty, without '=' or control characters`,
        );
      } else if (typeof text !== 'string' || text.includes('\0')) {
        bad = true;
        at.inner(`.${key}`).expected('a string without NUL', text);
      } else {
        out[key] = text;
      }
    }
    return bad ? undefined : out;
  },
  fromText(text) {
    const eq = text.indexOf('=');
    return eq <= 0 ? text : { [text.slice(0, eq)]: text.slice(eq + 1) };
  },
  schema: { type: 'object', additionalProperties: { type: 'string' } },
  describe: 'variables: names and string values',
};

/** A CPU of this machine. */
export const cpu = integer(
  0,
  () => availableParallelism() - 1,
  'a CPU number',
  'the last CPU of the machine',
);

/** `0,2-3` as [0, 2, 3]; a part that is not CPUs of this machine stays text, to be reported. */
export function cpuList(text: string): unknown[] {
  const cores: unknown[] = [];
  for (const part of text.split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!match) {
      cores.push(part);
      continue;
    }
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : Number(match[2]);
    // A part naming a CPU this machine does not have stays text: one problem
    // for it, however wide the range.
    if (from > to || to >= availableParallelism()) cores.push(part);
    else for (let core = from; core <= to; core++) cores.push(core);
  }
  return cores;
}

const SIZE_EXAMPLE = 'a size like 64M or 2G';

/** A size in bytes: a number of bytes, or text with a unit (K, M, G, T; binary). */
export const byteSize: Kind<number> = {
  check(value, at) {
    if (typeof value === 'string' && !/[a-z]\s*$/i.test(value))
      return at.expected(SIZE_EXAMPLE, value);
    if (typeof value !== 'number' && typeof value !== 'string')
      return at.expected(SIZE_EXAMPLE, value);
    let bytes: number;
    try {
      bytes = parseByteSize(value);
    } catch {
      return at.expected(SIZE_EXAMPLE, value);
    }
    return bytes >= 1 ? bytes : at.expected('at least 1 byte', value);
  },
  schema: {
    oneOf: [
      { type: 'integer', minimum: 1 },
      {
        type: 'string',
        pattern: '^\\s*(\\d+(\\.\\d*)?|\\.\\d+)\\s*([kKmMgGtT]([iI]?[bB])?|[bB])\\s*$',
      },
    ],
  },
  describe: `${SIZE_EXAMPLE} (binary units K, M, G, T; a number is bytes)`,
};

/** A handler module for the supervisor: a file URL or absolute path, and its options. */
export interface PluginRef {
  readonly module: string;
  readonly options?: unknown;
}

export const plugin: Kind<PluginRef> = {
  check(value, at) {
    const given = value;
    if (typeof value === 'string' && !value.trimStart().startsWith('{')) value = { module: value };
    else if (typeof value === 'string') {
      try {
        value = JSON.parse(value);
      } catch {
        return at.expected('a module path, or a JSON object {"module", "options"}', value);
      }
    }
    const ref = value as { module?: unknown; options?: unknown } | null;
    const module = ref && typeof ref === 'object' && !Array.isArray(ref) ? ref.module : undefined;
    if (typeof module !== 'string' || !(module.startsWith('file:') || isAbsolute(module))) {
      return at.expected('{ module: a file: URL or an absolute path, options? }', given);
    }
    const extra = Object.keys(ref!).filter((key) => key !== 'module' && key !== 'options');
    if (extra.length > 0) return at.problem(`unknown keys ${extra.join(', ')}`);
    let file: string;
    try {
      file = module.startsWith('file:') ? fileURLToPath(module) : module;
    } catch {
      return at.expected('a file: URL of a local file', module);
    }
    if (!existsSync(file)) return at.inner('.module').problem(`${file} does not exist`);
    try {
      structuredClone(ref!.options);
    } catch {
      return at.inner('.options').problem('expected plain data (it is sent to worker threads)');
    }
    return ref!.options === undefined ? { module } : { module, options: ref!.options };
  },
  schema: {
    type: 'object',
    properties: { module: { type: 'string' }, options: {} },
    required: ['module'],
    additionalProperties: false,
  },
  describe: 'a handler module: a file: URL or an absolute path, and its options',
};

/** One mount of a chroot, `VIRT:HOST` or `VIRT:HOST:ro`, parsed. */
export interface MountSpec {
  /** Where it appears inside the root (absolute, as the sandbox sees it). */
  virtual: string;
  /** What appears there: a host directory or file. */
  host: string;
  readOnly: boolean;
}

/** `VIRT:HOST[:ro]` parsed; a string saying what is wrong otherwise. */
export function parseMount(text: string): MountSpec | string {
  const parts = text.split(':');
  const readOnly = parts.length === 3 && parts[2] === 'ro';
  if (parts.length !== 2 && !readOnly) return 'VIRT:HOST or VIRT:HOST:ro';
  const [virtual, host] = parts as [string, string];
  if (!absolute(virtual) || !absolute(host)) return 'VIRT:HOST with both paths absolute';
  const below = virtual.split('/').filter((part) => part !== '' && part !== '.');
  if (below.length === 0 || below.includes('..')) {
    return 'VIRT:HOST with VIRT a path below / (no `..`)';
  }
  return { virtual, host, readOnly };
}

/** A chroot mount, `VIRT:HOST[:ro]`, whose HOST exists; kept as written. */
export const mountSpec: Kind<string> = {
  check(value, at) {
    if (typeof value !== 'string') return at.expected('VIRT:HOST[:ro]', value);
    const parsed = parseMount(value);
    if (typeof parsed === 'string') return at.expected(parsed, value);
    if (!existsSync(parsed.host)) return at.problem(`${parsed.host} does not exist`);
    return value;
  },
  schema: { type: 'string', pattern: '^/[^:]*:/[^:]*(:ro)?$' },
  describe: '`VIRT:HOST` or `VIRT:HOST:ro`, both absolute paths, HOST existing',
};

const HOST_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export const hostname: Kind<string> = {
  check(value, at) {
    if (typeof value !== 'string' || !HOST_NAME.test(value) || Buffer.byteLength(value) > 64) {
      return at.expected(
        "a host name of 1 to 64 letters, digits, '-', '_' and '.' (not starting with '-' or '.')",
        value,
      );
    }
    return value;
  },
  schema: { type: 'string', pattern: HOST_NAME.source, maxLength: 64 },
  describe: "a host name of 1 to 64 letters, digits, '-', '_' and '.'",
};

const U64_MAX = (1n << 64n) - 1n;

/** A u64 seed: a non-negative safe integer, a bigint, or a string of decimal digits; kept as text. */
export const seed: Kind<string> = {
  check(value, at) {
    let parsed: bigint | undefined;
    if (typeof value === 'bigint') parsed = value;
    else if (typeof value === 'number' && Number.isSafeInteger(value)) parsed = BigInt(value);
    else if (typeof value === 'string' && /^[0-9]{1,20}$/.test(value)) parsed = BigInt(value);
    if (parsed !== undefined && parsed >= 0n && parsed <= U64_MAX) return parsed.toString();
    return at.expected(
      at.origin.kind === 'flag'
        ? 'a whole number from 0 to 2^64-1'
        : `an integer from 0 to ${U64_MAX} (a number, bigint or decimal string)`,
      value,
    );
  },
  schema: {
    oneOf: [
      { type: 'integer', minimum: 0 },
      { type: 'string', pattern: '^[0-9]{1,20}$' },
    ],
  },
  describe: 'a whole number from 0 to 2^64-1',
};

const LAST_INSTANT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;

/** The date part names a day of the calendar (Date.parse turns 2000-02-30 into 1 March). */
function realDate(text: string): boolean {
  const [year, month, day] = text.slice(0, 10).split('-').map(Number) as [number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  return (
    date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day
  );
}

/**
 * An instant: epoch milliseconds, a Date, or an ISO 8601 date-time with its
 * time zone (`2000-01-01T00:00:00Z`, `2000-01-01T01:00:00+01:00`); a bare date
 * (`2000-01-01`) is midnight UTC. A TOML date-time arrives as a Date.
 */
export const instant: Kind<number> = {
  check(value, at) {
    let ms: number | undefined;
    if (value instanceof Date) ms = value.getTime();
    else if (typeof value === 'number' && Number.isInteger(value)) ms = value;
    else if (typeof value === 'string' && ISO_INSTANT.test(value) && realDate(value)) {
      ms = Date.parse(value);
    }
    if (ms !== undefined && Number.isFinite(ms) && ms >= 0 && ms <= LAST_INSTANT) return ms;
    return at.problem(
      `expected an ISO 8601 date-time with a time zone (2000-01-01T00:00:00Z)${at.origin.kind === 'flag' ? '' : ', a Date or epoch milliseconds'}, from 1970 to 9999, got ${value instanceof Date ? 'an invalid Date' : shown(value, at.origin)}`,
    );
  },
  schema: {
    oneOf: [
      { type: 'string', format: 'date-time' },
      { type: 'string', format: 'date' },
      { type: 'integer', minimum: 0 },
    ],
  },
  describe: 'an ISO 8601 date-time with a time zone, such as 2000-01-01T00:00:00Z',
};
