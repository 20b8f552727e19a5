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
  /** What follows the options: the command and its arguments. */
  rest: string[];
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The known option closest to `given`, when it is close enough to be a typo. */
export function nearestOption(given: string, specs: readonly OptionSpec[]): string | undefined {
  const bare = given.replace(/^-+/, '').split('=')[0]!;
  let best: { name: string; score: number } | undefined;
  for (const spec of specs) {
    const score = distance(bare, spec.long);
    if (!best || score < best.score) best = { name: `--${spec.long}`, score };
  }
  return best && best.score <= Math.max(2, Math.floor(bare.length / 3)) ? best.name : undefined;
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
  const add = (spec: OptionSpec, value: string) => {
    options.set(spec.long, [...(options.get(spec.long) ?? []), value]);
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
    add(spec, value);
  }
  return { options, rest: argv.slice(i) };
}

/** Help lines for a list of options, aligned. */
export function formatOptions(specs: readonly OptionSpec[]): string {
  const left = specs.map(
    (spec) =>
      `${spec.short ? `-${spec.short}, ` : '    '}--${spec.long}${spec.value ? ` ${spec.value}` : ''}`,
  );
  const width = Math.max(...left.map((text) => text.length)) + 2;
  return specs.map((spec, i) => `  ${left[i]!.padEnd(width)}${spec.help}`).join('\n');
}
