import { nearest } from '@sandlock/policy';

/** A command-line option: `--long`, maybe `-s`, maybe taking a value. */
export interface OptionSpec {
  long: string;
  short?: string;
  /** Name of the value in help, e.g. 'PATH'; absent for a switch. */
  value?: string;
  help: string;
}

/** A mistake in the command line: the message names the flag and what was expected. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface ParsedArgs {
  /** Each option's values in order (switches get `'true'`), by long name. */
  options: Map<string, string[]>;
  /** Every option given, in order, with its value (undefined for a switch). */
  uses: { spec: OptionSpec; value: string | undefined }[];
  /** What follows the options: the command and its arguments. */
  rest: string[];
}

/** The known option closest to `given`, when it is close enough to be a typo. */
export function nearestOption(given: string, specs: readonly OptionSpec[]): string | undefined {
  const bare = given.replace(/^-+/, '').split('=')[0]!;
  const name = nearest(
    bare,
    specs.map((spec) => spec.long),
  );
  return name === undefined ? undefined : `--${name}`;
}

/**
 * Parses options up to `--` or the first argument that is not an option.
 * `--name=value`, `--name value`, `-s value` and `-svalue` are accepted.
 */
export function parseArgs(
  argv: readonly string[],
  specs: readonly OptionSpec[],
  command: string,
): ParsedArgs {
  const byLong = new Map(specs.map((spec) => [spec.long, spec]));
  const byShort = new Map(specs.filter((spec) => spec.short).map((spec) => [spec.short!, spec]));
  const options = new Map<string, string[]>();
  const uses: ParsedArgs['uses'] = [];
  const add = (spec: OptionSpec, value: string, given?: string) => {
    options.set(spec.long, [...(options.get(spec.long) ?? []), value]);
    uses.push({ spec, value: given });
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    let spec: OptionSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      spec = byLong.get(name);
    } else {
      spec = byShort.get(arg[1]!);
      inline = arg.length > 2 ? arg.slice(2) : undefined;
    }
    if (!spec) {
      const hint = nearestOption(arg, specs);
      throw new UsageError(
        `${command}: unknown option '${arg}'${hint ? `; did you mean '${hint}'?` : ''}`,
      );
    }
    const shown = `--${spec.long}`;
    if (spec.value === undefined) {
      if (inline !== undefined) throw new UsageError(`${command}: ${shown} takes no value`);
      add(spec, 'true');
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined)
      throw new UsageError(`${command}: ${shown} needs a value (${spec.value})`);
    add(spec, value, value);
  }
  return { options, uses, rest: argv.slice(i) };
}

function optionLeft(spec: OptionSpec): string {
  return `${spec.short ? `-${spec.short}, ` : '    '}--${spec.long}${spec.value ? ` ${spec.value}` : ''}`;
}

/** Help lines for a list of options, aligned to `width` (default: the longest's). */
export function formatOptions(specs: readonly OptionSpec[], width?: number): string {
  const column = width ?? Math.max(...specs.map((spec) => optionLeft(spec).length)) + 2;
  return specs.map((spec) => `  ${optionLeft(spec).padEnd(column)}${spec.help}`).join('\n');
}

/** The column width that aligns every group of `groups` alike. */
export function optionWidth(groups: readonly (readonly OptionSpec[])[]): number {
  return Math.max(...groups.flat().map((spec) => optionLeft(spec).length)) + 2;
}
