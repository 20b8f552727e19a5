import { UsageError } from './errors.js';

export interface OptionTable {
  /** Options that take a value: long name → short letter ('' for none). */
  values: Record<string, string>;
  /** Switches: long name → short letter ('' for none). */
  switches: Record<string, string>;
}

export interface Parsed {
  options: Map<string, string>;
  switches: Set<string>;
  positional: string[];
}

/**
 * Reads runc-style options: `--name value`, `--name=value`, `-n value`,
 * switches `--all`/`-a` (also `--all=true`), anywhere before `--`.
 */
export function parseOptions(argv: readonly string[], table: OptionTable, where: string): Parsed {
  const parsed: Parsed = { options: new Map(), switches: new Set(), positional: [] };
  const byShort = new Map<string, string>();
  for (const [long, short] of [
    ...Object.entries(table.values),
    ...Object.entries(table.switches),
  ]) {
    if (short !== '') byShort.set(short, long);
  }
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === '--') {
      parsed.positional.push(...argv.slice(index + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      parsed.positional.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const equals = body.indexOf('=');
    const key = equals < 0 ? body : body.slice(0, equals);
    const name = arg.startsWith('--') ? key : (byShort.get(key) ?? key);
    if (name in table.values) {
      let value: string | undefined;
      if (equals >= 0) value = body.slice(equals + 1);
      else value = argv[++index];
      if (value === undefined) throw new UsageError(`${where}: ${arg} needs a value`);
      parsed.options.set(name, value);
    } else if (name in table.switches) {
      const value = equals < 0 ? 'true' : body.slice(equals + 1);
      if (value === 'true') parsed.switches.add(name);
      else if (value === 'false') parsed.switches.delete(name);
      else throw new UsageError(`${where}: ${arg}: expected true or false`);
    } else {
      throw new UsageError(`${where}: unknown option ${arg}`);
    }
  }
  return parsed;
}

/** The one container ID a command takes. */
export function containerIdOf(parsed: Parsed, where: string): string {
  const id = parsed.positional[0];
  if (id === undefined || id === '') throw new UsageError(`${where}: a container ID is required`);
  return id;
}
