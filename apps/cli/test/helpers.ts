import { type SpawnSyncOptions, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../bin/sandlock.cjs', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../dist/main.cjs', import.meta.url));
if (!existsSync(BUNDLE)) {
  throw new Error(`${BUNDLE} is missing: run 'pnpm build' first (pnpm test does)`);
}

/** The repository: a `sandlock` run inside a sandbox reads its bundle and koffi there. */
const REPOSITORY = fileURLToPath(new URL('../../..', import.meta.url));

/** The system directories a dynamically linked program needs, as -r flags. */
export const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc']
  .filter((path) => existsSync(path))
  .flatMap((path) => ['-r', path]);

/** What a `sandlock` started inside a sandbox must read: the system, Node, the repository. */
export const INNER = [
  ...SYSTEM,
  ...(process.execPath.startsWith('/usr/') ? [] : ['-r', process.execPath]),
  '-r',
  REPOSITORY,
];

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the sandlock CLI to completion. */
export function sandlock(args: readonly string[], options: SpawnSyncOptions = {}): CliResult {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    // Node's default (1 MiB) is what a test pipes through, exactly: at that
    // size spawnSync may kill the CLI (ENOBUFS) before it has ended.
    maxBuffer: 64 << 20,
    ...options,
  });
  return {
    status: result.status,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
  };
}

/**
 * A Python program that tries six forks whose children live 0.3 s, waits for
 * those that worked, and prints "<forked> <refused>".
 */
export const FORK_SIX = [
  'import os, time',
  'children, refused = [], 0',
  'for i in range(6):',
  '    try:',
  '        pid = os.fork()',
  '    except BlockingIOError:',
  '        refused += 1',
  '        continue',
  '    if pid == 0:',
  '        time.sleep(0.3)',
  '        os._exit(0)',
  '    children.append(pid)',
  'for pid in children: os.waitpid(pid, 0)',
  'print(len(children), refused)',
].join('\n');
