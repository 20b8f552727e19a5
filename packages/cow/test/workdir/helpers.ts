// Sandboxes with a copy-on-write workdir, started through the sandlock
// package's sources (which depend on this package's module), and trees to
// compare.
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PYTHON, SYSTEM_DIRS } from '../../../../tools/test-support/index.js';
import { type RunResult, Sandbox, type WorkdirEnd } from '../../../sandlock/src/index.js';

export { PYTHON };

/** A fresh directory under the temporary directory; removed by `cleanup`. */
export function scratch(prefix = 'cow-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function cleanup(...dirs: string[]): void {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

export interface WorkdirRun {
  workdir: string;
  /** The layers' store (default: a fresh one per test file, see `store`). */
  storage: string;
  onExit?: 'commit' | 'abort' | 'keep';
  onError?: 'commit' | 'abort' | 'keep';
  end?: WorkdirEnd;
  maxDisk?: number | null;
  cwd?: string;
  fsWrite?: string[];
  env?: Record<string, string>;
  timeout?: number;
}

/** Runs argv with `workdir` copy-on-write; the result as run() gives it (utf8). */
export async function runIn(argv: string[], options: WorkdirRun): Promise<RunResult<string>> {
  const builder = Sandbox.builder()
    .fsRead(...SYSTEM_DIRS, '/dev/null', '/proc')
    .workdir(options.workdir)
    .fsStorage(options.storage)
    .onExit(options.onExit ?? 'commit')
    .onError(options.onError ?? 'abort');
  if (options.maxDisk !== undefined && options.maxDisk !== null) builder.maxDisk(options.maxDisk);
  if (options.fsWrite !== undefined) builder.fsWrite(...options.fsWrite);
  builder.cwd(options.cwd ?? options.workdir);
  const sandbox = builder.build();
  return sandbox.run(argv, {
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin', LANG: 'C', ...(options.env ?? {}) },
    workdirEnd: options.end ?? 'policy',
    ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
  });
}

/**
 * Runs argv on `copy` with no workdir, the copy writable and the cwd: what
 * the kernel alone answers, for a differential test against `runIn`.
 */
export function runOnCopy(argv: string[], copy: string): Promise<RunResult<string>> {
  return Sandbox.builder()
    .fsRead(...SYSTEM_DIRS, '/dev/null', '/proc')
    .fsWrite(copy)
    .cwd(copy)
    .build()
    .run(argv, { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LANG: 'C' } });
}

/** Runs a Python program (its source) in the workdir. */
export function python(source: string, options: WorkdirRun): Promise<RunResult<string>> {
  return runIn([PYTHON, '-c', source], options);
}

/**
 * A tree as text, one line per entry in name order: path, type, mode and
 * content (files), target (symlinks); with `inodes`, which entries share an
 * inode (hard links).
 */
export function snapshot(root: string, inodes = true): string {
  const lines: string[] = [];
  const groups = new Map<string, string>();
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const at = rel === '' ? name : `${rel}/${name}`;
      const stat = lstatSync(path);
      const mode = (stat.mode & 0o7777).toString(8);
      if (stat.isDirectory()) {
        lines.push(`${at} dir ${mode}`);
        walk(path, at);
      } else if (stat.isSymbolicLink()) {
        lines.push(`${at} symlink -> ${readlinkSync(path)}`);
      } else if (stat.isFile()) {
        let link = '';
        if (inodes && stat.nlink > 1) {
          const key = `${stat.dev}:${stat.ino}`;
          if (!groups.has(key)) groups.set(key, at);
          link = ` link=${groups.get(key)}`;
        }
        lines.push(`${at} file ${mode} ${JSON.stringify(readFileSync(path, 'latin1'))}${link}`);
      } else {
        lines.push(`${at} other ${mode}`);
      }
    }
  };
  walk(root, '');
  return lines.join('\n');
}

/** The store's entries (what a run left behind). */
export function storeEntries(storage: string): string[] {
  try {
    return readdirSync(storage).filter((name) => !name.startsWith('.lock'));
  } catch {
    return [];
  }
}

/**
 * argv run with no capabilities, as a sandbox runs (setpriv empties the
 * bounding set before the exec, so root's exec gains none): a direct run
 * to compare with one in a sandbox.
 */
export function withoutCapabilities(argv: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [argv[0]!, argv.slice(1)];
  return ['/usr/bin/setpriv', ['--bounding-set=-all', '--inh-caps=-all', '--', ...argv]];
}
