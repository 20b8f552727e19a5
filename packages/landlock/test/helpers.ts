import { readdirSync, readlinkSync } from 'node:fs';
import { launch, resolveExecutable } from '@sandlock/sys';
import { collect, type Finished, SYSTEM_DIRS } from '../../../tools/test-support/index.js';
import { type LandlockRuleset, type RulesetBuilder, restrictSelfSteps } from '../src/index.js';

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

export { type Finished, SYSTEM_DIRS };

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
