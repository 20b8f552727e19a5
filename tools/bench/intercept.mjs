import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Sandbox } from 'sandlock';
import { openLoop, openLoopProgram } from '../../packages/dispatch/bench/open-loop.mjs';
import { median } from './stats.mjs';

const PYTHON = '/usr/bin/python3';
const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) => existsSync(path));
const LOOPS = 20_000;

function bare(program) {
  const result = spawnSync(PYTHON, ['-c', program], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr);
  return Number(result.stdout);
}

function sandboxed(sandbox, program) {
  return async () => {
    const result = await sandbox.run([PYTHON, '-c', program]);
    if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}: ${result.stderr}`);
    return Number(result.stdout.toString());
  };
}

/**
 * 20,000 open+close of one file in Python, µs per iteration: bare, sandboxed
 * without a supervisor, and under policies whose modules see every open (the
 * supervisor answers each openat), 5 runs each, interleaved; and of
 * /etc/hostname under a virtual host name, each open answered with an
 * injected descriptor.
 */
export async function benchIntercept(runs = 5) {
  // Python times its own loop: start-up and the sandbox's set-up are left out.
  const { dir, program, dispose } = openLoop(LOOPS);
  const base = () => Sandbox.builder().fsRead(...SYSTEM, dir);
  const cases = {
    bare: async () => bare(program),
    'sandboxed, no supervisor': sandboxed(base().build(), program),
    'hostname (opens checked for /etc/hostname)': sandboxed(
      base().hostname('bench').build(),
      program,
    ),
    '/proc readable (opens checked for hidden processes)': sandboxed(
      base().fsRead('/proc').build(),
      program,
    ),
    // The open is answered with a descriptor of the supervisor's (ADDFD, then
    // its number): the cost of a virtual file.
    'hostname, the loop opens /etc/hostname (a descriptor injected)': sandboxed(
      base().hostname('bench').build(),
      openLoopProgram('/etc/hostname', LOOPS),
    ),
    // Walked component by component in the caller's view, then opened by the
    // sandbox's reaper in the policy's domain and injected.
    '/proc readable, the loop opens /proc/self/status (opened by the reaper)': sandboxed(
      base().fsRead('/proc').build(),
      openLoopProgram('/proc/self/status', LOOPS / 4),
    ),
  };
  const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  try {
    for (const run of Object.values(cases)) await run();
    for (let i = 0; i < runs; i++) {
      for (const [name, run] of Object.entries(cases)) samples[name].push(await run());
    }
  } finally {
    dispose();
  }
  const result = Object.fromEntries(
    Object.entries(samples).map(([name, values]) => [
      name,
      { median: median(values), p90: Math.max(...values), min: Math.min(...values), runs },
    ]),
  );
  const bareMedian = result.bare.median;
  const ratios = {};
  for (const name of Object.keys(cases).slice(2)) {
    ratios[`${name}: µs per intercepted call (µs)`] = result[name].median - bareMedian;
  }
  return {
    title: `open+close in Python, ${LOOPS} per run, µs per iteration, ${runs} runs each, interleaved`,
    unit: 'µs',
    spread: true,
    result,
    ratios,
  };
}
