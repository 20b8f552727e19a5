import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from 'sandlock';
import { summarize } from './stats.mjs';

const PYTHON = '/usr/bin/python3';
const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) => existsSync(path));

// chdir back and forth `loops` times between the cwd and `target`; µs per chdir.
const program = (target, loops, make) => `
import os, time
${make ? `os.mkdir(${JSON.stringify(target)})` : ''}
here = os.getcwd()
start = time.perf_counter()
for i in range(${loops}):
    os.chdir(${JSON.stringify(target)})
    os.chdir(here)
print((time.perf_counter() - start) / ${loops * 2} * 1e6)
`;

/**
 * The cost of a retargeted chdir (a transient ptrace: the call runs as
 * fchdir of an injected descriptor, closed after): a Python loop of chdir
 * into a directory only a copy-on-write layer holds, against chdir into a
 * directory of the workdir the kernel finds (notified, let through) and in
 * a sandbox without a workdir (not notified). µs per chdir, as the program
 * times its loop; in the retargeted case every other chdir (back to the
 * workdir) is let through.
 */
export async function benchRetarget(runs = 5, loops = 1000) {
  const root = mkdtempSync(join(tmpdir(), 'sandlock-bench-retarget-'));
  const storage = join(root, 'store');
  let next = 0;
  const run = async (workdir, make) => {
    const dir = join(root, `w${next++}`);
    mkdirSync(dir);
    if (!make) mkdirSync(join(dir, 'sub'));
    const builder = Sandbox.builder()
      .fsRead(...SYSTEM, root)
      .cwd(dir);
    if (workdir) builder.workdir(dir).fsStorage(storage).onExit('abort');
    const result = await builder.build().run([PYTHON, '-c', program('sub', loops, make)]);
    if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}: ${result.stderr}`);
    return Number(result.stdout.toString());
  };
  const cases = {
    'chdir, sandboxed (not notified)': () => run(false, false),
    'chdir into a directory of the workdir (notified, let through)': () => run(true, false),
    'chdir into a directory of the layer (retargeted)': () => run(true, true),
  };
  try {
    const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
    for (let i = 0; i < runs; i++) {
      for (const [name, one] of Object.entries(cases)) samples[name].push(await one());
    }
    const result = summarize(samples);
    return {
      title: `retargeted chdir, ${loops * 2} chdir a run, ${runs} runs each, interleaved`,
      result,
      unit: 'µs',
      // Half the chdir of the retargeted case (those back to the workdir) are let through.
      ratios: {
        'one retargeted chdir (µs)':
          2 * result['chdir into a directory of the layer (retargeted)'].median -
          result['chdir into a directory of the workdir (notified, let through)'].median,
      },
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
