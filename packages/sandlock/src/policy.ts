import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isAbsolute } from 'node:path';
import { parseByteSize } from '@sandlock/resource';
import { PolicyError, type PolicyProblem } from './errors.js';

/** A TCP port, or an inclusive range of ports. */
export type PortSpec = number | { from: number; to: number };

/**
 * What a sandbox may do. Plain, immutable data: it round-trips through JSON
 * (`JSON.stringify(policy)` and {@link parsePolicy}).
 */
export interface Policy {
  /** Paths readable (and executable) beneath; nothing else is. */
  readonly fsRead: readonly string[];
  /** Paths readable, executable and writable beneath. */
  readonly fsWrite: readonly string[];
  /** Paths hidden inside readable or writable trees. */
  readonly fsDeny: readonly string[];
  /** Variables set for the program, over the inherited (or, with cleanEnv, empty) environment. */
  readonly env: Readonly<Record<string, string>>;
  /** Start from an empty environment instead of this process's. */
  readonly cleanEnv: boolean;
  /** Working directory of the program (default: this process's). */
  readonly cwd: string | null;
  readonly noRandomizeMemory: boolean;
  readonly noHugePages: boolean;
  readonly noCoredump: boolean;
  /** CPUs the program may run on (sched_setaffinity). */
  readonly cpuCores: readonly number[] | null;
  /** RLIMIT_NOFILE for the program. */
  readonly maxOpenFiles: number | null;
  /** TCP ports the program may bind; none by default. */
  readonly netBind: readonly PortSpec[];
  /** TCP ports the program may connect to; none by default. */
  readonly netConnect: readonly PortSpec[];
  /** Refuse raw IP and packet sockets (default true). */
  readonly noRawSockets: boolean;
  /** Refuse UDP sockets (default false). */
  readonly noUdp: boolean;
  /** Drop protections the kernel cannot provide, and say which, instead of refusing to run. */
  readonly bestEffort: boolean;
  /** The most memory (bytes) the sandbox may use at once; it is killed above. */
  readonly maxMemory: number | null;
  /** The most processes of the sandbox at once (threads not counted); more forks get EAGAIN. */
  readonly maxProcesses: number | null;
  /** CPU time as a percentage of one CPU (50 = half of one, 200 = two). */
  readonly maxCpu: number | null;
  /** Third-party supervisor handler modules (see @sandlock/dispatch). */
  readonly plugins: readonly PluginRef[];
  /** The host name the sandbox sees (uname, /etc/hostname). */
  readonly hostname: string | null;
  /** The number of CPUs the sandbox sees (sched_getaffinity, /proc/cpuinfo, /sys). */
  readonly numCpus: number | null;
  /** Directory listings sorted by name, so that runs do not depend on the filesystem's order. */
  readonly deterministicDirs: boolean;
  /**
   * Seed of the randomness the sandbox sees (getrandom, /dev/urandom, /dev/random): a
   * decimal u64. Each process gets its own stream, by its place in the process tree.
   */
  readonly randomSeed: string | null;
  /** The wall-clock instant the sandbox starts at (epoch milliseconds); it then ticks. */
  readonly timeStart: number | null;
}

/** A handler module for the supervisor: a file URL or absolute path, and its options. */
export interface PluginRef {
  readonly module: string;
  readonly options?: unknown;
}

export const DEFAULT_POLICY: Policy = Object.freeze({
  fsRead: [],
  fsWrite: [],
  fsDeny: [],
  env: {},
  cleanEnv: false,
  cwd: null,
  noRandomizeMemory: false,
  noHugePages: false,
  noCoredump: false,
  cpuCores: null,
  maxOpenFiles: null,
  netBind: [],
  netConnect: [],
  noRawSockets: true,
  noUdp: false,
  bestEffort: false,
  maxMemory: null,
  maxProcesses: null,
  maxCpu: null,
  plugins: [],
  hostname: null,
  numCpus: null,
  deterministicDirs: false,
  randomSeed: null,
  timeStart: null,
});

const FIELDS = Object.keys(DEFAULT_POLICY) as (keyof Policy)[];

type Check<T> = (value: unknown, field: string, problems: PolicyProblem[]) => T | undefined;

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

const bool: Check<boolean> = (value, field, problems) => {
  if (typeof value === 'boolean') return value;
  problems.push({ field, message: `expected true or false, got ${typeName(value)}` });
  return undefined;
};

function integer(min: number, max: number, what: string): Check<number> {
  return (value, field, problems) => {
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) {
      return value;
    }
    problems.push({
      field,
      message: `expected ${what} from ${min} to ${max}, got ${typeName(value)}`,
    });
    return undefined;
  };
}

function existingPath(
  value: unknown,
  field: string,
  problems: PolicyProblem[],
): string | undefined {
  if (typeof value !== 'string' || value === '' || value.includes('\0') || !isAbsolute(value)) {
    problems.push({ field, message: `expected an absolute path, got ${typeName(value)}` });
    return undefined;
  }
  if (!existsSync(value)) {
    problems.push({ field, message: `${value} does not exist` });
    return undefined;
  }
  return value;
}

function list<T>(check: Check<T>): Check<T[]> {
  return (value, field, problems) => {
    if (!Array.isArray(value)) {
      problems.push({ field, message: `expected a list, got ${typeName(value)}` });
      return undefined;
    }
    const out: T[] = [];
    value.forEach((item, index) => {
      const checked = check(item, `${field}[${index}]`, problems);
      if (checked !== undefined) out.push(checked);
    });
    return out;
  };
}

function nullable<T>(check: Check<T>): Check<T | null> {
  return (value, field, problems) => (value === null ? null : check(value, field, problems));
}

const port = integer(0, 65535, 'a TCP port');

const portSpec: Check<PortSpec> = (value, field, problems) => {
  if (typeof value === 'number') return port(value, field, problems);
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const { from, to, ...rest } = value as Record<string, unknown>;
    const low = port(from, `${field}.from`, problems);
    const high = port(to, `${field}.to`, problems);
    if (Object.keys(rest).length > 0) {
      problems.push({ field, message: `unknown keys ${Object.keys(rest).join(', ')}` });
      return undefined;
    }
    if (low === undefined || high === undefined) return undefined;
    if (low > high) {
      problems.push({ field, message: `range start ${low} is above its end ${high}` });
      return undefined;
    }
    return { from: low, to: high };
  }
  problems.push({
    field,
    message: `expected a TCP port or a range {from, to}, got ${typeName(value)}`,
  });
  return undefined;
};

const environment: Check<Record<string, string>> = (value, field, problems) => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.push({ field, message: `expected an object of strings, got ${typeName(value)}` });
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const [key, text] of Object.entries(value)) {
    if (key === '' || key.includes('=') || key.includes('\0')) {
      problems.push({
        field,
        message: `variable name ${JSON.stringify(key)} must be non-empty, without '=' or NUL`,
      });
    } else if (typeof text !== 'string' || text.includes('\0')) {
      problems.push({
        field: `${field}.${key}`,
        message: `expected a string without NUL, got ${typeName(text)}`,
      });
    } else {
      out[key] = text;
    }
  }
  return out;
};

const cpu: Check<number> = (value, field, problems) =>
  integer(0, availableParallelism() - 1, 'a CPU number')(value, field, problems);

const byteSize: Check<number> = (value, field, problems) => {
  let reason = `expected a size such as 512M, 2GiB or a number of bytes, got ${typeName(value)}`;
  if (typeof value === 'number' || typeof value === 'string') {
    try {
      const bytes = parseByteSize(value);
      if (bytes >= 1) return bytes;
      reason = `expected at least 1 byte, got ${typeName(value)}`;
    } catch (error) {
      reason = (error as Error).message;
    }
  }
  problems.push({ field, message: reason });
  return undefined;
};

const plugin: Check<PluginRef> = (value, field, problems) => {
  const ref = value as { module?: unknown; options?: unknown } | null;
  const module = ref && typeof ref === 'object' ? ref.module : undefined;
  if (typeof module !== 'string' || !(module.startsWith('file:') || isAbsolute(module))) {
    problems.push({
      field,
      message: `expected { module: a file: URL or an absolute path, options? }, got ${typeName(value)}`,
    });
    return undefined;
  }
  try {
    structuredClone(ref!.options);
  } catch {
    problems.push({
      field: `${field}.options`,
      message: 'expected plain data (it is sent to worker threads)',
    });
    return undefined;
  }
  return ref!.options === undefined ? { module } : { module, options: ref!.options };
};

const U64_MAX = (1n << 64n) - 1n;

/** A u64 seed: a non-negative safe integer, a bigint, or a string of decimal digits. */
const seed: Check<string> = (value, field, problems) => {
  let parsed: bigint | undefined;
  if (typeof value === 'bigint') parsed = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) parsed = BigInt(value);
  else if (typeof value === 'string' && /^[0-9]{1,20}$/.test(value)) parsed = BigInt(value);
  if (parsed !== undefined && parsed >= 0n && parsed <= U64_MAX) return parsed.toString();
  problems.push({
    field,
    message: `expected an integer from 0 to ${U64_MAX} (a number, bigint or decimal string), got ${typeName(value)}`,
  });
  return undefined;
};

const LAST_INSTANT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * An instant: epoch milliseconds, a Date, or an ISO 8601 date-time with its
 * time zone (`2000-01-01T00:00:00Z`, `2000-01-01T01:00:00+01:00`); a bare date
 * (`2000-01-01`) is midnight UTC.
 */
const instant: Check<number> = (value, field, problems) => {
  let ms: number | undefined;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'number' && Number.isInteger(value)) ms = value;
  else if (
    typeof value === 'string' &&
    /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(value)
  ) {
    ms = Date.parse(value);
  }
  if (ms !== undefined && Number.isFinite(ms) && ms >= 0 && ms <= LAST_INSTANT) {
    return ms;
  }
  problems.push({
    field,
    message: `expected an ISO 8601 date-time with a time zone (2000-01-01T00:00:00Z), a Date or epoch milliseconds, from 1970 to 9999, got ${value instanceof Date ? 'an invalid Date' : typeName(value)}`,
  });
  return undefined;
};

const CHECKS: { [K in keyof Policy]: Check<Policy[K]> } = {
  fsRead: list(existingPath),
  fsWrite: list(existingPath),
  fsDeny: list((value, field, problems) => {
    if (typeof value !== 'string' || !isAbsolute(value) || value.includes('\0')) {
      problems.push({ field, message: `expected an absolute path, got ${typeName(value)}` });
      return undefined;
    }
    return value;
  }),
  env: environment,
  cleanEnv: bool,
  cwd: nullable(existingPath),
  noRandomizeMemory: bool,
  noHugePages: bool,
  noCoredump: bool,
  cpuCores: nullable((value, field, problems) => {
    const cores = list(cpu)(value, field, problems);
    if (Array.isArray(value) && value.length === 0) {
      problems.push({ field, message: 'expected at least one CPU (or leave it unset)' });
      return undefined;
    }
    return cores;
  }),
  maxOpenFiles: nullable(integer(1, 1 << 30, 'a number of open files')),
  netBind: list(portSpec),
  netConnect: list(portSpec),
  noRawSockets: bool,
  noUdp: bool,
  bestEffort: bool,
  maxMemory: nullable(byteSize),
  maxProcesses: nullable(integer(1, 1 << 22, 'a number of processes')),
  maxCpu: nullable((value, field, problems) =>
    integer(1, 100 * availableParallelism(), 'a percentage of one CPU')(value, field, problems),
  ),
  plugins: list(plugin),
  hostname: nullable((value, field, problems) => {
    if (
      typeof value !== 'string' ||
      value === '' ||
      /[\0\n]/.test(value) ||
      Buffer.byteLength(value) > 64
    ) {
      problems.push({
        field,
        message: `expected a name of 1 to 64 bytes without NUL or newline, got ${typeName(value)}`,
      });
      return undefined;
    }
    return value;
  }),
  numCpus: nullable(integer(1, 4096, 'a number of CPUs')),
  deterministicDirs: bool,
  randomSeed: nullable(seed),
  timeStart: nullable(instant),
};

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/**
 * Checks every field of `input` (a partial policy: missing fields take their
 * defaults) and returns the frozen policy, or throws one {@link PolicyError}
 * naming every problem.
 */
export function parsePolicy(input: unknown): Policy {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new PolicyError([
      { field: 'policy', message: `expected an object, got ${typeName(input)}` },
    ]);
  }
  const problems: PolicyProblem[] = [];
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(input)) {
    if (!(FIELDS as string[]).includes(key)) {
      problems.push({ field: key, message: 'unknown field' });
    }
  }
  for (const field of FIELDS) {
    const value = (input as Record<string, unknown>)[field];
    if (value === undefined) {
      out[field] = structuredClone(DEFAULT_POLICY[field]);
      continue;
    }
    const check = CHECKS[field] as Check<unknown>;
    out[field] = check(value, field, problems);
  }
  if (problems.length > 0) throw new PolicyError(problems);
  return deepFreeze(out as unknown as Policy);
}
