// A host process for the start-failure tests, run as
//   node --import <dispatch>/src/dev/register.mjs start-failure-host.ts MODE
// MODE exhaust: lowers its own open-file limit (soft and hard, so that
//   Sandlock cannot raise it again), opens /dev/null until a few descriptors
//   are left, and starts sandboxes one at a time and 120 at once, plain and
//   supervised; then closes the filler and runs once more.
// MODE enospc: runs once with the exec stub written to a file
//   (SANDLOCK_STUB=file) in XDG_CACHE_HOME, which the test fills.
// It prints one JSON line: what it saw.
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { setRlimit } from '@sandlock/sys';
import { SYSTEM_DIRS } from '../../../../tools/test-support/index.js';
import { Sandbox, SandboxError } from '../../src/index.js';
import { registryDirectory } from '../../src/registry.js';
import { supervisorFor } from '../../src/supervision.js';

const plain = Sandbox.builder()
  .fsRead(...SYSTEM_DIRS)
  .build();
const supervised = Sandbox.builder()
  .fsRead(...SYSTEM_DIRS)
  .hostname('x')
  .maxProcesses(5)
  .build();

/** This process's open descriptors, or -1 when it cannot list them (itself out of them). */
function openCount(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

function children(): string[] {
  return readdirSync('/proc/self/task').flatMap((task) =>
    readFileSync(`/proc/self/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean),
  );
}

/** Sessions the supervisor still holds (private: the test looks inside). */
async function sessions(): Promise<number> {
  const supervisor = await supervisorFor([]);
  return (supervisor as unknown as { sessions: Map<number, unknown> }).sessions.size;
}

async function until(condition: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

function describe(result: PromiseSettledResult<unknown>): string {
  if (result.status === 'fulfilled') return 'ok';
  const error = result.reason as Error & { step?: unknown };
  if (!(error instanceof SandboxError) || typeof error.step !== 'string' || error.step === '') {
    return `not a SandboxError with a step: ${error?.name}: ${error?.message} (step ${String(error?.step)})`;
  }
  return `SandboxError at ${error.step}`;
}

/**
 * Names claimed in the registry for a start that never completed them: a
 * failed start must give its name back. (An entry whose removal failed for
 * want of a descriptor is stale once its reaper is gone: the next reader
 * prunes it.)
 */
function claimsLeft(): string[] {
  const dir = registryDirectory();
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .filter((file) => {
      try {
        return JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')).reaper === null;
      } catch {
        return false;
      }
    });
}

async function exhaust(): Promise<void> {
  const LIMIT = 256;
  setRlimit('NOFILE', { soft: BigInt(LIMIT), hard: BigInt(LIMIT) });
  // Everything a start makes once per process (the stub, the delegation
  // socket, every dispatch worker thread) exists before the count is taken.
  const cpus = availableParallelism();
  for (let round = 0; round <= cpus; round++) {
    await Promise.all([
      plain.run(['true']),
      ...Array.from({ length: 2 * cpus }, () => supervised.run(['sleep', '0.2'])),
    ]);
  }
  // A worker started in the background by the last round must be up (or gone).
  const supervisor = await supervisorFor([]);
  const workers = (supervisor as unknown as { workers: { started: Promise<void> }[] }).workers;
  await Promise.allSettled(workers.map((worker) => worker.started));
  const outcomes: Record<string, number> = {};
  const leaks: string[] = [];
  for (const left of [0, 2, 4, 8, 12]) {
    const held: number[] = [];
    while (openCount() < LIMIT - left) held.push(openSync('/dev/null', 'r'));
    const before = openCount();
    for (const sandbox of [plain, supervised]) {
      const results: PromiseSettledResult<unknown>[] = [];
      for (let i = 0; i < 5; i++)
        results.push(...(await Promise.allSettled([sandbox.run(['true'])])));
      results.push(
        ...(await Promise.allSettled(Array.from({ length: 120 }, () => sandbox.run(['true'])))),
      );
      for (const result of results) {
        const key = describe(result);
        outcomes[key] = (outcomes[key] ?? 0) + 1;
      }
    }
    // Sessions close when the worker sees their listener hang up: wait for it.
    const settled = await until(
      async () => openCount() === before && children().length === 0 && (await sessions()) === 0,
      30_000,
    );
    if (!settled) {
      leaks.push(
        `${left} left: ${openCount()} descriptors open (${before} before), children [${children()}], ${await sessions()} sessions`,
      );
    }
    for (const fd of held) closeSync(fd);
  }
  const after = await Promise.allSettled([plain.run(['true']), supervised.run(['true'])]);
  console.log(
    JSON.stringify({ outcomes, leaks, after: after.map(describe), claims: claimsLeft() }),
  );
}

async function enospc(): Promise<void> {
  const result = await Promise.allSettled([plain.run(['true'])]);
  const stubDir = `${process.env.XDG_CACHE_HOME}/sandlock`;
  console.log(
    JSON.stringify({
      result: describe(result[0]!),
      message: result[0]!.status === 'rejected' ? (result[0].reason as Error).message : '',
      files: readdirSync(stubDir),
      children: children(),
    }),
  );
}

const mode = process.argv[2];
if (mode === 'exhaust') await exhaust();
else if (mode === 'enospc') await enospc();
else throw new Error(`unknown mode ${mode}`);
process.exit(0);
