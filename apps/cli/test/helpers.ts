import { type SpawnSyncOptions, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../bin/sandlock.cjs', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../dist/main.cjs', import.meta.url));
if (!existsSync(BUNDLE)) {
  throw new Error(`${BUNDLE} is missing: run 'pnpm build' first (pnpm test does)`);
}

/** The system directories a dynamically linked program needs, as -r flags. */
export const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc']
  .filter((path) => existsSync(path))
  .flatMap((path) => ['-r', path]);

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
    ...options,
  });
  return {
    status: result.status,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
  };
}
