import { writeSync } from 'node:fs';
import { CommandError, PolicyError, SandboxError } from 'sandlock';
import { UsageError } from './args.js';

/**
 * Exit codes, as coreutils' timeout(1) and env(1) use them. A usage error is
 * `failed` for every subcommand: sandlock failed before doing anything.
 */
export const EXIT = {
  timeout: 124,
  failed: 125,
  usage: 125,
  notExecutable: 126,
  notFound: 127,
} as const;

export interface Reporter {
  json: boolean;
  statusFd: number | null;
}

/**
 * Writes the one-line JSON status to --status-fd, if given. A descriptor
 * that fails (its reader gone, a full disk) is a warning: the exit status
 * stays the command's.
 */
export function writeStatus(reporter: Reporter, status: Record<string, unknown>): void {
  if (reporter.statusFd === null) return;
  try {
    writeSync(reporter.statusFd, `${JSON.stringify(status)}\n`);
  } catch (error) {
    process.stderr.write(
      `sandlock: warning: cannot write the status to descriptor ${reporter.statusFd}: ${(error as Error).message}\n`,
    );
  }
}

function kindOf(error: unknown): string {
  if (error instanceof UsageError) return 'usage';
  if (error instanceof PolicyError) return 'policy';
  if (error instanceof CommandError) return 'command';
  if (error instanceof SandboxError) return 'confinement';
  return 'internal';
}

/** The exit code for an error raised before the command ran. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CommandError)
    return error.code === 'ENOENT' ? EXIT.notFound : EXIT.notExecutable;
  return EXIT.failed;
}

/** Prints an error (as text, or as one JSON line with --json-errors) and returns its exit code. */
export function reportError(reporter: Reporter, error: unknown): number {
  const message = error instanceof Error ? error.message : String(error);
  const code = exitCodeOf(error);
  if (reporter.json) {
    const body: Record<string, unknown> = { kind: kindOf(error), message, exit_code: code };
    if (error instanceof PolicyError) body.problems = error.problems;
    if (error instanceof SandboxError) body.step = error.step;
    process.stderr.write(`${JSON.stringify({ error: body })}\n`);
  } else {
    const text = message.startsWith('sandlock') ? message : `sandlock: ${message}`;
    process.stderr.write(`${text}\n`);
  }
  writeStatus(reporter, { error: message, exit_code: code });
  return code;
}
