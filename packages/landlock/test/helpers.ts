import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { launch, resolveExecutable } from '@sandlock/sys';
import { type LandlockRuleset, type RulesetBuilder, restrictSelfSteps } from '../src/index.js';

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function collect(child: ChildProcess): Promise<Finished> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      }),
    );
  });
}

export const ENV = { PATH: '/usr/bin:/bin', LANG: 'C' };

/** Runs `argv` through the exec stub under no_new_privs and `ruleset`. */
export async function runSandboxed(
  ruleset: LandlockRuleset,
  argv: readonly string[],
): Promise<Finished> {
  const path = resolveExecutable(argv[0]!, ENV.PATH);
  if (!path) throw new Error(`${argv[0]} not found`);
  const launched = launch({
    path,
    argv,
    env: ENV,
    steps: [{ kind: 'noNewPrivs' }, ...restrictSelfSteps(ruleset)],
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const finished = collect(launched.child);
  await launched.release();
  return finished;
}

/** The system directories programs need, as far as they exist here. */
export const SYSTEM_DIRS = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((dir) =>
  existsSync(dir),
);

/** A builder that lets programs from the system directories run. */
export function withSystem(builder: RulesetBuilder): RulesetBuilder {
  return builder.readExec(SYSTEM_DIRS);
}

export const python3 = resolveExecutable('python3', ENV.PATH);

/** This process's open descriptors, without the one that lists them. */
export function openFds(): number[] {
  return readdirSync('/proc/self/fd')
    .map(Number)
    .filter((fd) => {
      try {
        readlinkSync(`/proc/self/fd/${fd}`);
        return true;
      } catch {
        return false;
      }
    });
}
