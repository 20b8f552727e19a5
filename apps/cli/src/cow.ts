import { isAbsolute } from 'node:path';
import { type Change, cleanStaleLayers, formatChanges, Layer, listLayers } from '@sandlock/cow';
import { type OptionSpec, UsageError } from './args.js';
import { EXIT } from './report.js';

export const COW_HELP = `Usage: sandlock cow list [--fs-storage DIR]
       sandlock cow changes PATH [--json] [--diff]
       sandlock cow commit PATH
       sandlock cow abort PATH

Finishes the copy-on-write layers 'sandlock run --workdir DIR --on-exit keep'
(or --on-error keep) left. PATH is a layer's directory, as the run printed it
and 'list' shows it. 'list' also removes the layers of sandboxes that are gone
(finishing their interrupted commits); 'changes' prints what the layer
changes (A added, M modified, D deleted; --json one object per line, --diff
with a unified diff of each modified text file); 'commit' applies it to its
directory and removes it; 'abort' removes it.
Exit status: 0; 1 when PATH is not a layer or it cannot be finished; 125 for
a usage error.

Examples:
  sandlock cow list
  sandlock cow changes /tmp/sandlock-cow-1000/6f1c… --diff
  sandlock cow commit /tmp/sandlock-cow-1000/6f1c…`;

const OPTIONS: OptionSpec[] = [
  { long: 'fs-storage', value: 'DIR', help: 'the store of the layers' },
  { long: 'json', help: 'one JSON object per change' },
  { long: 'diff', help: 'a unified diff of each modified text file' },
];

function usage(message: string): number {
  process.stderr.write(`sandlock cow: ${message} (see sandlock cow --help)\n`);
  return EXIT.usage;
}

function failed(message: string): number {
  process.stderr.write(`sandlock cow: ${message}\n`);
  return 1;
}

function openLayer(path: string): Layer | string {
  try {
    return Layer.open(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `${path}: no such layer`;
    return (error as Error).message.replace(/^sandlock: /, '');
  }
}

/**
 * A layer that is not kept belongs to its process while that process lives:
 * a running sandbox, or a commit under way. Returns what stops us, or null.
 */
function busy(layer: Layer): string | null {
  if (layer.state === 'kept' || layer.orphaned) return null;
  const what = layer.state === 'running' ? 'in use by a running sandbox' : layer.state;
  return `${layer.dir} is ${what} (process ${layer.owner.pid}); not touched`;
}

interface CowArgs {
  readonly positional: string[];
  readonly options: Map<string, string>;
}

/** Options anywhere among the arguments: --json, --diff, --fs-storage DIR. */
function parseCowArgs(argv: readonly string[]): CowArgs {
  const positional: string[] = [];
  const options = new Map<string, string>();
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === '--') {
      positional.push(...argv.slice(index + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const spec = OPTIONS.find((option) => option.long === name);
    if (!arg.startsWith('--') || spec === undefined)
      throw new UsageError(`unknown option '${arg}'`);
    if (spec.value === undefined) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      options.set(name, 'true');
    } else {
      const value = inline ?? argv[++index];
      if (value === undefined) throw new UsageError(`--${name} needs a ${spec.value}`);
      options.set(name, value);
    }
  }
  return { positional, options };
}

/** `sandlock cow`: returns the exit code. */
export async function cowCommand(argv: readonly string[]): Promise<number> {
  const [action, ...rest] = argv;
  if (action === '--help' || action === '-h' || action === undefined) {
    (action === undefined ? process.stderr : process.stdout).write(`${COW_HELP}\n`);
    return action === undefined ? EXIT.usage : 0;
  }
  let parsed: CowArgs;
  try {
    parsed = parseCowArgs(rest);
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message);
    throw error;
  }
  const flag = (name: string) => parsed.options.has(name);
  const [path, ...extra] = parsed.positional;
  if (extra.length > 0) return usage(`unexpected argument '${extra[0]}'`);
  const allowed: Record<string, string[]> = {
    list: ['fs-storage'],
    changes: ['json', 'diff'],
    commit: [],
    abort: [],
  };
  const options = allowed[action];
  if (options === undefined) {
    return usage(`unknown action '${action}' (list, changes PATH, commit PATH, abort PATH)`);
  }
  for (const name of parsed.options.keys()) {
    if (!options.includes(name)) return usage(`${action} takes no --${name}`);
  }
  if (action === 'list') {
    if (path !== undefined) return usage(`list takes no PATH, got '${path}'`);
    const storage = parsed.options.get('fs-storage');
    if (storage !== undefined && !isAbsolute(storage)) {
      return usage(`--fs-storage expects an absolute path, got '${storage}'`);
    }
    try {
      cleanStaleLayers(storage);
      for (const { dir, meta } of listLayers(storage)) {
        process.stdout.write(`${dir}\t${meta.state}\t${meta.lower}\t${meta.created}\n`);
      }
    } catch (error) {
      return failed((error as Error).message.replace(/^sandlock: /, ''));
    }
    return 0;
  }
  if (path === undefined) return usage(`${action} needs the PATH of a layer`);
  const layer = openLayer(path);
  if (typeof layer === 'string') return failed(layer);
  try {
    if (action === 'changes') {
      const changes: Change[] = layer.changes();
      process.stdout.write(
        formatChanges(changes, {
          json: flag('json'),
          diff: flag('diff'),
          lower: layer.lower,
          upper: layer.upper,
        }),
      );
      return 0;
    }
    const inUse = busy(layer);
    if (inUse !== null) return failed(inUse);
    if (action === 'commit') {
      await layer.commitAsync();
      process.stderr.write(`sandlock cow: committed ${path} to ${layer.lower}\n`);
    } else {
      const partial = layer.state === 'committing';
      layer.abort();
      process.stderr.write(`sandlock cow: removed ${path}\n`);
      if (partial) {
        process.stderr.write(
          `sandlock cow: warning: its commit had started; ${layer.lower} may hold part of it\n`,
        );
      }
    }
    return 0;
  } catch (error) {
    return failed(`${path}: ${(error as Error).message.replace(/^sandlock: /, '')}`);
  } finally {
    layer.close();
  }
}
